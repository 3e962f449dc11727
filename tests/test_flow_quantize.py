"""Quantisation exactly as denseflow's convertFlowToImage, and its JPEG / float16 variants."""

import cv2
import numpy as np
import pytest

from vfx.errors import UsageError
from vfx.flow.colorwheel import color_wheel, flow_to_rgb, legend
from vfx.flow.quantize import dequantize, encode_flow_jpeg, quantize


def test_quantize_table():
    # bound 20: step 40/255 px. Values chosen on both sides of the clipping points and at exact halves.
    b = 20.0
    values = np.array([-25.0, -20.0, -19.99, 0.0, 20.0, 20.001, 1e9, -1e9], np.float32)
    q = quantize(values, b)
    assert q.dtype == np.uint8
    # -20 is not < -20, so it takes the formula: round(255 * 0 / 40) = 0; 20 -> 255; 0 -> round(127.5) = 128
    # (half to even, like cvRound); 20.001 > 20 -> 255.
    assert q.tolist() == [0, 0, 0, 128, 255, 255, 255, 0]


def test_quantize_matches_denseflow_formula_on_random_values():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 12, size=(3, 17, 19, 2)).astype(np.float32)
    b = 15.0
    expected = np.empty(flow.shape, np.uint8)
    for idx, v in np.ndenumerate(flow):
        v = float(v)
        expected[idx] = 255 if v > b else 0 if v < -b else int(np.rint(255 * (v + b) / (2 * b)))
    assert np.array_equal(quantize(flow, b), expected)


def test_dequantize_inverts_within_half_a_step():
    flow = np.linspace(-20, 20, 1001, dtype=np.float32)
    back = dequantize(quantize(flow, 20.0), 20.0)
    assert np.abs(back - flow).max() <= 20.0 / 255 + 1e-5


def test_bad_bound():
    with pytest.raises(UsageError, match="bound"):
        quantize(np.zeros(3), 0)


def test_jpeg_planes_order_and_decoding():
    rng = np.random.default_rng(1)
    flow = np.zeros((2, 16, 24, 2), np.float32)
    flow[0, ..., 0] = 5.0
    flow[0, ..., 1] = -5.0
    flow[1] = rng.normal(0, 1, size=(16, 24, 2))
    buffer, offsets = encode_flow_jpeg(flow, 20.0, quality=100)
    assert offsets.shape == (5,) and offsets[0] == 0 and offsets[-1] == buffer.size
    planes = [cv2.imdecode(buffer[offsets[i]:offsets[i + 1]], cv2.IMREAD_GRAYSCALE) for i in range(4)]
    q = quantize(flow, 20.0)
    # x0, y0, x1, y1; JPEG at quality 100 keeps flat planes exact and noise within a couple of levels.
    assert np.array_equal(planes[0], q[0, ..., 0]) and np.array_equal(planes[1], q[0, ..., 1])
    assert np.abs(planes[2].astype(int) - q[1, ..., 0]).max() <= 2
    assert np.abs(planes[3].astype(int) - q[1, ..., 1]).max() <= 2


def test_color_wheel_directions():
    assert color_wheel().shape == (55, 3)
    field = np.zeros((1, 4, 2), np.float32)
    field[0, 0] = (1, 0)  # right
    field[0, 1] = (-1, 0)  # left
    field[0, 2] = (0, 1)  # down
    field[0, 3] = (0, 0)  # no motion -> white
    rgb = flow_to_rgb(field, 1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, 3].tolist() == [255, 255, 255]
    # Middlebury convention (image y points down): right is red, left cyan-blue, down yellow-orange.
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1, 0] == 0 and rgb[0, 1, 2] == 255
    assert rgb[0, 2, 0] == 255 and rgb[0, 2, 1] > 200 and rgb[0, 2, 2] == 0


def test_legend_is_a_disc_with_white_corners():
    img = legend(64, 7.5)
    assert img.shape == (64, 64, 3)
    assert img[0, 0].tolist() == [255, 255, 255]
    assert img[32, 32].tolist() != [0, 0, 0]
