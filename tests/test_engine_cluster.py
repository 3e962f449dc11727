"""The Ray engine on a real two-node cluster on this machine (`ray start` per node, own ports and temp dir).

One node sees the output folder only through a private tmpfs (`unshare -m`): a node without the driver's disk.
Its shards must reach the store through Ray's object store: never an exit 0 with videos missing. Then that
node is killed mid-run (its raylet and workers): the run finishes on the head with every video stored once.
"""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pytest

import vfx
from vfx.store.catalog import read_log
from vfx.store.layout import shard_path
from vfx.store.location import Location
from raycluster import Cluster, can_private_mount

pytestmark = pytest.mark.skipif(can_private_mount() is not None, reason=str(can_private_mount()))

VFX = str(Path(sys.executable).with_name("vfx"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    c = Cluster(tmp)
    c.private = tmp / "private"
    try:
        c.start_head(cpus=1)
        c.wait_for_nodes(1)
        c.worker = c.add_node(cpus=1, private_dir=c.private)
        c.wait_for_nodes(2)
        yield c
    finally:
        c.shutdown()


def test_a_node_that_does_not_see_a_local_output_ships_its_shards_to_the_driver(cluster, tiny_dataset):
    out = cluster.private / "frames"
    run = subprocess.run([VFX, "extract-frames", str(tiny_dataset), "-o", str(out), "--address", cluster.address,
                          "--short-side", "32", "--shard-size", "1", "--no-progress"],
                         env=cluster.env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "starting Ray: 2 workers on 2 nodes" in run.stderr
    assert "does not see " + str(out) in run.stderr and "through Ray's object store" in run.stderr
    assert "frames: 6 done, 0 failed" in run.stdout
    store = vfx.open_store(out)
    assert len(store.video_ids()) == 6
    assert all(store.group(v)["jpeg_offsets"].shape[0] > 1 for v in store.video_ids())


DRIVER = textwrap.dedent('''
    import sys, time
    import numpy as np
    from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
    from vfx.types import VideoItem

    class Slow(Stage):
        kind = "toy"
        def provenance(self):
            return {}
        def process(self, item):
            time.sleep(0.4)
            return VideoOutput(datasets={"value": np.full(3, int(item.video_id[1:]), np.int32)})

    items = [VideoItem(f"v{i:02d}", f"/data/v{i:02d}.mp4") for i in range(30)]
    s = run_stage(Slow(), items, sys.argv[2], RunOptions(address=sys.argv[1], shard_size=1, progress=False))
    print("RESULT", s.done, s.failed)
''')


def test_a_node_killed_mid_run_leaves_the_run_to_the_other_node_with_every_video_stored_once(cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = tmp_path / "toy"
    driver = subprocess.Popen([sys.executable, str(script), cluster.address, str(out)], env=cluster.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(read_log(Location.parse(out))) < 4:
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.2)
    landed = len(read_log(Location.parse(out)))
    cluster.kill(cluster.worker)
    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr
    assert "RESULT 30 0" in stdout
    assert "note: the worker on node " in stderr and "its shard goes to the next free worker" in stderr
    store = vfx.open_store(out)
    # what the committed shard files hold, video by video
    stored = [v for shard in store.recorded.catalog.shard_id.tolist() for v in h5py.File(shard_path(out, shard))["videos"]]
    assert sorted(stored) == [f"v{i:02d}" for i in range(30)]  # each once
    assert store.video_ids() == sorted(stored)
    print(f"killed the worker node after {landed} of 30 shards landed")
