"""Helpers for the train tests: real videos, real frames stores, and flow/feature stores written through the
engine with a stage whose output is known exactly (so alignment and flips can be checked to the value).

Also holds the checks of these helpers themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import vfx
from vfx.cli.app import app
from vfx.engine import RunOptions, Stage, VideoOutput, run_stage
from vfx.types import VideoItem
from vfx.train.synthetic import SyntheticParams, make_dataset


def make_videos(root: Path, videos_per_class: int = 4, frames: int = 12, size: int = 48, classes=None, seed=0) -> Path:
    kw = {"classes": tuple(classes)} if classes else {}
    make_dataset(root, SyntheticParams(videos_per_class=videos_per_class, num_frames=frames, width=size,
                                       height=size, seed=seed, **kw))
    return root


def frames_store(video_dir: Path, out: Path, size: int = 48, extra: tuple[str, ...] = ()) -> Path:
    import vfx.cli  # noqa: F401 - registers the commands

    result = CliRunner().invoke(
        app, ["extract-frames", str(video_dir), "-o", str(out), "--size", f"{size}x{size}", "--engine", "serial",
              *extra],
    )
    assert result.exit_code == 0, result.output
    return out


class CodedFlowStage(Stage):
    """Flow store from a frames store whose field i holds, everywhere, x = start frame number / 4 and
    y = -(x) - 1 (or, `real=True`, Farneback flow of the stored frames). Pairs (s_i, s_i + 1) in source
    frame numbers, i.e. what `extract-flow --from-frames` stores."""

    kind = "flow"

    def __init__(self, frames_path: str, real: bool = False, fmt: str = "float16"):
        self.frames_path = frames_path
        self.real = real
        self.fmt = fmt

    def provenance(self):
        return {"stage": "test-coded-flow", "real": self.real, "format": self.fmt}

    def process(self, item: VideoItem) -> VideoOutput:
        import cv2

        store = vfx.open_store(self.frames_path)
        fi = store.frame_index(item.video_id)
        frames = store.read_frames(item.video_id)
        n, h, w = len(fi) - 1, frames.shape[1], frames.shape[2]
        flow = np.zeros((n, h, w, 2), np.float32)
        for i in range(n):
            if self.real:
                a = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
                b = cv2.cvtColor(frames[i + 1], cv2.COLOR_RGB2GRAY)
                flow[i] = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0)
            else:
                flow[i, ..., 0] = fi[i] / 4.0
                flow[i, ..., 1] = -fi[i] / 4.0 - 1.0
        store.close()
        bound = 20.0
        if self.fmt == "uint8":
            data = np.round((np.clip(flow, -bound, bound) + bound) * 255.0 / (2 * bound)).astype(np.uint8)
        else:
            data = flow.astype(np.float16)
        pairs = np.stack([fi[:-1], fi[1:]], 1).astype(np.int32)
        return VideoOutput(datasets={"flow": data, "flow_pairs": pairs}, attrs={"flow_format": self.fmt, "bound": bound})


def extract_flow(frames_path: Path, out: Path, extra: tuple[str, ...] = ()) -> Path:
    """The real command: `vfx extract-flow -o OUT --from-frames FRAMES` (OpenCV TV-L1 by default)."""
    import vfx.cli  # noqa: F401 - registers the commands

    result = CliRunner().invoke(
        app, ["extract-flow", "-o", str(out), "--from-frames", str(frames_path), "--engine", "serial", "--no-progress",
              *extra],
    )
    assert result.exit_code == 0, result.output
    return out


def flow_store(frames_path: Path, out: Path, real: bool = False, fmt: str = "float16") -> Path:
    store = vfx.open_store(frames_path)
    items = []
    for v in store.video_ids():
        a = store.attrs(v)
        items.append(VideoItem(v, a["source_path"], a.get("label"), a.get("split")))
    store.close()
    summary = run_stage(CodedFlowStage(str(frames_path), real, fmt), items, out, RunOptions(engine="serial", progress=False))
    assert summary.failed == 0, summary.failures
    return out


class CodedFeatureStage(Stage):
    """Features store: per video `num_clips` clips, feature = one-hot of the label index (times clip number
    + 1 in dimension 0) plus noise, so a fusion head can learn it in a few steps."""

    kind = "features"

    def __init__(self, classes: list[str], dim: int = 6, num_clips: int = 5, clip_len: int = 4, noise: float = 0.3, seed=0):
        self.classes, self.dim, self.num_clips, self.clip_len, self.noise, self.seed = classes, dim, num_clips, clip_len, noise, seed

    def provenance(self):
        return {"stage": "test-features", "dim": self.dim, "seed": self.seed}

    def process(self, item: VideoItem) -> VideoOutput:
        rng = np.random.default_rng([self.seed, sum(map(ord, item.video_id))])
        feats = rng.normal(0, self.noise, (self.num_clips, self.dim)).astype(np.float32)
        feats[:, self.classes.index(item.label)] += 1.0
        starts = np.arange(self.num_clips) * self.clip_len
        clip_frames = np.stack([starts, starts + self.clip_len - 1], 1).astype(np.int32)
        spatial = feats[:, :, None, None, None] + rng.normal(0, self.noise, (self.num_clips, self.dim, 2, 3, 3))
        return VideoOutput(datasets={"features": feats, "clip_frames": clip_frames, "spatial": spatial.astype(np.float16)})


def feature_store(out: Path, labels: dict[str, str], seed: int = 0, dim: int = 6) -> Path:
    classes = sorted(set(labels.values()))
    items = [VideoItem(v, f"/nonexistent/{v}.mp4", lab) for v, lab in sorted(labels.items())]
    summary = run_stage(CodedFeatureStage(classes, dim=dim, seed=seed), items, out, RunOptions(engine="serial", progress=False))
    assert summary.failed == 0, summary.failures
    return out


def test_coded_flow_store_holds_the_coded_values(tmp_path):
    videos = make_videos(tmp_path / "v", videos_per_class=1, frames=6, size=32, classes=("rise", "still"))
    fs = frames_store(videos, tmp_path / "frames", size=32)
    fl = flow_store(fs, tmp_path / "flow")
    store = vfx.open_store(fl)
    v = store.video_ids()[0]
    assert store.kind == "flow"
    assert store.flow_pairs(v).tolist() == [[i, i + 1] for i in range(5)]
    np.testing.assert_allclose(store.read_flow(v)[:, 0, 0, 0], np.arange(5) / 4.0)
