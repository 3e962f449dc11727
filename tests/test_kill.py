"""SIGKILL `vfx extract-frames` mid-run, rerun it: the store ends exactly as an uninterrupted run's."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import vfx
from vfx.store.layout import read_ledgers
from videos import pattern_frames, write_video


N_VIDEOS = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_dataset")
    for n in range(N_VIDEOS):
        write_video(root / f"class{n % 2}" / f"v{n}.mkv", pattern_frames(80, 192, 144, seed=n, dx=1 + n % 3))
    return root


def _cmd(dataset, out, engine):
    return [sys.executable, "-m", "vfx", "extract-frames", str(dataset), "-o", str(out), "--short-side", "64",
            "--engine", engine, "--workers", "2", "--shard-size", "1", "--no-progress"]


def _snapshot(path):
    store = vfx.open_store(path)
    return {vid: (store.group(vid)["jpeg"][()].tobytes(), store.frame_index(vid).tolist()) for vid in store.video_ids()}


def test_sigkill_then_rerun_gives_the_uninterrupted_store(dataset, tmp_path):
    reference = subprocess.run(_cmd(dataset, tmp_path / "ref", "serial"), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    expected = _snapshot(tmp_path / "ref")
    assert len(expected) == N_VIDEOS

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(dataset, out, "ray"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # Kill once a random number of shards (one video each) has landed, with several still to do, so the kill falls
    # mid-run whatever the machine's speed; the kill lands between shards or while one is being written.
    landed_before_kill = random.Random(os.getpid()).randint(1, N_VIDEOS - 4)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and len(read_ledgers(out)) >= landed_before_kill:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Whatever the kill left, a reader sees only complete videos.
    partial = _snapshot(out)
    for vid, data in partial.items():
        assert data == expected[vid]
    # Ray's processes of the killed driver are orphans now, and a worker may still land the shard it had in
    # flight (complete, with its ledger). End them as closing the terminal would, then count what is recorded.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.5)
    recorded = len(vfx.open_store(out).video_ids())

    rerun = subprocess.run(_cmd(dataset, out, "ray"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    # the rerun redoes only what was not recorded: "frames: D done, 0 failed, A already in the store"
    words = rerun.stdout.split()
    done, already = int(words[1]), int(words[words.index("already") - 1])
    assert done + already == N_VIDEOS and already >= recorded, (rerun.stdout, recorded)
    assert _snapshot(out) == expected
    leftovers = [p.name for p in (out / "shards").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and len(partial) < N_VIDEOS
