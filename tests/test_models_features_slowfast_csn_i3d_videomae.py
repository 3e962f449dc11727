"""`vfx features --model NAME` end to end for slowfast_r50, csn_r101, i3d_r50, i3d_nl_r50, videomae_b.

carphone_pristine.mp4 (120 frames, 176x144), random weights, CPU, 32x32 crops so each clip is cheap; clip
length and frame step come from each model's input spec unless given. One model also runs on Ray.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import vfx
from test_features_support import tiny_params
from vfx.cli import app
from vfx.engine import RunOptions
from vfx.features import ClipParams, ModelChoice, extract_features
from vfx.sources import load_items

TINY = ["--short-side", "32", "--crop-size", "32", "--engine", "serial", "--no-progress", "--threads", "1"]

# name, D, default clip length and frame step (input spec), stride given, expected clip_frames
CASES = [
    ("i3d_r50", 2048, 8, 8, 32, [[0, 56], [32, 88]]),  # 8x8: frames 0, 8, ..., 56
    ("i3d_nl_r50", 2048, 8, 8, 60, [[0, 56], [60, 116]]),
    ("slowfast_r50", 2304, 32, 2, None, [[0, 62]]),  # back to back: 64 frames apart, one fits in 120
    ("csn_r101", 2048, 32, 2, None, [[0, 62]]),
    ("videomae_b", 768, 16, 4, 50, [[0, 60], [50, 110]]),
]


@pytest.mark.parametrize("name,dim,clip_len,step,stride,expected", CASES, ids=[c[0] for c in CASES])
def test_cli_features_with_the_models_own_sampling(tmp_path, samples, name, dim, clip_len, step, stride, expected):
    video = samples["carphone_pristine"]
    extra = ["--stride", str(stride)] if stride else []
    result = CliRunner().invoke(app, ["features", str(video), "-o", str(tmp_path / "s"), "--model", name, *extra, *TINY])
    assert result.exit_code == 0, result.output
    assert "features: 1 done, 0 failed" in result.stdout
    assert f"WARNING: {name} run with RANDOM weights" in result.stderr
    store = vfx.open_store(tmp_path / "s")
    feats = store.read_features("carphone_pristine")
    assert feats.shape == (len(expected), dim) and np.isfinite(feats).all()
    assert store.clip_frames("carphone_pristine").tolist() == expected
    params = json.loads((tmp_path / "s" / "vfx-store.json").read_text())["params"]
    model = params["models"][0]
    assert (model["name"], model["weights_sha256"], model["feature_dim"], model["crop_size"]) == (name, "random-init", dim, 32)
    assert (model["input_spec"]["num_frames"], model["input_spec"]["frame_step"]) == (clip_len, step)
    assert params["clips"] == {"mode": "dense", "clip_len": clip_len, "stride": stride or clip_len * step,
                               "num_clips": None, "frame_step": step}  # fmt: skip


def test_cli_frame_step_and_clip_length_override_the_spec(tmp_path, samples):
    result = CliRunner().invoke(app, ["features", str(samples["carphone_pristine"]), "-o", str(tmp_path / "s"),
                                      "--model", "slowfast_r50", "--clip-len", "8", "--frame-step", "1", *TINY])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "s")
    assert store.clip_frames("carphone_pristine").tolist()[:2] == [[0, 7], [8, 15]]
    assert store.read_features("carphone_pristine").shape == (15, 2304)


def test_cli_slowfast_clip_length_the_pathways_cannot_align_fails_the_video(tmp_path, samples):
    result = CliRunner().invoke(app, ["features", str(samples["carphone_pristine"]), "-o", str(tmp_path / "s"),
                                      "--model", "slowfast_r50", "--clip-len", "6", *TINY])  # fmt: skip
    assert result.exit_code != 0
    assert "divides by 4" in result.output and "T=6" in result.output


def test_ray_engine_gives_the_serial_store(ray_local, tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:1]
    params = tiny_params(ModelChoice.of("i3d_r50", num_classes=5), clips=ClipParams(clip_len=8, stride=8, frame_step=1))
    with pytest.warns(vfx.features.RandomWeightsWarning):
        serial = extract_features(items, tmp_path / "serial", params, RunOptions(engine="serial", progress=False))
    with pytest.warns(vfx.features.RandomWeightsWarning):
        on_ray = extract_features(items, tmp_path / "ray", params, RunOptions(engine="ray", workers=1, progress=False))
    assert serial.ok and on_ray.ok and on_ray.done == 1
    a, b = vfx.open_store(tmp_path / "serial"), vfx.open_store(tmp_path / "ray")
    for item in items:
        feats = b.read_features(item.video_id)
        assert feats.shape[1] == 2048 and len(feats) >= 2
        # same numbers up to float rounding (the worker's batches and threads may pick other conv kernels)
        assert np.abs(a.read_features(item.video_id) - feats).max() <= 1e-5 * np.abs(feats).max()
        np.testing.assert_array_equal(a.clip_frames(item.video_id), b.clip_frames(item.video_id))


def test_epic_kitchens_slowfast_recipe_places_32_frame_clips_every_16(tmp_path, samples):
    """recipes/epic-kitchens-slowfast.toml: ActionFormer's 32-frame windows every 16 frames, consecutive frames
    (the tiny crop here overrides the recipe's 256 only to keep the test fast)."""
    result = CliRunner().invoke(app, ["features", str(samples["carphone_pristine"]), "-o", str(tmp_path / "s"),
                                      "--recipe", "epic-kitchens-slowfast", *TINY])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = vfx.open_store(tmp_path / "s")
    assert store.clip_frames("carphone_pristine").tolist() == [[s, s + 31] for s in range(0, 81, 16)]
    assert store.read_features("carphone_pristine").shape == (6, 2304)
    params = json.loads((tmp_path / "s" / "vfx-store.json").read_text())["params"]
    assert params["clips"] == {"mode": "dense", "clip_len": 32, "stride": 16, "num_clips": None, "frame_step": 1}
