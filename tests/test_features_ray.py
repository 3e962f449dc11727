"""The Ray engine gives the same store as the serial one; a GPU resource without CUDA falls back to CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vfx
from test_features_support import tiny_params
from vfx.engine import RunOptions
from vfx.features import ClipParams, ModelChoice, extract_features
from vfx.sources import load_items


@pytest.fixture(scope="module")
def ray_with_a_logical_gpu():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    # Ray resources are logical: the cluster offers one "GPU" that torch in the actor cannot see.
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def group_contents(store, video_id):
    g = store.group(video_id)
    return {name: g[name][()] for name in g}, store.attrs(video_id)


def test_serial_and_ray_stores_are_identical_and_gpu_falls_back(ray_with_a_logical_gpu, tmp_path, tiny_dataset):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the fallback is not exercised")
    items = load_items(tiny_dataset)[:3]
    params = tiny_params(ModelChoice.of("tsm_r50", num_classes=5, width=8), clips=ClipParams(clip_len=4, stride=6))
    with pytest.warns(vfx.features.RandomWeightsWarning):
        serial = extract_features(items, tmp_path / "serial", params, RunOptions(engine="serial", shard_size=2, progress=False))
    gpu_params = tiny_params(ModelChoice.of("tsm_r50", num_classes=5, width=8), clips=ClipParams(clip_len=4, stride=6), gpus_per_worker=0.5)
    with pytest.warns(vfx.features.RandomWeightsWarning):
        on_ray = extract_features(items, tmp_path / "ray", gpu_params, RunOptions(engine="ray", workers=1, shard_size=2, progress=False))
    assert serial.ok and on_ray.ok and on_ray.done == 3
    a, b = vfx.open_store(tmp_path / "serial"), vfx.open_store(tmp_path / "ray")
    assert a.video_ids() == b.video_ids() == [i.video_id for i in items]
    for vid in a.video_ids():
        (data_a, attrs_a), (data_b, attrs_b) = group_contents(a, vid), group_contents(b, vid)
        assert sorted(data_a) == sorted(data_b) == ["clip_frames", "clip_timestamps", "features"]
        for name in data_a:
            np.testing.assert_array_equal(data_a[name], data_b[name], err_msg=f"{vid}/{name}")
        note = attrs_b.pop("device_note")
        assert attrs_a == attrs_b
        assert note.startswith("--gpus-per-worker 0.5 was given but torch sees no CUDA device in this worker")
        assert note.endswith("running on CPU") and attrs_b["device"] == "cpu"


def test_more_gpus_per_worker_than_the_cluster_has(ray_with_a_logical_gpu, tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:1]
    params = tiny_params(ModelChoice.of("tsm_r50", num_classes=5, width=8), gpus_per_worker=2.0)
    with pytest.raises(vfx.errors.UsageError, match=r"each worker needs 1 CPU and 2 GPU but no node of the Ray cluster has that \(.*: 2 CPU, 1 GPU\)"):
        with pytest.warns(vfx.features.RandomWeightsWarning):
            extract_features(items, tmp_path / "x", params, RunOptions(engine="ray", progress=False))
