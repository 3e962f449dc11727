"""The Ray engine on a real local cluster: same store as in-process, worker deaths retried, setup errors."""

import os
import signal
import sys

import numpy as np
import pytest
import ray.cloudpickle

import vfx
from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
from vfx.errors import CheckpointError, UsageError
from vfx.frames import FramesStage
from vfx.sources import load_items
from vfx.types import VideoItem

# Ray workers import this module's stages by value: the tests folder is not on their path.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_ray_and_serial_engines_write_identical_stores(ray_local, tiny_dataset, tmp_path):
    items = load_items(tiny_dataset)
    a = run_stage(FramesStage(), items, tmp_path / "ray", RunOptions(engine="ray", workers=2, shard_size=2, progress=False))
    b = run_stage(FramesStage(), items, tmp_path / "serial", RunOptions(engine="serial", shard_size=2, progress=False))
    assert a.done == b.done == 6
    ra, rb = vfx.open_store(tmp_path / "ray"), vfx.open_store(tmp_path / "serial")
    assert ra.video_ids() == rb.video_ids()
    for vid in ra.video_ids():
        assert ra.group(vid)["jpeg"][()].tobytes() == rb.group(vid)["jpeg"][()].tobytes()


class Crashy(Stage):
    """Kills its own worker process on chosen videos: once (then succeeds), or every time."""

    kind = "toy"

    def __init__(self, marker_dir: str, once: str, always: str, setup_error: bool = False):
        self.marker_dir, self.once, self.always, self.setup_error = marker_dir, once, always, setup_error

    def provenance(self):
        return {"once": self.once, "always": self.always}

    def setup(self):
        if self.setup_error:
            raise CheckpointError("weights.pt: missing keys ['fc.weight']")

    def process(self, item):
        marker = os.path.join(self.marker_dir, item.video_id)
        if item.video_id == self.always or (item.video_id == self.once and not os.path.exists(marker)):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return VideoOutput(datasets={"value": np.full(4, int(item.video_id[1:]), np.int32)})


def test_dead_workers_get_their_shard_retried_and_a_killer_video_is_recorded(ray_local, tmp_path):
    items = [VideoItem(f"v{i}", f"/data/v{i}.mp4") for i in range(7)]
    stage = Crashy(str(tmp_path), once="v2", always="v5")
    summary = run_stage(stage, items, tmp_path / "s", RunOptions(engine="ray", workers=2, shard_size=3, progress=False))
    assert (summary.done, summary.failed) == (6, 1)
    store = vfx.open_store(tmp_path / "s")
    assert store.failures() == {"v5": "/data/v5.mp4: worker died while processing (2 times)"}
    assert store.video_ids() == ["v0", "v1", "v2", "v3", "v4", "v6"]
    # the shard that lost its worker was redone whole: every video in it is complete
    for vid in store.video_ids():
        np.testing.assert_array_equal(store.group(vid)["value"][()], np.full(4, int(vid[1:])))


def test_setup_errors_stop_the_run_with_their_message(ray_local, tmp_path):
    stage = Crashy(str(tmp_path), once="", always="", setup_error=True)
    with pytest.raises(CheckpointError, match=r"weights.pt: missing keys \['fc.weight'\]"):
        run_stage(stage, [VideoItem("v0", "/x.mp4")], tmp_path / "s", RunOptions(engine="ray", progress=False))


class NeedsGpu(Crashy):
    def resources(self):
        return {"num_cpus": 1, "num_gpus": 2}


def test_more_gpus_per_worker_than_the_cluster_has_is_a_usage_error(ray_local, tmp_path):
    with pytest.raises(UsageError, match=r"each worker needs 1 CPU and 2 GPU but no node of the Ray cluster has that \(.*: 2 CPU, 1 GPU\)"):
        run_stage(NeedsGpu(str(tmp_path), "", ""), [VideoItem("v0", "/x.mp4")], tmp_path / "s", RunOptions(progress=False))


def test_embedded_cluster_workers_run_at_normal_priority():
    """Ray's default nice 15 would hand the cores to any other process; vfx's workers do the whole job."""
    import subprocess

    code = (
        "import os, ray\n"
        "from vfx.engine.driver import init_ray\n"
        "assert init_ray(None, num_cpus=1)\n"
        "print('nice', ray.get(ray.remote(lambda: os.nice(0)).remote()), os.nice(0))\n"
        "ray.shutdown()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    worker, driver = result.stdout.split()[-2:]
    assert worker == driver


class Stalls(Stage):
    """v1 sleeps far past any timeout; v2 opens a FIFO nobody writes (a read that never returns); others are quick."""

    kind = "toy"

    def __init__(self, fifo: str):
        self.fifo = fifo

    def provenance(self):
        return {}

    def process(self, item):
        if item.video_id == "v1":
            import time

            time.sleep(600)
        if item.video_id == "v2":
            with open(self.fifo, "rb") as f:  # blocks in open(2) until a writer appears: never
                f.read()
        return VideoOutput(datasets={"value": np.full(2, int(item.video_id[1:]), np.int32)})


def test_watchdog_records_stalled_videos_as_timed_out_and_the_run_goes_on(ray_local, tmp_path):
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    items = [VideoItem(f"v{i}", f"/data/v{i}.mp4") for i in range(5)]
    summary = run_stage(Stalls(str(fifo)), items, tmp_path / "s",
                        RunOptions(workers=2, shard_size=5, video_timeout=4, progress=False))
    assert (summary.done, summary.failed) == (3, 2)
    store = vfx.open_store(tmp_path / "s")
    assert store.failures() == {"v1": "/data/v1.mp4: timed out after 4 s", "v2": "/data/v2.mp4: timed out after 4 s"}
    assert store.video_ids() == ["v0", "v3", "v4"]


def test_serial_watchdog_interrupts_a_slow_video(tmp_path):
    items = [VideoItem("v0", "/data/v0.mp4"), VideoItem("v1", "/data/v1.mp4")]
    summary = run_stage(Stalls(""), items, tmp_path / "s", RunOptions(engine="serial", video_timeout=1, progress=False))
    assert (summary.done, summary.failed) == (1, 1)
    assert vfx.open_store(tmp_path / "s").failures() == {"v1": "/data/v1.mp4: timed out after 1 s"}


class Where(Stage):
    """Records which process ran each video and the threads the engine gave it; asks for half a GPU."""

    kind = "toy"

    def provenance(self):
        return {}

    def resources(self):
        return {"num_cpus": None, "num_gpus": 0.5}

    def set_threads(self, threads):
        self.threads = threads

    def process(self, item):
        import time

        time.sleep(0.3)
        return VideoOutput(attrs={"pid": os.getpid(), "threads": self.threads,
                                  "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "")})


def test_fractional_logical_gpus_run_as_many_workers_as_fit_with_the_node_cpus_shared(ray_local, tmp_path):
    """2 CPUs, 1 logical GPU, 0.5 GPU per worker: two workers of one CPU each (not one, not a hang)."""
    items = [VideoItem(f"v{i}", f"/data/v{i}.mp4") for i in range(8)]
    summary = run_stage(Where(), items, tmp_path / "s", RunOptions(shard_size=1, progress=False))
    assert summary.done == 8
    store = vfx.open_store(tmp_path / "s")
    attrs = [store.attrs(v) for v in store.video_ids()]
    assert len({a["pid"] for a in attrs}) == 2
    assert {int(a["threads"]) for a in attrs} == {1}
    assert {a["gpus"] for a in attrs} == {"0"}  # both share the one logical GPU


def test_an_actor_that_cannot_be_placed_is_reported_with_rays_pending_demand(ray_local, tmp_path, capsys):
    blocker = ray.remote(num_cpus=2)(type("Hold", (), {"ping": lambda self: 1})).remote()
    ray.get(blocker.ping.remote())  # holds both CPUs of the cluster
    try:
        with pytest.raises(UsageError, match="no Ray worker could be placed"):
            run_stage(FramesStage(), [VideoItem("v0", "/x.mp4")], tmp_path / "s",
                      RunOptions(workers=1, placement_timeout=3, progress=False))
    finally:
        ray.kill(blocker)
    err = capsys.readouterr().err
    assert "Ray could not place it within 3 s (asked for {'num_cpus': 1.0}; Ray's pending demand: " in err
    assert "free now: 0 CPU, 1 GPU)" in err
