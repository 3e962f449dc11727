"""The commands against a real S3-compatible server (moto's server mode on 127.0.0.1, tests/s3server.py).

Every store made on `s3://` must equal the store the same command makes on local disk: frames, flow from a
frames store, features, a run killed with SIGKILL and rerun, and videos read from the bucket (rows of a list
file, or a prefix as INPUT). Credentials and the endpoint reach vfx only through the standard AWS variables
that the `s3` fixture sets (and `S3.env` gives a subprocess), as on real S3.

Tiny on purpose (3-8 videos of 64x48, serial engine): the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import vfx
from vfx.cli import app
from vfx.errors import UsageError
from videos import pattern_frames, write_video

SERIAL = ["--engine", "serial", "--no-progress"]
FRAMES = ["--short-side", "32"]
# i3d_rgb with random (seeded) weights on 8-frame clips of 32x32 crops: the cheapest model run there is.
FEATURES = ["--model", "i3d_rgb", "--clip-len", "8", "--stride", "8", "--short-side", "32", "--crop-size", "32",
            "--threads", "1"]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """3 lossless 64x48 videos of 16-20 frames in two class folders."""
    root = tmp_path_factory.mktemp("s3_videos")
    for n in range(3):
        write_video(root / ("left", "right")[n % 2] / f"v{n}.mkv", pattern_frames(16 + 2 * n, seed=n, dx=2 - 4 * (n % 2)))
    return root


@pytest.fixture(scope="module")
def local_frames(videos, tmp_path_factory):
    """The reference: `vfx extract-frames` of `videos` into a local store."""
    out = tmp_path_factory.mktemp("s3_local") / "frames.vfx"
    code, _, err = invoke("extract-frames", videos, "-o", out, *FRAMES, *SERIAL)
    assert code == 0, err
    return out


def frames_snapshot(path):
    """What a frames store holds per video: its JPEG bytes, decoded frames, frame numbers and timestamps."""
    with vfx.open_store(path) as store:
        return {vid: (store.group(vid)["jpeg"][()].tobytes(), store.read_frames(vid), store.frame_index(vid).tolist(),
                      store.timestamps(vid).tolist()) for vid in store.video_ids()}


def assert_same_frames(path, reference):
    got, expected = frames_snapshot(path), frames_snapshot(reference)
    assert sorted(got) == sorted(expected)
    for vid, (jpeg, frames, index, times) in expected.items():
        assert got[vid][0] == jpeg and got[vid][2:] == (index, times), vid
        np.testing.assert_array_equal(got[vid][1], frames)


def upload(s3, folder, prefix: str) -> dict[str, str]:
    """Put every video under `folder` at `prefix/<relative path>`; returns relative path -> URL."""
    client, urls = s3.client(), {}
    for path in sorted(folder.rglob("*.mkv")):
        rel = path.relative_to(folder).as_posix()
        client.upload_file(str(path), s3.bucket, f"{prefix}/{rel}")
        urls[rel] = s3.url(f"{prefix}/{rel}")
    return urls


def test_extract_frames_into_s3_equals_local_and_info_reads_it(videos, local_frames, s3):
    url = s3.url("ucf/frames.vfx")
    code, out, err = invoke("extract-frames", videos, "-o", url, *FRAMES, *SERIAL)
    assert code == 0, err
    assert "frames: 3 done, 0 failed" in out and out.rstrip().endswith(f"-> {url}"), out
    assert not os.path.exists("s3:"), "the URL became a local folder"
    assert "ucf/frames.vfx/vfx-store.json" in s3.keys("ucf/")
    assert_same_frames(url, local_frames)
    with vfx.open_store(url) as remote, vfx.open_store(local_frames) as local:
        assert remote.params == local.params
        for vid in local.video_ids():
            assert remote.attrs(vid) == local.attrs(vid)
    code, out, err = invoke("info", url)
    assert code == 0, err
    assert f"store:    {url}" in out and "kind:     frames" in out and "3 done, 0 failed" in out


def test_extract_flow_from_an_s3_frames_store_into_s3_equals_local(videos, local_frames, s3, tmp_path):
    frames_url, flow_url = s3.url("ucf/frames.vfx"), s3.url("ucf/flow.vfx")
    assert invoke("extract-frames", videos, "-o", frames_url, *FRAMES, *SERIAL)[0] == 0
    code, out, err = invoke("extract-flow", "--from-frames", frames_url, "-o", flow_url, *SERIAL)
    assert code == 0, err
    assert "flow: 3 done, 0 failed" in out, out
    code, _, err = invoke("extract-flow", "--from-frames", local_frames, "-o", tmp_path / "flow.vfx", *SERIAL)
    assert code == 0, err
    with vfx.open_store(flow_url) as remote, vfx.open_store(tmp_path / "flow.vfx") as local:
        assert remote.params["from_frames"] == frames_url
        assert remote.video_ids() == local.video_ids() == ["v0", "v1", "v2"]
        for vid in local.video_ids():
            np.testing.assert_array_equal(remote.flow_pairs(vid), local.flow_pairs(vid))
            np.testing.assert_array_equal(remote.read_flow(vid, dequantize=False), local.read_flow(vid, dequantize=False))


def test_features_from_an_s3_frames_store_into_s3_equal_local(videos, local_frames, s3, tmp_path):
    frames_url, features_url = s3.url("ucf/frames.vfx"), s3.url("ucf/i3d.vfx")
    assert invoke("extract-frames", videos, "-o", frames_url, *FRAMES, *SERIAL)[0] == 0
    # INPUT is the frames store on S3: its videos are the items and it serves as --from-frames.
    code, out, err = invoke("features", frames_url, "-o", features_url, *FEATURES, *SERIAL)
    assert code == 0, err
    assert "features: 3 done, 0 failed" in out and "RANDOM weights" in err, out
    code, _, err = invoke("features", local_frames, "-o", tmp_path / "i3d.vfx", *FEATURES, *SERIAL)
    assert code == 0, err
    with vfx.open_store(features_url) as remote, vfx.open_store(tmp_path / "i3d.vfx") as local:
        assert remote.params["inputs"]["frames"] == frames_url
        assert remote.video_ids() == local.video_ids() == ["v0", "v1", "v2"]
        for vid in local.video_ids():
            np.testing.assert_array_equal(remote.clip_frames(vid), local.clip_frames(vid))
            np.testing.assert_allclose(remote.read_features(vid), local.read_features(vid), rtol=1e-5, atol=1e-6)


N_KILL = 8


@pytest.fixture(scope="module")
def kill_videos(tmp_path_factory):
    """8 videos, a shard each in the kill test: enough that the kill lands with several still to do."""
    root = tmp_path_factory.mktemp("s3_kill_videos")
    for n in range(N_KILL):
        write_video(root / f"k{n}.mkv", pattern_frames(40, 128, 96, seed=n, dx=1 + n % 3))
    return root


def _kill_cmd(videos, out):
    return [sys.executable, "-m", "vfx", "extract-frames", str(videos), "-o", str(out), *FRAMES, "--shard-size",
            "1", *SERIAL]


def _recorded(url) -> int:
    try:
        with vfx.open_store(url) as store:
            return len(store.recorded)
    except (UsageError, OSError):
        return 0  # no manifest yet


def test_sigkill_mid_run_into_s3_then_rerun_gives_the_uninterrupted_store(kill_videos, s3, tmp_path):
    reference = tmp_path / "ref.vfx"
    run = subprocess.run(_kill_cmd(kill_videos, reference), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr

    url = s3.url("runs/frames.vfx")
    env = {**os.environ, **s3.env}
    proc = subprocess.Popen(_kill_cmd(kill_videos, url), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and _recorded(url) < 2:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = _recorded(url)
    assert 2 <= recorded < N_KILL

    rerun = subprocess.run(_kill_cmd(kill_videos, url), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    # the killed run's claim on the store (its pid gone) is taken over, and only the rest is done
    words = rerun.stdout.split()
    done, already = int(words[1]), int(words[words.index("already") - 1])
    assert done + already == N_KILL and already >= recorded, (rerun.stdout, recorded)
    assert_same_frames(url, reference)
    assert [k for k in s3.keys("runs/") if k.endswith(".tmp") or "/tmp/" in k or "/lock/" in k] == []


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The machine's temporary folder for this test: workers download inputs there (and must remove them)."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def leftover_files(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_list_file_of_s3_videos_with_a_missing_one(videos, local_frames, s3, scratch, tmp_path):
    urls = upload(s3, videos, "videos")
    missing = s3.url("videos/left/gone.mkv")
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for rel, url in urls.items():
            writer.writerow([url, rel.split("/")[0]])
        writer.writerow([missing, "left"])
    out = s3.url("ucf/frames.vfx")
    code, stdout, err = invoke("extract-frames", listing, "-o", out, *FRAMES, *SERIAL)
    assert code == 1, err
    assert "frames: 3 done, 1 failed" in stdout, stdout
    # one line that names the object
    lines = [line for line in err.splitlines() if "failed gone:" in line]
    assert len(lines) == 1 and missing in lines[0], err
    assert_same_frames(out, local_frames)
    with vfx.open_store(out) as store:
        assert {vid: store.attrs(vid)["source_path"] for vid in store.video_ids()} == {
            "v0": urls["left/v0.mkv"], "v1": urls["right/v1.mkv"], "v2": urls["left/v2.mkv"]}
        assert store.attrs("v1")["label"] == "right"
        assert list(store.failures()) == ["gone"] and missing in store.failures()["gone"]
    assert leftover_files(scratch) == [], "downloaded inputs must be removed"


def test_s3_prefix_as_input(videos, local_frames, s3, scratch, tmp_path):
    urls = upload(s3, videos, "data/videos")
    code, out, err = invoke("extract-frames", s3.url("data/videos/"), "-o", tmp_path / "frames.vfx", *FRAMES, *SERIAL)
    assert code == 0, err
    assert "frames: 3 done, 0 failed" in out, out
    assert_same_frames(tmp_path / "frames.vfx", local_frames)
    with vfx.open_store(tmp_path / "frames.vfx") as store, vfx.open_store(local_frames) as local:
        for vid in local.video_ids():
            attrs, expected = store.attrs(vid), local.attrs(vid)
            assert attrs["label"] == expected["label"] and attrs["source_path"] in urls.values()
    assert leftover_files(scratch) == []
    # a prefix without videos, and one that does not exist, are one-line usage errors
    code, _, err = invoke("extract-frames", s3.url("nothing/here/"), "-o", tmp_path / "x.vfx", *SERIAL)
    assert code == 2 and s3.url("nothing/here/") in err and "no such object or prefix" in err, err
