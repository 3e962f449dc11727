"""Training loop, checkpoints and resume, metrics outputs, feature mode and the two commands."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vfx
import vfx.cli  # noqa: F401 - registers the commands
from test_train_support import extract_flow, feature_store, frames_store, make_videos
from vfx.cli.app import app
from vfx.errors import UsageError
from vfx.train.data import DataConfig, build_feature_datasets
from vfx.train.loop import build_datasets, build_model, learning_rate, load_checkpoint, train_fusion
from vfx.train.metrics import classification_metrics, format_metrics, write_confusion_png
from vfx.train.model import ModelConfig
from vfx.train.params import TrainParams

SIZE = 32


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    videos = make_videos(root / "videos", videos_per_class=3, frames=8, size=SIZE, classes=("fall", "rise", "still"))
    frames = frames_store(videos, root / "frames", size=SIZE)
    return {"frames": frames, "flow": extract_flow(frames, root / "flow")}


def tiny(stores, **kw) -> TrainParams:
    model = dict(width=4, num_segments=2, flow_length=2, fusion="conv", temporal_fusion="avg")
    model.update(kw.pop("model", {}))
    return TrainParams(
        model=ModelConfig(**model),
        data=DataConfig(num_segments=2, flow_length=2, crop_size=SIZE, val_fraction=0.34),
        frames=str(stores["frames"]),
        flow=str(stores["flow"]),
        **{"epochs": 2, "batch_size": 3, "threads": 1, **kw},
    )


def test_run_writes_checkpoint_metrics_and_confusion_picture(stores, tmp_path):
    out = tmp_path / "run"
    result = train_fusion(tiny(stores), out, progress=False, metrics_json=tmp_path / "m.json", log=lambda s: None)
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["num_videos"] == 3 and set(m["per_class"]) == {"fall", "rise", "still"}
    assert 0.0 <= m["top1"] <= m["top5"] == 1.0  # 3 classes: the top 5 always hold the label
    assert np.asarray(m["confusion"]).sum() == 3
    summary = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert summary["final"]["top1"] == m["top1"] and summary["num_parameters"] == result.num_parameters
    picture = cv2.imread(str(out / "confusion.png"))
    assert picture is not None and picture.shape[0] > 60 and picture.shape[1] > 60
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and state["classes"] == ("fall", "rise", "still")
    assert state["params"] == tiny(stores)
    assert set(state["optimizer"]) == {"state", "param_groups"}


def test_resumed_run_reaches_the_same_weights_as_an_uninterrupted_one(stores, tmp_path):
    params = tiny(stores, model={"dropout": 0.5, "temporal_fusion": "conv3d"}, epochs=3)
    straight = train_fusion(params, tmp_path / "a", progress=False, log=lambda s: None)

    def interrupt(state):
        if state.epoch == 1 and state.step_in_epoch == 0:  # in the middle of the second epoch
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_fusion(params, tmp_path / "b", progress=False, callback=interrupt, log=lambda s: None)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    resumed = train_fusion(params, tmp_path / "b", resume=True, progress=False, log=lambda s: None)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.metrics == straight.metrics
    # ... and the run is not trivially static: training moved the weights.
    fresh = load_checkpoint(tmp_path / "b" / "last.pt")
    assert fresh["epoch"] == 3


def test_resume_with_other_parameters_or_without_flag_is_refused(stores, tmp_path):
    train_fusion(tiny(stores, epochs=1), tmp_path / "r", progress=False, log=lambda s: None)
    with pytest.raises(UsageError, match="already holds a checkpoint"):
        train_fusion(tiny(stores, epochs=1), tmp_path / "r", progress=False, log=lambda s: None)
    with pytest.raises(UsageError, match=r"cannot resume with other parameters \(lr: 0.01 -> 0.1\)"):
        train_fusion(tiny(stores, epochs=2, lr=0.1), tmp_path / "r", resume=True, progress=False, log=lambda s: None)


def test_fusion_starts_from_the_single_stream_runs(stores, tmp_path):
    quiet = dict(progress=False, log=lambda s: None)
    rgb = train_fusion(tiny(stores, model={"streams": ("rgb",)}, epochs=1), tmp_path / "rgb", **quiet)
    flow = train_fusion(tiny(stores, model={"streams": ("flow",)}, epochs=1), tmp_path / "flow", **quiet)
    late = tiny(stores, model={"fusion": "late"}, init_from=(str(tmp_path / "rgb" / "last.pt"), str(tmp_path / "flow" / "last.pt")))
    model, _ = build_model(late, build_datasets(late))
    for stream, run in (("rgb", rgb), ("flow", flow)):
        for key, value in run.model.state_dict().items():  # backbone and the stream's own classifier
            assert torch.equal(model.state_dict()[key], value), key
    # Another temporal fusion: the backbones still load, the classifiers (other layers) start fresh.
    late3d = replace(late, model=replace(late.model, temporal_fusion="conv3d"))
    model3d, _ = build_model(late3d, build_datasets(late3d))
    assert torch.equal(model3d.backbones["rgb"].conv1.weight, rgb.model.backbones["rgb"].conv1.weight)
    assert model3d.head.temporal["rgb"].conv3d is not None
    conv = replace(late, model=replace(late.model, fusion="conv"))
    fused, _ = build_model(conv, build_datasets(conv))
    assert torch.equal(fused.backbones["flow"].conv1.weight, flow.model.backbones["flow"].conv1.weight)
    with pytest.raises(UsageError, match="has no backbone or classifier this model can take"):
        only_flow = tiny(stores, model={"streams": ("flow",)}, init_from=(str(tmp_path / "rgb" / "last.pt"),))
        build_model(only_flow, build_datasets(only_flow))


def test_feature_mode_learns_separable_features(tmp_path):
    labels = {f"{c}_{i}": c for c in ("a", "b", "c") for i in range(12)}
    rgb = feature_store(tmp_path / "rgb", labels, seed=1)
    flow = feature_store(tmp_path / "flow", labels, seed=2)
    params = TrainParams(
        model=ModelConfig(fusion="conv", temporal_fusion="conv3d", num_segments=3, dropout=0.0),
        data=DataConfig(num_segments=3, val_fraction=0.25),
        features=(str(rgb), str(flow)),
        epochs=15,
        batch_size=9,
        optimizer="adamw",
        lr=0.01,
        weight_decay=0.0,
        eval_every=0,
    )
    result = train_fusion(params, tmp_path / "run", progress=False, log=lambda s: None)
    assert result.metrics["num_videos"] == 9
    assert result.metrics["top1"] >= 0.99
    assert dict(load_checkpoint(tmp_path / "run" / "last.pt")["params"].model.feature_channels) == {"rgb": 6, "flow": 6}


def test_feature_mode_on_spatial_maps(tmp_path):
    labels = {f"{c}_{i}": c for c in ("a", "b") for i in range(6)}
    rgb = feature_store(tmp_path / "rgb", labels, seed=1, dim=4)
    flow = feature_store(tmp_path / "flow", labels, seed=2, dim=4)
    data = DataConfig(num_segments=2, val_fraction=0.34, feature_key="spatial")
    datasets = build_feature_datasets([rgb, flow], ("rgb", "flow"), data)
    assert datasets.feature_channels == {"rgb": 4, "flow": 4}
    assert datasets.val[0]["rgb"].shape == (2, 4, 3, 3)  # [K, D, h, w], the clip's T' averaged
    params = TrainParams(
        model=ModelConfig(fusion="bilinear", temporal_fusion="pool3d", num_segments=2, dropout=0.0),
        data=data, features=(str(rgb), str(flow)), epochs=2, batch_size=4, threads=1,
    )
    result = train_fusion(params, tmp_path / "run", progress=False, log=lambda s: None)
    assert result.metrics["num_videos"] == 4


def test_feature_mode_needs_one_store_per_stream(tmp_path):
    rgb = feature_store(tmp_path / "rgb", {"a_0": "a", "b_0": "b"})
    with pytest.raises(UsageError, match="1 --features stores for 2 streams"):
        build_feature_datasets([rgb], ("rgb", "flow"), DataConfig())


def test_schedules():
    p = TrainParams(epochs=4, lr=0.1, schedule="cosine", warmup_epochs=1)
    assert [round(learning_rate(p, s, 10), 4) for s in (0, 9, 10, 25, 40)] == [0.01, 0.1, 0.1, 0.05, 0.0]
    q = TrainParams(epochs=4, lr=0.1, schedule="step", step_epochs=(2, 3))
    assert [round(learning_rate(q, s, 10), 5) for s in (0, 19, 20, 30)] == [0.1, 0.1, 0.01, 0.001]


def test_metrics_table_and_confusion(tmp_path):
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.4, 0.3], [0.2, 0.3, 0.5]])
    labels = np.array([0, 2, 0, 2])
    m = classification_metrics(scores, labels, ("x", "y", "z"))
    assert m["top1"] == 0.5 and m["top5"] == 1.0
    assert m["per_class"] == {"x": 0.5, "y": None, "z": 0.5}
    assert m["confusion"] == [[1, 1, 0], [0, 0, 0], [0, 1, 1]]
    table = format_metrics(m)
    assert "top-1 50.0 %" in table and "\ny           0       -\n" in table
    path = write_confusion_png(tmp_path / "c.png", np.asarray(m["confusion"]), ("x", "y", "z"))
    assert cv2.imread(str(path)).ndim == 3


def test_cli_train_then_evaluate(stores, tmp_path):
    out, mj = tmp_path / "run", tmp_path / "metrics.json"
    args = ["train-fusion", "--frames", str(stores["frames"]), "--flow", str(stores["flow"]), "-o", str(out),
            "--streams", "rgb,flow", "--fusion", "late", "--temporal-fusion", "pool3d", "--arch", "resnet18",
            "--width", "4", "--segments", "2", "--flow-length", "2", "--crop-size", str(SIZE), "--epochs", "1",
            "--seed", "3", "--val-fraction", "0.34", "--metrics-json", str(mj), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(mj.read_text())
    assert {"top1", "top5", "per_class", "num_videos"} <= set(metrics)
    ev = CliRunner().invoke(app, ["evaluate", str(out / "last.pt"), "--no-progress"])
    assert ev.exit_code == 0, ev.output
    assert f"top-1 {100 * metrics['top1']:.1f} %" in ev.output
    assert "still" in ev.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fusion", "avg"], "unknown --fusion 'avg'"),
        (["--fusion", "bilinear", "--temporal-fusion", "conv3d"], "bilinear"),
        (["--flow", "/nonexistent/flow"], "/nonexistent/flow: no such store"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(stores, tmp_path, extra, message):
    args = ["train-fusion", "--frames", str(stores["frames"]), "-o", str(tmp_path / "r"), "--width", "4",
            "--crop-size", str(SIZE), "--no-progress", "--val-fraction", "0.34"]
    if "--flow" not in extra:
        args += ["--flow", str(stores["flow"])]
    result = CliRunner().invoke(app, args + extra)
    assert result.exit_code == 2
    assert message in result.output


def test_cuda_without_a_gpu_is_a_usage_error(stores, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UsageError, match="--device cuda: torch .* sees no CUDA GPU"):
        train_fusion(tiny(stores, device="cuda"), tmp_path / "r", progress=False, log=lambda s: None)


def test_cli_evaluate_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(app, ["evaluate", str(bad)])
    assert result.exit_code == 2 and "x.pt: not a loadable checkpoint" in result.output


def test_store_labels_drive_the_classes(stores):
    store = vfx.open_store(stores["frames"])
    assert sorted({store.attrs(v)["label"] for v in store.video_ids()}) == ["fall", "rise", "still"]
