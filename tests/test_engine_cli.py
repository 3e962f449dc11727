"""Runs as a user sees them: honest reruns, Ctrl-C, and a working directory holding a folder named `vfx`."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import vfx
from vfx.store.catalog import read_log
from vfx.store.location import Location

VFX = str(Path(sys.executable).with_name("vfx"))
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _run(*args, cwd=None, timeout=300):
    return subprocess.run([VFX, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout)


def test_a_rerun_that_finds_failed_videos_exits_1_and_says_how_to_retry(tiny_dataset, tmp_path):
    folder = tmp_path / "videos"
    shutil.copytree(tiny_dataset / "left", folder)
    (folder / "broken.mp4").write_bytes(b"not a video")
    args = ["extract-frames", folder, "-o", tmp_path / "s", "--engine", "serial", "--short-side", "32", "--no-progress"]
    first = _run(*args)
    assert first.returncode == 1 and "1 of 3 videos failed" in first.stderr
    again = _run(*args)
    assert again.returncode == 1
    assert "resuming: 2 of 3 done, 1 failed earlier, 0 to go" in again.stderr
    assert "1 videos failed earlier (vfx info lists them); --retry-failed tries them again" in again.stderr
    retried = _run(*args, "--retry-failed")
    assert retried.returncode == 1 and "failed broken" in retried.stderr and "failed earlier" not in retried.stderr


def test_workers_import_the_installed_vfx_whatever_the_working_directory_holds(tiny_dataset, tmp_path):
    clone = tmp_path / "work"
    (clone / "vfx").mkdir(parents=True)  # a namespace-package candidate, as a user's clone folder can be
    (clone / "vfx" / "engine").mkdir()
    run = _run("extract-frames", tiny_dataset / "left", "-o", tmp_path / "s", "--short-side", "32", "--workers", "1",
               "--no-progress", cwd=clone)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "starting Ray: 1 worker" in run.stderr
    assert "2 done, 0 failed" in run.stdout


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(samples, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for n in range(8):
        os.symlink(samples["bikes"], folder / f"bikes{n}.mp4")
    store = tmp_path / "s"
    proc = subprocess.Popen([VFX, "extract-frames", str(folder), "-o", str(store), "--short-side", "64", "--workers", "1",
                             "--shard-size", "1", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not read_log(Location.parse(store)):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    saved = len(vfx.open_store(store).video_ids())
    assert 1 <= saved < 8
    assert f"interrupted: {saved} videos saved in {store}; run the same command to resume" in err
    assert not [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    again = _run("extract-frames", folder, "-o", store, "--short-side", "64", "--workers", "1", "--shard-size", "1",
                 "--no-progress")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"resuming: {saved} of 8 done, {8 - saved} to go" in again.stderr
