"""`vfx features` through the command line: exit codes, messages, files."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import vfx
from test_features_support import make_flow_store, save_seeded_weights
from vfx.engine import RunOptions
from vfx.cli import app
from vfx.sources import load_items

# Tiny everything: 32x32 crops, 8-frame clips, serial engine, no progress bar.
TINY = ["--short-side", "32", "--crop-size", "32", "--engine", "serial", "--no-progress", "--threads", "1"]


def run(*args):
    return CliRunner().invoke(app, ["features", *map(str, args)])


def test_cli_i3d_dense_clips_with_weights(tmp_path, samples):
    weights = save_seeded_weights("i3d_rgb", tmp_path / "rgb.pt")
    result = run(samples["carphone_pristine"], "-o", tmp_path / "s", "--model", "i3d_rgb", "--weights", weights,
                 "--clip-len", "8", "--stride", "50", "--batch-size", "2", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "features: 1 done, 0 failed" in result.stdout
    assert "RANDOM" not in result.output
    store = vfx.open_store(tmp_path / "s")
    assert store.read_features("carphone_pristine").shape == (3, 1024)
    assert store.clip_frames("carphone_pristine").tolist() == [[0, 7], [50, 57], [100, 107]]
    # rerun: nothing to do, same store
    again = run(samples["carphone_pristine"], "-o", tmp_path / "s", "--model", "i3d_rgb", "--weights", weights,
                "--clip-len", "8", "--stride", "50", "--batch-size", "2", *TINY)  # fmt: skip
    assert again.exit_code == 0 and "1 already in the store" in again.stdout


def test_cli_two_stream_from_a_recipe_with_a_store_as_input(tmp_path, tiny_dataset):
    items = load_items(tiny_dataset)[:2]
    flow = make_flow_store(items, tmp_path / "flow")
    recipe = tmp_path / "two.toml"
    recipe.write_text('[features]\nmodel = ["i3d_rgb", "i3d_flow"]\nclip_len = 8\nstride = 8\n')
    # INPUT is the flow store: its videos are the items, and it serves as --from-flow; RGB is decoded from
    # the source videos the store recorded.
    result = run(flow, "-o", tmp_path / "two", "--recipe", recipe, *TINY)
    assert result.exit_code == 0, result.output
    assert "WARNING: i3d_rgb, i3d_flow run with RANDOM weights" in result.stderr
    store = vfx.open_store(tmp_path / "two")
    for item in items:
        feats = store.read_features(item.video_id)
        assert feats.shape[1] == 2048
        np.testing.assert_array_equal(feats[:, 1024:], store.group(item.video_id)["features_i3d_flow"][()])
    params = json.loads((tmp_path / "two" / "vfx-store.json").read_text())["params"]
    assert params["inputs"]["flow"] == str(flow)


def test_cli_flow_model_given_rgb_input(tmp_path, samples):
    result = run(samples["carphone_pristine"], "-o", tmp_path / "x", "--model", "i3d_flow", *TINY)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: i3d_flow takes optical flow (2 channels), not RGB: give a flow store with --from-flow STORE "
        "(made by vfx extract-flow)"
    )


def test_cli_flow_store_that_is_a_frames_store(tmp_path, tiny_dataset):
    from vfx.engine import run_stage
    from vfx.frames import FramesStage

    items = load_items(tiny_dataset)[:1]
    run_stage(FramesStage(), items, tmp_path / "frames", RunOptions(engine="serial", progress=False))
    result = run(tiny_dataset, "-o", tmp_path / "x", "--model", "i3d_flow", "--from-flow", tmp_path / "frames", *TINY)
    assert result.exit_code == 2
    assert f"--from-flow {tmp_path / 'frames'}: a frames store, not flow" in result.stderr


def test_cli_unknown_model_and_mismatched_weights(tmp_path, samples):
    result = run(samples["carphone_pristine"], "-o", tmp_path / "x", "--model", "i3d", *TINY)
    assert result.exit_code == 2
    assert "error: unknown model 'i3d'; known models: corrnet_101, corrnet_26, corrnet_50, " in result.stderr and " i3d_rgb, " in result.stderr
    flow_weights = save_seeded_weights("i3d_flow", tmp_path / "flow.pt")
    result = run(samples["carphone_pristine"], "-o", tmp_path / "y", "--model", "i3d_rgb", "--weights", flow_weights, *TINY)
    assert result.exit_code == 2
    assert f"error: {flow_weights}: does not match I3D; shape mismatch 1: Conv3d_1a_7x7.conv3d.weight (64, 2, 7, 7, 7) vs model (64, 3, 7, 7, 7)" in result.stderr
    assert not (tmp_path / "y").exists()  # refused before anything was written


def test_cli_exit_code_1_when_a_video_fails(tmp_path, tiny_dataset):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "good.mkv").write_bytes((tiny_dataset / "left" / "clip 0.mkv").read_bytes())
    (folder / "empty.mp4").write_bytes(b"")
    result = run(folder, "-o", tmp_path / "s", "--model", "tsm_r50", "--segments", "2", *TINY)
    assert result.exit_code == 1
    assert "features: 1 done, 1 failed" in result.stdout
    assert "failed empty:" in result.stderr and "empty.mp4: empty file (0 bytes)" in result.stderr


def test_cli_weights_per_model_must_match_the_models(tmp_path, samples):
    result = run(samples["carphone_pristine"], "-o", tmp_path / "x", "--model", "i3d_rgb", "--model", "tsm_r50",
                 "--weights", "a.pt", *TINY)  # fmt: skip
    assert result.exit_code == 2
    assert "1 --weights for 2 --model (i3d_rgb, tsm_r50): give one per model, in order, or NAME=PATH" in result.stderr


def test_cli_motion_maps_on_an_existing_store_names_motion_maps_first(tmp_path, samples):
    # The features manifest holds tuples deep inside `models` (input_spec); read back from JSON they are lists,
    # which must not be reported as a change hiding the one the user made.
    args = [samples["carphone_pristine"], "-o", tmp_path / "ms", "--model", "msnet_r50", "--segments", "2", *TINY]
    assert run(*args).exit_code == 0
    result = run(*args, "--motion-maps")
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'ms'}: existing store was made with other parameters (motion_maps: False -> True); " in result.stderr


def test_cli_bf16_says_when_the_cpu_lacks_native_bf16(tmp_path, samples, monkeypatch):
    # The message must not depend on which CPU runs the test: the detection is replaced both ways.
    from vfx.features import runner

    args = [samples["carphone_pristine"], "--model", "i3d_rgb", "--clip-len", "8", "--stride", "50", "--precision",
            "bf16", *TINY]
    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: False)
    emulated = run(*args[:1], "-o", tmp_path / "emulated", *args[1:])
    assert emulated.exit_code == 0, emulated.output
    assert "note: --precision bf16: this CPU has no native bf16 arithmetic" in emulated.stderr
    assert "use fp32 on this machine" in emulated.stderr
    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: True)
    native = run(*args[:1], "-o", tmp_path / "native", *args[1:])
    assert native.exit_code == 0, native.output
    assert "bf16" not in native.stderr
    # Same computation either way (the message is all that differs), and close to fp32.
    fp32 = run(samples["carphone_pristine"], "-o", tmp_path / "fp32", "--model", "i3d_rgb", "--clip-len", "8",
               "--stride", "50", *TINY)
    assert fp32.exit_code == 0, fp32.output
    feats = {name: vfx.open_store(tmp_path / name).read_features("carphone_pristine").astype(np.float32)
             for name in ("emulated", "native", "fp32")}
    np.testing.assert_array_equal(feats["emulated"], feats["native"])
    assert not np.array_equal(feats["native"], feats["fp32"])
    np.testing.assert_allclose(feats["native"], feats["fp32"], rtol=0.1, atol=0.05 * np.abs(feats["fp32"]).max())
