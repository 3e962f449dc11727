"""Backends: the opencv backend is a direct cv2 call bit for bit; every backend recovers known motion."""

import glob
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vfx.flow import DIS, Farneback, OpenCVTVL1, TVL1Params, TVL1Torch
from vfx.flow.params import TVL1_PRESETS, tvl1_preset
from vfx.errors import UsageError

from test_flow_tvl1_torch import direct, sample_gray_pair


def test_opencv_backend_equals_direct_cv2_call_bit_for_bit():
    pairs = [sample_gray_pair("bikes.mp4", i, size=(128, 96)) for i in (0, 60)]
    g0 = np.stack([p[0] for p in pairs])
    g1 = np.stack([p[1] for p in pairs])
    params = TVL1Params(warps=3, inner_iterations=20, outer_iterations=3)
    got = OpenCVTVL1(params)(g0, g1)
    expected = np.stack([direct(params).calc(a, b, None) for a, b in zip(g0, g1)])
    assert got.dtype == np.float32 and got.shape == (2, 96, 128, 2)
    assert np.array_equal(got, expected)


@pytest.mark.slow
def test_opencv_backend_bit_exact_at_340x256_with_defaults():
    g0, g1 = sample_gray_pair("bikes.mp4", 30, size=(340, 256))
    got = OpenCVTVL1(TVL1Params())(g0[None], g1[None])[0]
    assert np.array_equal(got, direct(TVL1Params()).calc(g0, g1, None))


def test_tiny_frames_do_not_shrink_later_pyramids():
    # OpenCV lowers the object's scale count when a level would be < 16 px; the backend restores it, so a
    # large frame after a tiny one gets all 5 levels, like a fresh object would compute.
    params = TVL1Params(warps=1, inner_iterations=5, outer_iterations=1)
    backend = OpenCVTVL1(params)
    small = np.zeros((1, 20, 20), np.uint8)
    backend(small, small)
    g0, g1 = sample_gray_pair(size=(96, 80))
    assert np.array_equal(backend(g0[None], g1[None])[0], direct(params).calc(g0, g1, None))


def test_presets():
    assert TVL1_PRESETS["opencv"] == TVL1Params()
    dense = TVL1_PRESETS["denseflow"]
    assert (dense.inner_iterations, dense.outer_iterations, dense.median_filtering, dense.scale_step) == (300, 1, 1, 0.8)
    assert tvl1_preset("denseflow", tau=0.2, warps=None).tau == 0.2
    with pytest.raises(UsageError, match="preset"):
        tvl1_preset("nope")


def texture(x, y):
    """A smooth band-limited pattern that can be sampled at any position (no interpolation error)."""
    rng = np.random.default_rng(7)
    out = np.zeros_like(x, dtype=np.float64)
    for _ in range(12):
        k, a, ph = rng.uniform(0.08, 0.35), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        out += np.sin(k * (np.cos(a) * x + np.sin(a) * y) + ph)
    return 127.5 + 127.5 * 0.9 * out / np.abs(out).max()


def known_motion(kind, n=96):
    """(frame0, frame1, true flow) where frame0's pixel p is at A (p - c) + c + t in frame1."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    c = (n - 1) / 2
    if kind == "translation":
        a, t = np.eye(2), np.array([1.3, -0.6])  # sub-pixel in both directions
    elif kind == "rotation":
        th = np.deg2rad(3)
        a, t = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]), np.zeros(2)
    else:
        a, t = np.eye(2) * 1.04, np.zeros(2)  # zoom in by 4 %
    p = np.stack([x - c, y - c], -1)
    flow = p @ a.T + t - p
    src = (p - t) @ np.linalg.inv(a).T + c
    f0 = np.round(texture(x, y)).astype(np.uint8)
    f1 = np.round(texture(src[..., 0], src[..., 1])).astype(np.uint8)
    return f0, f1, flow.astype(np.float32)


# Mean end-point error (px) away from an 8 px border, measured once on these pairs (EPE of each backend
# in parentheses: translation / rotation / zoom): opencv and torch TV-L1 0.061 / 0.056 / 0.050,
# farneback 0.024 / 0.226 / 0.094, dis 0.021 / 0.120 / 0.072. The bounds leave room for library versions.
LIMITS = {"opencv": 0.09, "torch": 0.09, "farneback": 0.3, "dis": 0.2}


@pytest.fixture(scope="module")
def motions():
    kinds = ("translation", "rotation", "zoom")
    data = [known_motion(k) for k in kinds]
    return kinds, np.stack([d[0] for d in data]), np.stack([d[1] for d in data]), np.stack([d[2] for d in data])


@pytest.fixture(scope="module")
def outputs(motions):
    _, f0, f1, _ = motions
    backends = {"opencv": OpenCVTVL1(TVL1Params()), "torch": TVL1Torch(TVL1Params(), kernels="eager"),
                "farneback": Farneback(), "dis": DIS()}
    return {name: np.asarray(b(f0, f1)) for name, b in backends.items()}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_known_motion_accuracy(name, motions, outputs):
    kinds, _, _, truth = motions
    out = outputs[name]
    epe = np.linalg.norm(out - truth, axis=-1)[:, 8:-8, 8:-8].mean(axis=(1, 2))
    for kind, value in zip(kinds, epe):
        assert value < LIMITS[name], f"{name} {kind}: EPE {value:.3f}"


def test_torch_and_opencv_agree_on_known_motion(outputs):
    a, b = outputs["opencv"], outputs["torch"]
    assert np.linalg.norm(a - b, axis=-1).mean() < 0.005


@pytest.mark.skipif(not sys.platform.startswith("linux") or bool(glob.glob("/dev/nvidia[0-9]*")),
                    reason="a machine without GPU device files")
def test_torch_flow_driver_does_not_import_torch_on_a_cpu_machine():
    """The driver of `vfx extract-flow --backend torch` on a CPU-only machine resolves the device and builds /
    loads the C kernels without importing torch: that import is ~2 s of a short run, before any worker starts."""
    code = (
        "import sys\n"
        "from vfx.flow.params import FlowParams\n"
        "from vfx.flow.stage import FlowStage\n"
        "stage = FlowStage(FlowParams.from_options(None, backend='torch'))\n"
        "print(stage.resources(), 'torch' in sys.modules)\n"
        "stage.prepare()\n"
        "from vfx.flow.tvl1_native import load\n"
        "load()\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["{'num_cpus': 1} False", "False"], done.stdout
