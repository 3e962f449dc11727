"""The library entry points give what the commands give, and the parameter rules live in the params classes.

Each command is run, then its library call (`vfx.extract_frames(...)`, ...) with the same input and the same
options as keyword arguments; the two stores must hold the same bytes in every dataset and the same attributes
of every video, and the same recorded parameters (creation times aside). Training: the same checkpoint
weights and the same metrics with the same seed.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vfx
from test_train_support import make_videos
from vfx.cli import app
from vfx.errors import UsageError
from vfx.features.params import FeatureParams
from vfx.flow.params import TVL1_PRESETS, FlowParams
from vfx.frames import FrameParams
from vfx.train.params import TrainParams

SERIAL = vfx.RunOptions(engine="serial", progress=False)
RUN_FLAGS = ["--engine", "serial", "--no-progress"]


def invoke(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def contents(path) -> dict:
    """Every video's datasets (dtype, shape, bytes) and attributes, and the store's kind and parameters."""
    out: dict = {}
    with vfx.open_store(path) as store:
        out["kind"], out["params"] = store.kind, store.params
        for video_id in store.video_ids():
            group = store.group(video_id)
            arrays = {}
            group.visititems(lambda name, obj: arrays.__setitem__(name, (obj.dtype.str, obj.shape, obj[()].tobytes()))
                             if isinstance(obj, h5py.Dataset) else None)
            out[video_id] = {"datasets": arrays, "attrs": {k: _plain(v) for k, v in group.attrs.items()}}
    return out


def _plain(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


def assert_same_store(a, b) -> None:
    left, right = contents(a), contents(b)
    assert len(left) > 2 and left.keys() == right.keys()
    for key in left:
        assert left[key] == right[key], key


@pytest.fixture(scope="module")
def frames_pair(tmp_path_factory, tiny_dataset):
    root = tmp_path_factory.mktemp("api_frames")
    options = dict(size="48x32", every=2, quality=80)
    invoke("extract-frames", tiny_dataset, "-o", root / "cli", "--size", "48x32", "--every", "2", "--quality", "80",
           *RUN_FLAGS)
    summary = vfx.extract_frames(tiny_dataset, root / "lib", run=SERIAL, **options)
    assert summary.done == 6 and summary.failed == 0
    return root / "cli", root / "lib"


def test_extract_frames_command_and_library_give_the_same_store(frames_pair):
    cli, lib = frames_pair
    assert_same_store(cli, lib)
    with vfx.open_store(lib) as store:
        video_id = store.video_ids()[0]
        assert store.read_frames(video_id).shape[1:] == (32, 48, 3)
        assert os.path.isabs(store.attrs(video_id)["source_path"])


def test_extract_flow_from_a_frames_store_alone_command_and_library(frames_pair, tmp_path):
    frames, _ = frames_pair
    tvl1 = ["--nscales", "1", "--warps", "1", "--inner-iterations", "2", "--outer-iterations", "1"]
    invoke("extract-flow", "-o", tmp_path / "cli", "--from-frames", frames, "--preset", "denseflow", *tvl1, *RUN_FLAGS)
    vfx.extract_flow(None, tmp_path / "lib", from_frames=frames, preset="denseflow", nscales=1, warps=1,
                     inner_iterations=2, outer_iterations=1, run=SERIAL)
    assert_same_store(tmp_path / "cli", tmp_path / "lib")
    params = vfx.open_store(tmp_path / "lib").params
    # The frames store's frames keep their size; its path is recorded absolute; the preset is named with its
    # values changed where given.
    assert params["short_side"] is None and params["from_frames"] == str(frames.resolve())
    assert params["preset"] == "denseflow" and params["tvl1"]["inner_iterations"] == 2
    assert params["tvl1"]["median_filtering"] == 1  # denseflow's, not OpenCV's 5


def test_features_command_and_library_give_the_same_store(frames_pair, tmp_path):
    frames, _ = frames_pair
    flags = dict(model="tsm_r50", segments=2, short_side=32, crop_size=32, threads=1, gpus_per_worker=0.0)
    # No INPUT: every video of the frames store (the store is also where the RGB frames are read from).
    result = CliRunner().invoke(app, ["features", "-o", str(tmp_path / "cli"), "--from-frames", str(frames),
                                      "--model", "tsm_r50", "--segments", "2", "--short-side", "32", "--crop-size",
                                      "32", "--threads", "1", "--gpus-per-worker", "0", *RUN_FLAGS])
    assert result.exit_code == 0, result.output
    assert "WARNING: tsm_r50 run with RANDOM weights" in result.stderr
    with pytest.warns(vfx.features.RandomWeightsWarning, match="tsm_r50 run with RANDOM weights"):
        vfx.extract_features(None, tmp_path / "lib", from_frames=frames, run=SERIAL, **flags)
    assert_same_store(tmp_path / "cli", tmp_path / "lib")
    assert vfx.open_store(tmp_path / "lib").params["inputs"]["frames"] == str(frames.resolve())


def test_train_fusion_command_and_library_give_the_same_model(tmp_path):
    videos = make_videos(tmp_path / "videos", videos_per_class=3, frames=8, size=32, classes=("fall", "rise"))
    vfx.extract_frames(videos, tmp_path / "frames", size="32x32", run=SERIAL)
    options = dict(frames=tmp_path / "frames", streams="rgb", width=4, segments=2, crop_size=32, epochs=2,
                   batch_size=2, val_fraction=0.34, seed=5, threads=1)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    invoke("train-fusion", "-o", tmp_path / "cli", *flags, "--no-progress")
    vfx.train_fusion(tmp_path / "lib", progress=False, log=lambda line: None, **options)
    a = torch.load(tmp_path / "cli" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "lib" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def metrics(run):
        summary = json.loads((tmp_path / run / "metrics.json").read_text())
        return summary["final"], [{k: v for k, v in h.items() if k != "epoch_sec"} for h in summary["history"]]

    assert metrics("cli") == metrics("lib")


# ------------------------------------------------------------------------------ parameter rules, in one place


def test_defaults_are_the_same_from_python_and_from_the_command_line():
    assert FrameParams.from_options() == FrameParams()
    assert FlowParams.from_options() == FlowParams() and FlowParams().short_side == 256
    assert FlowParams(from_frames="x.vfx").short_side is None  # a frames store keeps its size
    expected = 1.0 if torch.cuda.is_available() else 0.0
    assert FeatureParams.from_options(model="i3d_rgb").gpus_per_worker == expected
    assert TrainParams.from_options(frames="f.vfx") == TrainParams(frames="f.vfx")


def test_a_preset_names_its_values():
    assert FlowParams(preset="denseflow").tvl1 == TVL1_PRESETS["denseflow"]
    changed = FlowParams.from_options(preset="denseflow", warps=2)
    assert changed.tvl1.warps == 2 and changed.tvl1.inner_iterations == 300 and changed.tvl1_changes == (("warps", 2),)
    # A value equal to the preset's is no change: the same parameters, the same store.
    assert FlowParams.from_options(preset="denseflow", warps=5) == FlowParams(preset="denseflow")


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FrameParams.from_options(size="40x30", short_side=20), "--short-side and --size cannot be combined"),
        (lambda: FlowParams.from_options(size="40x30", short_side=20), "either --size or --short-side"),
        (lambda: FlowParams.from_options(backend="torch", gamma=0.1), "--gamma is only implemented by --backend opencv"),
        (lambda: FrameParams.from_options(qualty=3), "unknown options: qualty"),
        (lambda: FeatureParams.from_options(), "give a model"),
        (lambda: FeatureParams.from_options(model=["i3d_rgb", "i3d_flow"], weights=["a.pt"]), "1 --weights for 2 --model"),
        (lambda: TrainParams.from_options(), "give --frames and/or --flow stores, or --features stores"),
        (lambda: vfx.extract_flow(None, "out.vfx"), "give INPUT (videos), --from-frames STORE, or both"),
    ],
)
def test_rules_are_checked_by_the_library(build, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_explicit_options_replace_the_recipes_choice(tmp_path):
    recipe = {"size": "40x30", "quality": 70}
    assert FrameParams.from_options(recipe).resize.size == (40, 30)
    params = FrameParams.from_options(recipe, short_side=24)
    assert params.resize.short_side == 24 and params.resize.size is None and params.quality == 70
    table = {"model": "i3d_rgb", "weights": "rgb.pt", "stride": 4}
    params = FeatureParams.from_options(table, model="tsm_r50", num_clips=3)
    assert [(m.name, m.weights) for m in params.models] == [("tsm_r50", None)]
    assert (params.clips.stride, params.clips.num_clips) == (None, 3)
    (tmp_path / "t.toml").write_text('[train-fusion]\nepochs = 3\nstreams = "rgb"\n')
    params = TrainParams.from_options(str(tmp_path / "t.toml"), frames="f.vfx", epochs=4)
    assert (params.epochs, params.model.streams) == (4, ("rgb",))
