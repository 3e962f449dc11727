"""Drawing MSNet displacement and confidence maps over the frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import vfx
from test_features_support import tiny_params
from vfx.engine import RunOptions
from vfx.errors import UsageError
from vfx.features import ClipParams, ModelChoice, SpatialParams, extract_features
from vfx.show.motion import confidence_to_heat, flow_to_colour, motion_figure, save_motion_figure
from vfx.sources import load_items


def test_flow_colours_follow_the_middlebury_wheel():
    flow = np.array([[[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [0.5, 0]]], np.float32)
    colours = flow_to_colour(flow, max_magnitude=1.0)[0].tolist()
    assert colours[0] == [255, 255, 255]  # no motion: white
    assert colours[1] == [255, 0, 0]  # right: red
    assert colours[2] == [0, 208, 255]  # left: cyan-blue, opposite hue
    assert colours[3] == [255, 229, 0]  # down (image y grows downwards): yellow
    assert colours[4] == [88, 0, 255]  # up: blue-violet
    assert colours[5] == [255, 127, 127]  # half the magnitude: half-saturated red


def test_confidence_heat_runs_blue_to_red():
    heat = confidence_to_heat(np.array([[0.0, 1.0]]))[0]
    assert heat[0].tolist() == [0, 0, 128] and heat[1].tolist() == [128, 0, 0]


def test_motion_figure_layout_and_bad_shapes():
    frames = np.zeros((3, 16, 24, 3), np.uint8)
    disp = np.zeros((2, 2, 4, 6), np.float32)
    disp[:, 0] = 1.0  # every cell moves one radius right
    conf = np.ones((2, 1, 4, 6), np.float32)
    image = motion_figure(frames, disp, conf)
    assert image.shape == (4 * 16, 2 * 24 + 2, 3)  # rows: frame, displacement, confidence, arrows
    assert image[16:32, :24].reshape(-1, 3).mean(axis=0).round().tolist() == [153, 0, 0]  # 0.6 x red over black
    assert image[48:64, :24].any()  # arrows drawn
    with pytest.raises(UsageError, match=r"need T = 3 frames"):
        motion_figure(frames[:2], disp, conf)


def test_render_maps_stored_by_a_features_run(tmp_path, samples, monkeypatch):
    items = load_items(samples["carphone_pristine"])
    params = tiny_params(
        ModelChoice.of("msnet_r50", num_classes=5, width=8), clips=ClipParams(segments=3),
        spatial=SpatialParams(short_side=64, crop_size=64), motion_maps=True,
    )  # fmt: skip
    with pytest.warns(vfx.features.RandomWeightsWarning):
        extract_features(items, tmp_path / "ms", params, RunOptions(engine="serial", progress=False))
    store = vfx.open_store(tmp_path / "ms")
    assert store.group("carphone_pristine")["clip_indices"][()].tolist() == [[20, 60, 100]]
    out = tmp_path / "motion.png"
    image = save_motion_figure(tmp_path / "ms", "carphone_pristine", out)
    assert image.shape == (4 * 64, 2 * 64 + 2, 3)
    assert cv2.imread(str(out)).shape == image.shape
    # the top row is the centre crop of the frames the model saw
    frame = vfx.decode.read_frames(items[0].path, np.array([20]))[0]
    resized = cv2.resize(frame, (78, 64), interpolation=cv2.INTER_LINEAR)  # 176x144 -> short side 64
    np.testing.assert_array_equal(image[:64, :64], resized[:, 7:71])
    with pytest.raises(UsageError, match="has 1 clips, no clip 3"):
        save_motion_figure(tmp_path / "ms", "carphone_pristine", out, clip=3)
    # and through the command line: `vfx show` draws the same figure for a features store
    from typer.testing import CliRunner

    from vfx.cli import app

    from vfx.show.panels import CAPTION_H

    from vfx.show import motion as motion_module
    from vfx.show.panels import LINE_H, typical_speed

    captions: list[list[str]] = []
    real_caption = motion_module.caption
    monkeypatch.setattr(motion_module, "caption", lambda image, lines: captions.append(list(lines)) or real_caption(image, lines))
    result = CliRunner().invoke(app, ["show", str(tmp_path / "ms"), "carphone_pristine", "-o", str(tmp_path / "show.png")])
    assert result.exit_code == 0, result.stderr
    shown = cv2.imread(str(tmp_path / "show.png"))
    # one labelled column per frame pair (2), four captioned rows; 64 px panels enlarged 4x to be readable
    assert shown.shape == (4 * (CAPTION_H + 256), 2 * 256 + 4, 3)
    first = cv2.cvtColor(shown[CAPTION_H : CAPTION_H + 256, :256], cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(first, cv2.resize(image[:64, :64], None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST))
    # the displacement panel's corner holds the colour wheel (saturated hues all round, its rim written below)
    # and the confidence panel's the JET bar (red at 1 on top, blue at 0 below)
    row = CAPTION_H + 256
    wheel = cv2.cvtColor(shown[row + CAPTION_H : row + CAPTION_H + 64, 192:256], cv2.COLOR_BGR2HSV)
    hues = wheel[..., 0][wheel[..., 1] > 200]
    assert len(hues) > 500 and np.histogram(hues, bins=6, range=(0, 180))[0].min() > 20
    label = shown[row + CAPTION_H + 64 : row + CAPTION_H + 64 + LINE_H, 192:256]
    assert (label.max(axis=2) < 100).sum() > 20  # "rim ... cells" in black
    bar = cv2.cvtColor(shown[2 * row + CAPTION_H : 2 * row + CAPTION_H + 64, 212:226], cv2.COLOR_BGR2RGB).astype(int)
    assert bar[0, :, 0].mean() > bar[0, :, 2].mean() + 60 and bar[-1, :, 2].mean() > bar[-1, :, 0].mean() + 60
    # the rim of the wheel is the 95th percentile of the shown displacements, written in the caption
    disp = vfx.open_store(tmp_path / "ms").group("carphone_pristine")["displacement"][0]
    rim_cells = 7 * typical_speed(disp.transpose(0, 2, 3, 1))
    assert f"MSNet displacement 20->60, rim {rim_cells:.2g} cells (95th pct)" in captions[1]
    assert captions[0] == ["carphone_pristine  frame 20  t=0.67s", "RGB: the frame the model saw (crop)"]
    assert captions[2][1] == "MSNet confidence, colour bar 0..1" and captions[3][1].startswith("displacement arrows, 1 = ")
    result = CliRunner().invoke(app, ["show", str(tmp_path / "ms"), "-o", str(tmp_path / "show.gif")])
    assert result.exit_code == 0 and "showing carphone_pristine" in result.stdout
    ok, gif = cv2.imreadanimation(str(tmp_path / "show.gif"))
    assert ok and len(gif.frames) == 2  # one animation frame per frame pair
