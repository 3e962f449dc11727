"""Fitting worker actors to nodes: what each node holds decides how many go there and what each asks for."""

import pytest

from vfx.engine.placement import Node, fit_workers
from vfx.errors import UsageError


def test_half_gpus_on_a_node_with_4_cpus_and_2_gpus_give_4_workers_of_one_cpu():
    placements = fit_workers([Node("a", "10.0.0.1", cpus=4, gpus=2)], cpus=None, gpus=0.5, workers=None)
    assert [(p.cpus, p.gpus, p.threads) for p in placements] == [(1.0, 0.5, 1)] * 4


def test_threads_follow_each_nodes_cpus_not_the_drivers():
    nodes = [Node("a", "a", cpus=16, gpus=2), Node("b", "b", cpus=4, gpus=2)]
    placements = fit_workers(nodes, cpus=None, gpus=1.0, workers=None)
    assert sorted((p.node_id, p.threads) for p in placements) == [("a", 8), ("a", 8), ("b", 2), ("b", 2)]


def test_cpu_model_stage_gets_one_worker_per_node_with_all_its_cores_unless_workers_given():
    nodes = [Node("a", "a", cpus=8), Node("b", "b", cpus=2)]
    assert sorted((p.node_id, p.threads) for p in fit_workers(nodes, None, 0.0, None)) == [("a", 8), ("b", 2)]
    assert sorted((p.node_id, p.threads) for p in fit_workers(nodes, None, 0.0, 3)) == [("a", 4), ("a", 4), ("b", 2)]


def test_fixed_cpu_workers_are_spread_and_capped_by_what_fits():
    nodes = [Node("a", "a", cpus=1), Node("b", "b", cpus=1)]
    assert sorted(p.node_id for p in fit_workers(nodes, 1.0, 0.0, 5)) == ["a", "b"]


def test_replacement_goes_only_where_room_is_left():
    nodes = [Node("b", "b", cpus=1)]
    assert fit_workers(nodes, 1.0, 0.0, 2, taken={"b": 1}) == []  # the survivor already holds the only CPU


def test_nothing_fits_is_a_usage_error_naming_the_nodes():
    with pytest.raises(UsageError, match=r"needs 1 CPU and 1 GPU .*\(a: 4 CPU, 0 GPU\) \(use --gpus-per-worker 0"):
        fit_workers([Node("a", "a", cpus=4)], None, 1.0, None)
