"""The synthetic motion dataset: real video files, class folders, motion that matches the class name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import decord
import numpy as np
import pytest

from vfx.errors import UsageError
from vfx.train.synthetic import CLASSES, SyntheticParams, make_dataset, render_video

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_synthetic_dataset.py"


def median_flow(frames: np.ndarray) -> tuple[float, float, float]:
    """Median (dx, dy) over moving pixels of consecutive frames, and the fraction of moving pixels."""
    moving = []
    for a, b in zip(frames[:-1], frames[1:]):
        ga, gb = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b))
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        mag = np.linalg.norm(flow, axis=2)
        moving.append(flow[mag > 0.5])
    pts = np.concatenate(moving)
    if len(pts) == 0:
        return 0.0, 0.0, 0.0
    return float(np.median(pts[:, 0])), float(np.median(pts[:, 1])), len(pts) / (frames[0].size / 3 * (len(frames) - 1))


@pytest.mark.parametrize("cls", CLASSES)
def test_each_class_moves_as_its_name_says(cls):
    p = SyntheticParams(num_frames=6, width=64, height=64, noise_std=0.0, speed_px=(2.0, 2.0))
    frames = render_video(cls, np.random.default_rng([0, CLASSES.index(cls), 0]), p)
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    dx, dy, moving = median_flow(frames)
    if cls == "still":
        assert np.array_equal(frames[0], frames[-1])
    elif cls == "rise":
        assert dy < -1.0 and abs(dx) < 0.5
    elif cls == "fall":
        assert dy > 1.0 and abs(dx) < 0.5
    elif cls == "sideways":
        assert abs(dx) > 1.0 and abs(dy) < 0.5
    else:  # spin: plenty of motion, no net translation
        assert moving > 0.01 and abs(dx) < 1.0 and abs(dy) < 1.0


def test_dataset_is_class_folders_of_readable_videos(tmp_path):
    p = SyntheticParams(videos_per_class=2, num_frames=8, width=64, height=48, classes=("rise", "still"))
    rows = make_dataset(tmp_path, p)
    assert sorted(r["path"] for r in rows) == [
        "rise/rise_0000.mkv", "rise/rise_0001.mkv", "still/still_0000.mkv", "still/still_0001.mkv"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["classes"] == ["rise", "still"]
    vr = decord.VideoReader(str(tmp_path / "rise" / "rise_0001.mkv"))
    assert len(vr) == 8
    decoded = vr.get_batch(list(range(8))).asnumpy()
    # FFV1 is lossless: the file holds exactly the rendered RGB frames.
    expected = render_video("rise", np.random.default_rng([p.seed, CLASSES.index("rise"), 1]), p)
    assert np.array_equal(decoded, expected)


def test_a_video_does_not_depend_on_how_many_others_are_made(tmp_path):
    small = SyntheticParams(videos_per_class=1, num_frames=4, width=32, height=32)
    big = SyntheticParams(videos_per_class=3, num_frames=4, width=32, height=32)
    rng = lambda: np.random.default_rng([0, 2, 0])  # noqa: E731
    assert np.array_equal(render_video("sideways", rng(), small), render_video("sideways", rng(), big))


def test_appearance_is_drawn_independently_of_the_class():
    # Same generator state, different class: the first frame (before any motion) is identical.
    p = SyntheticParams(num_frames=3, width=32, height=32, noise_std=0.0)
    first = {c: render_video(c, np.random.default_rng(7), p)[0] for c in ("rise", "fall", "still")}
    assert np.array_equal(first["rise"], first["fall"]) and np.array_equal(first["rise"], first["still"])


@pytest.mark.parametrize(
    "kw, message",
    [({"classes": ("jump",)}, "unknown synthetic classes"), ({"codec": "h265"}, "unknown codec"),
     ({"width": 8}, "too small")],
)
def test_bad_parameters(kw, message):
    with pytest.raises(UsageError, match=message):
        SyntheticParams(**kw)


def test_script_writes_videos_and_reports_bad_sizes(tmp_path):
    ok = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "d"), "--videos-per-class", "1", "--frames", "3",
                         "--size", "32x32", "--codec", "mp4v", "--classes", "fall,spin"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert sorted(p.name for p in (tmp_path / "d").rglob("*.mp4")) == ["fall_0000.mp4", "spin_0000.mp4"]
    bad = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "e"), "--size", "big"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--size 'big' is not WIDTHxHEIGHT" in bad.stderr
