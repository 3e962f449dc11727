"""First-day papercuts of training: per-stream accuracies, best.pt, stores that share few videos."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

import vfx
import vfx.cli  # noqa: F401 - registers the commands
from test_train_support import extract_flow, frames_store, make_videos
from vfx.cli.app import app
from vfx.train.data import DataConfig
from vfx.train.loop import load_checkpoint, train_fusion
from vfx.train.model import ModelConfig
from vfx.train.params import TrainParams

SIZE = 32


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("papercuts")
    videos = make_videos(root / "videos", videos_per_class=3, frames=8, size=SIZE, classes=("fall", "rise", "still"))
    frames = frames_store(videos, root / "frames", size=SIZE)
    return {"videos": videos, "frames": frames, "flow": extract_flow(frames, root / "flow")}


def late(stores, **kw) -> TrainParams:
    return TrainParams(
        model=ModelConfig(width=4, num_segments=2, flow_length=2, fusion="late", temporal_fusion="avg"),
        data=DataConfig(num_segments=2, flow_length=2, crop_size=SIZE, val_fraction=0.34),
        frames=str(stores["frames"]), flow=str(stores["flow"]), **{"epochs": 3, "batch_size": 3, "threads": 1, **kw},
    )


def test_evaluate_reports_rgb_flow_and_fused_accuracy(stores, tmp_path):
    result = train_fusion(late(stores, lr=0.05), tmp_path / "run", progress=False, log=lambda s: None)
    streams = result.metrics["streams"]
    assert set(streams) == {"rgb", "flow"}
    # each stream's figure is its own classifier's: recompute the rgb one by hand from the model's logits
    from vfx.train.loop import build_datasets

    ds = build_datasets(late(stores)).val
    model = result.model.eval()
    hits = {"rgb": 0, "flow": 0}
    with torch.no_grad():
        for i in range(len(ds)):
            sample = ds[i]
            logits = model({s: sample[s][None] for s in ("rgb", "flow")})
            for stream, z in zip(("rgb", "flow"), logits):
                hits[stream] += int(z.argmax(1).item() == sample["label"])
    for stream in ("rgb", "flow"):
        assert streams[stream]["top1"] == pytest.approx(hits[stream] / len(ds))
    ev = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run" / "last.pt"), "--no-progress"])
    assert ev.exit_code == 0, ev.output
    assert (f"rgb top-1 {100 * streams['rgb']['top1']:.1f} %   flow top-1 {100 * streams['flow']['top1']:.1f} %   "
            f"fused top-1 {100 * result.metrics['top1']:.1f} %") in ev.output


def test_best_checkpoint_is_kept_beside_the_last(stores, tmp_path):
    train_fusion(late(stores, lr=0.05), tmp_path / "run", progress=False, log=lambda s: None)
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    tops = [h["val"]["top1"] for h in history]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == tops.index(max(tops)) + 1
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 3


def test_stores_sharing_few_videos_say_how_many_and_leave_no_run_directory(stores, tmp_path):
    one = sorted(p for p in stores["videos"].rglob("*") if p.is_file() and p.suffix in (".mkv", ".avi", ".mp4"))[0]
    r = CliRunner().invoke(app, ["extract-flow", str(one), "--from-frames", str(stores["frames"]), "-o",
                                 str(tmp_path / "flow1"), "--backend", "dis", "--engine", "serial", "--no-progress"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "runs" / "r"
    r = CliRunner().invoke(app, ["train-fusion", "--frames", str(stores["frames"]), "--flow", str(tmp_path / "flow1"),
                                 "-o", str(out), "--width", "4", "--crop-size", str(SIZE), "--segments", "2",
                                 "--flow-length", "2", "--no-progress"])
    assert r.exit_code == 2
    assert f"1 videos done in every store (9 in {stores['frames']}, 1 in {tmp_path / 'flow1'})" in r.output
    assert not out.exists() and not out.parent.exists()
    assert len(vfx.open_store(tmp_path / "flow1")) == 1


@pytest.fixture(scope="module")
def direction_stores(tiny_dataset, tmp_path_factory):
    """left / right / still clips (conftest: 2 px a frame to the left or right)."""
    root = tmp_path_factory.mktemp("directions")
    frames = frames_store(tiny_dataset, root / "frames", size=SIZE)
    r = CliRunner().invoke(app, ["extract-flow", "--from-frames", str(frames), "-o", str(root / "flow"), "--backend",
                                 "dis", "--engine", "serial", "--no-progress"])
    assert r.exit_code == 0, r.output
    return frames, root / "flow"


def _label_vs_motion(datasets):
    """(label, direction the flow shows) of every training sample over 8 epochs."""
    classes = datasets.classes
    out = []
    for epoch in range(8):
        datasets.train.set_epoch(epoch)
        for i in range(len(datasets.train)):
            s = datasets.train[i]
            label = classes[int(s["label"])]
            if label == "still":
                continue
            out.append((label, "right" if float(s["flow"][:, 0::2].mean()) > 0 else "left"))
    return out


def test_flips_map_direction_labels_or_warn(direction_stores):
    from vfx.train.data import build_video_datasets

    frames, flow = direction_stores
    cfg = dict(num_segments=1, flow_length=1, crop_size=SIZE, val_fraction=0.5, flip=True)
    plain = build_video_datasets(frames, flow, ("flow",), DataConfig(**cfg), seed=1)
    assert any(n.startswith("WARNING: classes 'left', 'right' name a direction") for n in plain.notes)
    pairs = _label_vs_motion(plain)
    assert any(label != seen for label, seen in pairs)  # a mirrored "right" clip still labelled right
    mapped = build_video_datasets(frames, flow, ("flow",), DataConfig(**cfg, flip_label_map=(("left", "right"),)), seed=1)
    assert not mapped.notes
    pairs = _label_vs_motion(mapped)
    assert pairs and all(label == seen for label, seen in pairs)
    assert {label for label, _ in pairs} == {"left", "right"}


def test_ssv2_recipe_sets_the_flip_label_map(stores, tmp_path):
    r = CliRunner().invoke(app, ["train-fusion", "--frames", str(stores["frames"]), "--flow", str(stores["flow"]),
                                 "-o", str(tmp_path / "r"), "--recipe", "ssv2", "--width", "4", "--crop-size", str(SIZE),
                                 "--segments", "2", "--flow-length", "2", "--epochs", "1", "--val-fraction", "0.34",
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    params = json.loads((tmp_path / "r" / "params.json").read_text())
    assert ["Pushing something from left to right", "Pushing something from right to left"] in params["data"]["flip_label_map"]
