"""Fit worker actors to the nodes of a Ray cluster: how many go on each node, and what each one asks for.

Asking every actor for the same resources whatever the node has is how a run hangs: four actors of
{CPU: 2, GPU: 0.5} on a node with 4 CPUs and 2 GPUs leave two that Ray can never place. Here each node gets
the actors that fit in its own CPUs and GPUs, and a stage that leaves its CPUs to the engine gets the node's
CPUs divided by the actors placed there. A pure function of the node list, so it is tested without Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vfx.errors import UsageError

# Resource amounts are floats in Ray (fractional GPUs); 4 x 0.25 must fit in 1.0.
_EPS = 1e-6


@dataclass(frozen=True)
class Node:
    node_id: str
    address: str  # the node's IP, for messages
    cpus: float
    gpus: float = 0.0


@dataclass(frozen=True)
class Placement:
    """One actor: the node it is pinned to and the resources it asks Ray for."""

    node_id: str
    address: str
    cpus: float
    gpus: float
    threads: int  # CPUs the worker may use (what `Stage.set_threads` is told)

    def resources(self) -> dict[str, float]:
        res = {"num_cpus": self.cpus}
        if self.gpus:
            res["num_gpus"] = self.gpus
        return res


def capacity(node: Node, cpus: float | None, gpus: float, many_cpu_workers: bool) -> int:
    """How many actors fit on `node`. cpus=None: at least one CPU each, at most one per node for CPU-only
    model stages unless `many_cpu_workers` (one worker with all cores batches best on a CPU)."""
    by_cpu = math.floor(node.cpus / (cpus or 1.0) + _EPS)
    if gpus > 0:
        return min(by_cpu, math.floor(node.gpus / gpus + _EPS))
    if cpus is None and not many_cpu_workers:
        return min(by_cpu, 1)
    return by_cpu


def fit_workers(
    nodes: list[Node], cpus: float | None, gpus: float, workers: int | None, taken: dict[str, int] | None = None
) -> list[Placement]:
    """Placements for `workers` actors (None: as many as fit), spread over the nodes, largest room first.

    `taken`: actors already running per node (for replacements). Raises UsageError when not even one fits.
    """
    taken = dict(taken or {})
    room = {n.node_id: capacity(n, cpus, gpus, workers is not None) - taken.get(n.node_id, 0) for n in nodes}
    total_room = sum(max(0, r) for r in room.values())
    if total_room == 0 and not any(taken.values()):
        raise UsageError(_nothing_fits(nodes, cpus, gpus))
    want = total_room if workers is None else min(workers - sum(taken.values()), total_room)
    chosen: dict[str, int] = {}
    for _ in range(max(0, want)):  # one at a time to the node with room that has the fewest: an even spread
        node = max(nodes, key=lambda n: (room[n.node_id] > 0, -chosen.get(n.node_id, 0), room[n.node_id], n.cpus))
        room[node.node_id] -= 1
        chosen[node.node_id] = chosen.get(node.node_id, 0) + 1
    out = []
    for node in nodes:
        count = chosen.get(node.node_id, 0)
        on_node = count + taken.get(node.node_id, 0)
        threads = int(cpus) if cpus is not None else max(1, math.floor(node.cpus / on_node + _EPS)) if on_node else 1
        ask = float(cpus) if cpus is not None else float(threads)
        out += [Placement(node.node_id, node.address, ask, float(gpus), max(1, threads))] * count
    return out


def _nothing_fits(nodes: list[Node], cpus: float | None, gpus: float) -> str:
    need = f"{cpus or 1:g} CPU" + (f" and {gpus:g} GPU" if gpus else "")
    have = "; ".join(f"{n.address}: {n.cpus:g} CPU, {n.gpus:g} GPU" for n in nodes) or "no live nodes"
    hint = " (use --gpus-per-worker 0 to run on CPUs)" if gpus and not any(n.gpus for n in nodes) else ""
    return f"each worker needs {need} but no node of the Ray cluster has that ({have}){hint}"
