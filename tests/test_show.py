"""`vfx show`: every panel labelled, flow colours scaled to typical motion, sparse arrows, --max-frames, GIFs."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import vfx
from vfx.cli import app
from vfx.show import panels as panels_module
from vfx.show.motion import draw_arrows
from vfx.show.panels import CAPTION_H

render_module = importlib.import_module("vfx.show.render")  # the module (vfx.show.render is also the function)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def stores(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("show")
    assert cli("extract-frames", tiny_dataset, "-o", root / "frames", "--engine", "serial", "--no-progress").exit_code == 0
    r = cli("extract-flow", "--from-frames", root / "frames", "-o", root / "flow", "--backend", "dis", "--engine",
            "serial", "--no-progress")
    assert r.exit_code == 0, r.output
    return root / "frames", root / "flow"


@pytest.fixture
def captions(monkeypatch):
    seen: list[list[str]] = []
    real = panels_module.caption

    def recording(image, lines):
        seen.append(list(lines))
        return real(image, lines)

    monkeypatch.setattr(render_module, "caption", recording)
    return seen


def test_flow_png_rows_are_labelled_and_scaled_to_typical_motion(stores, tmp_path, captions):
    frames, flow = stores
    vid = vfx.open_store(flow).video_ids()[1]  # a "right" clip: 2 px a frame
    r = cli("show", flow, vid, "-o", tmp_path / "f.png")
    assert r.exit_code == 0, r.output
    image = cv2.cvtColor(cv2.imread(str(tmp_path / "f.png")), cv2.COLOR_BGR2RGB)
    # default for a PNG: 4 rows; 64x48 panels enlarged 5x to 320x240 so that captions can be read
    assert image.shape == (4 * (CAPTION_H + 240), 2 * 320, 3)
    pairs = vfx.open_store(flow).flow_pairs(vid)
    first = [c for c in captions if "flow" in c[1]][0]
    assert first[0] == f"{vid}  frame {pairs[0, 0]}  t={pairs[0, 0] / 25:.2f}s"
    assert first[1].startswith(f"flow {pairs[0, 0]}->{pairs[0, 1]}, rim = ") and first[1].endswith(" px (95th percentile)")
    assert [c for c in captions if c[1].startswith("RGB")][0][1] == f"RGB frame {pairs[0, 0]} (flow is from {pairs[0, 0]} to {pairs[0, 1]})"
    assert len(captions) == 8  # every panel of the 4 rows
    # the caption strip holds text (dark pixels on white)
    strip = image[:CAPTION_H, :320]
    assert (strip.min(axis=2) < 100).sum() > 50 and np.median(strip) == 255
    # typical motion is saturated colour, not near-white: the rim is the 95th percentile speed
    flow_panel = image[CAPTION_H + 100 : CAPTION_H + 240, 320:500]
    assert flow_panel.min(axis=2).mean() < 100


def test_max_frames_gif_and_first_video(stores, tmp_path):
    frames, flow = stores
    first = vfx.open_store(frames).video_ids()[0]
    r = cli("show", frames, "-o", tmp_path / "a.png", "--max-frames", "2")
    assert r.exit_code == 0, r.output
    assert f"no video id given: showing {first} (first of 6;" in r.stdout
    assert cv2.imread(str(tmp_path / "a.png")).shape[0] == 2 * (CAPTION_H + 240)
    r = cli("show", flow, first, "-o", tmp_path / "a.gif", "--max-frames", "5")
    assert r.exit_code == 0, r.output
    ok, gif = cv2.imreadanimation(str(tmp_path / "a.gif"))
    assert ok and len(gif.frames) == 5
    r = cli("show", flow, first, "-o", tmp_path / "a.mp4")
    n = vfx.open_store(flow).flow_pairs(first).shape[0]
    assert int(cv2.VideoCapture(str(tmp_path / "a.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == min(32, n)
    bad = cli("show", flow, "zzz", "-o", tmp_path / "x.png")
    assert bad.exit_code == 2 and "no video 'zzz'" in bad.output
    bad = cli("show", flow, first, "-o", tmp_path / "x.bmp")
    assert bad.exit_code == 2 and "must end in" in bad.output


def test_arrows_sit_on_a_sparse_grid():
    frame = np.zeros((224, 224, 3), np.uint8)
    disp = np.zeros((2, 28, 28), np.float32)
    disp[0] = 0.5  # every cell moves right
    out = draw_arrows(frame, disp, radius_px=7 * 224 / 28)
    mask = ((out[..., 0] > 100) & (out[..., 1] > 100)).astype(np.uint8)
    count, _ = cv2.connectedComponents(cv2.dilate(mask, np.ones((3, 3), np.uint8)))
    assert count - 1 == 7 * 7  # blocks of 4x4 cells: 7 arrows across, not 28
