"""SIGKILL `vfx extract-frames` mid-run, rerun it: the store ends exactly as an uninterrupted run's.

Random kills land between shards or while one is written; the fold of the commit log into the catalog and
the index update are short windows at the end of a run, so those kills are landed deterministically: the
run is started through a wrapper that pauses inside the window (and says so in a marker file), then killed.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import vfx
import h5py

from vfx.errors import UsageError
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


def _recorded(path) -> int:
    try:
        return len(vfx.open_store(path).recorded)
    except (UsageError, OSError):
        return 0  # no manifest yet


def _snapshot(path):
    store = vfx.open_store(path)
    return {vid: (store.group(vid)["jpeg"][()].tobytes(), store.frame_index(vid).tolist()) for vid in store.video_ids()}


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """The uninterrupted run's store."""
    path = tmp_path_factory.mktemp("kill_reference") / "ref"
    run = subprocess.run(_cmd(dataset, path, "serial"), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return path


def test_sigkill_then_rerun_gives_the_uninterrupted_store(dataset, reference, tmp_path):
    expected = _snapshot(reference)
    assert len(expected) == N_VIDEOS

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(dataset, out, "ray"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # Kill once a random number of shards (one video each) has landed, with several still to do, so the kill falls
    # mid-run whatever the machine's speed; the kill lands between shards or while one is being written.
    landed_before_kill = random.Random(os.getpid()).randint(1, N_VIDEOS - 4)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if _recorded(out) >= landed_before_kill:
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
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [] and len(partial) < N_VIDEOS


#: Runs `vfx ARGS...` with a pause at one point of the end of a run; writes MARKER when it gets there.
_PAUSED_RUN = """
import os, pathlib, sys, time
import vfx.store.index, vfx.store.writer
from vfx.store.catalog import CATALOG
marker, where, args = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]

def pause():
    marker.write_text(where)
    time.sleep(600)

if where == "catalog-write":  # the new catalog half written under its temporary name
    real = vfx.store.writer.catalog_bytes
    def half_written(catalog, attrs):
        data = real(catalog, attrs)
        store = pathlib.Path(args[args.index("-o") + 1])
        (store / f"{CATALOG}.{os.getpid()}.tmp").write_bytes(data[: len(data) // 2])
        pause()
    vfx.store.writer.catalog_bytes = half_written
elif where == "log-delete":  # the catalog replaced, the log entries it absorbed not deleted yet
    vfx.store.writer.clear_log = lambda *a: pause()
elif where == "index-replace":  # the new index complete under its temporary name, not renamed yet
    vfx.store.index._before_replace = lambda tmp: pause()
sys.argv = ["vfx", *args]
from vfx.cli import main
main()
"""


def _index_links(path):
    with h5py.File(path / "index.h5", "r") as index:
        return {name: index["videos"].get(name, getlink=True).filename for name in index["videos"]}


@pytest.mark.parametrize("where", ["catalog-write", "log-delete", "index-replace"])
def test_sigkill_inside_the_fold_or_the_index_update(dataset, reference, tmp_path, where):
    expected = _snapshot(reference)

    out, marker = tmp_path / "killed", tmp_path / "marker"
    args = _cmd(dataset, out, "serial")[3:]
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_RUN, str(marker), where, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no pause reached"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # every video was committed before the kill: a reader sees them all whatever state the fold was in
    assert _snapshot(out) == expected

    rerun = subprocess.run(_cmd(dataset, out, "serial"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"0 done, 0 failed, {N_VIDEOS} already in the store" in rerun.stdout
    assert _snapshot(out) == expected
    assert _index_links(out) == _index_links(reference)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["catalog.h5", "index.h5", "shards", "vfx-store.json"], names  # log folded, no leftovers
