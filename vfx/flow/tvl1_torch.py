"""Batched dual TV-L1 optical flow in PyTorch, following OpenCV's CPU implementation step by step.

Reference: opencv_contrib modules/optflow/src/tvl1flow.cpp (`OpticalFlowDual_TVL1::calc` and
`procOneScale`), itself after Sanchez, Meinhardt-Llopis, Facciolo, "TV-L1 Optical Flow Estimation",
IPOL 2013. What is reproduced, because each changes the numbers:

- images as float32 in [0, 255]; pyramid by repeated `cv::resize(INTER_LINEAR)` with factor
  `scale_step` (sizes rounded like `saturate_cast<int>`, sampling positions `(d + 0.5) / f - 0.5`,
  clamped at the edges, no anti-aliasing); a level narrower or lower than 16 px ends the pyramid;
- centred gradient of I1 with one-sided half differences on the border;
- backward warping of I1 and its gradient with `cv::remap(INTER_CUBIC)`: Keys cubic with a = -0.75
  at the exact sampling position (OpenCV 5 no longer rounds float maps to 1/32 px as 4.x did; checked
  against the installed cv2), taps outside the image count as 0 (`BORDER_CONSTANT`, the default of
  `remap`);
- thresholding step with `l_t = lambda * theta` and the `|grad I1w|^2 > FLT_EPSILON` guard; divergence
  by backward differences with zero outside; forward gradient with zero in the last row/column;
  dual step p = (p + tau/theta * grad u) / (1 + tau/theta * |grad u|);
- stopping rule per warp: stop when the sum over the image of |u_new - u_old|^2 is at most
  epsilon^2 * width * height (the "scaled epsilon" of the level), checked after every inner iteration,
  and at most `outer_iterations * inner_iterations` iterations; the dual variables restart from 0 at
  every level but not at every warp;
- median filter of the flow before every outer iteration (when `median_filtering > 1`);
- flow upsampling with `cv::resize(INTER_LINEAR)` to the finer level's size, then times 1/scale_step.

Batching: all pairs of a call share the frame size, hence the pyramid. Each pair keeps its own stopping
rule. On CPU, pairs that meet it leave the batch ("compact" mode: fewer pixels per later iteration;
reading the per-pair error costs nothing there). On CUDA the loop never waits for the device ("mask"
mode): a device-side flag freezes finished pairs with `torch.where`, and the host learns that every
pair has finished through a non-blocking copy into pinned memory that it polls with an event, so a warp
ends a few iterations after its last pair converged without a single synchronisation. Both modes
compute the same numbers; `tests/test_flow_tvl1_torch.py` compares them.

Kernels: one iteration is a few dozen elementwise operations with 1-pixel stencils, written here as
PyTorch functions (the reference, the CUDA path, the fallback). On CPU the same operations run as C
loops (`tvl1_native.py`, `tvl1_kernels.c`: built in about a second on the first run of a machine, then
loaded in milliseconds; one iteration bit-exact with these functions). On CUDA `torch.compile` fuses an
iteration into two kernels (the u update with its error sum, then the dual update), the median into two
(sorted column runs, then the comparator network), the warp into one. See NOTES.md for measurements.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from vfx.errors import UsageError
from vfx.flow.median import median_of_runs, pad_replicate, sorted_column_runs
from vfx.flow.params import TVL1Params

log = logging.getLogger(__name__)

_FLT_EPSILON = float(np.finfo(np.float32).eps)
_MIN_LEVEL_SIDE = 16  # tvl1flow.cpp: "if (I0s[s].cols < 16 || I0s[s].rows < 16) nscales = s"


def cv_round(value: float) -> int:
    """`cvRound` of a double: nearest integer, ties to even (Python's `round` does the same)."""
    return int(round(value))


def pyramid_sizes(height: int, width: int, nscales: int, scale_step: float) -> list[tuple[int, int]]:
    """(height, width) of every level, finest first, as `calc` builds them."""
    sizes = [(height, width)]
    for _ in range(1, nscales):
        h, w = sizes[-1]
        nh, nw = cv_round(h * scale_step), cv_round(w * scale_step)
        if nw < _MIN_LEVEL_SIDE or nh < _MIN_LEVEL_SIDE:
            break
        sizes.append((nh, nw))
    return sizes


def linear_resize_matrix(src: int, dst: int, scale: float) -> np.ndarray:
    """[dst, src] float32 weights of `cv::resize(INTER_LINEAR)` along one axis.

    `scale` is OpenCV's `scale_x` (source pixels per destination pixel: 1/fx when a factor is given,
    src/dst when a size is given). Positions are computed in double and rounded to float as OpenCV does.
    """
    weights = np.zeros((dst, src), dtype=np.float32)
    for d in range(dst):
        # The fraction is taken in double and only the weights are rounded to float: this is what
        # OpenCV 5's float path does (checked against cv2.resize to 1-2 ulp).
        pos = (d + 0.5) * scale - 0.5
        s = math.floor(pos)
        frac = pos - s
        if s < 0:
            s, frac = 0, 0.0
        if s >= src - 1:
            s, frac = src - 1, 0.0
        weights[d, s] += np.float32(1.0 - frac)
        if frac != 0:
            weights[d, s + 1] += np.float32(frac)
    return weights


def cubic_weights(frac: torch.Tensor) -> torch.Tensor:
    """[..., 4] float32 Keys cubic weights (a = -0.75, OpenCV's `interpolateCubic`) for the taps at
    -1, 0, 1, 2, evaluated in double and rounded once (closest to what cv2.remap gives)."""
    x = frac.double()
    a = -0.75
    x1 = x + 1.0
    c0 = ((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a
    c1 = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    rest = 1.0 - x
    c2 = ((a + 2.0) * rest - (a + 3.0)) * rest * rest + 1.0
    c3 = 1.0 - c0 - c1 - c2
    return torch.stack((c0, c1, c2, c3), dim=-1).float()


class _Resizer:
    """Separable `cv::resize(INTER_LINEAR)` as two small matrix products (exact weights, any device)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, img_bhw: torch.Tensor, dst_hw: tuple[int, int], scale_yx: tuple[float, float]) -> torch.Tensor:
        src_h, src_w = img_bhw.shape[-2:]
        key = (src_h, src_w, dst_hw, scale_yx)
        if key not in self._cache:
            rows = torch.from_numpy(linear_resize_matrix(src_h, dst_hw[0], scale_yx[0]))
            cols = torch.from_numpy(linear_resize_matrix(src_w, dst_hw[1], scale_yx[1])).T.contiguous()
            self._cache[key] = (rows.to(self.device), cols.to(self.device))
        rows, cols = self._cache[key]
        return rows @ (img_bhw @ cols)

    def by_factor(self, img_bhw: torch.Tensor, factor: float, dst_hw: tuple[int, int]) -> torch.Tensor:
        # cv::resize(src, dst, Size(), f, f): scale_x = 1 / f
        return self(img_bhw, dst_hw, (1.0 / factor, 1.0 / factor))

    def to_size(self, img_bhw: torch.Tensor, dst_hw: tuple[int, int]) -> torch.Tensor:
        # cv::resize(src, dst, dsize): inv_scale_x = dst / src, scale_x = 1 / inv_scale_x
        src_h, src_w = img_bhw.shape[-2:]
        return self(img_bhw, dst_hw, (1.0 / (dst_hw[0] / src_h), 1.0 / (dst_hw[1] / src_w)))


def centered_gradient(img_bhw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """0.5 * (I[x+1] - I[x-1]) inside, 0.5 * one-sided difference on the border (tvl1flow.cpp
    `centeredGradient`), which is the centred difference of the edge-replicated image."""
    padded = F.pad(img_bhw.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    dx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    dy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return dx, dy


_WARP_PAD = 4  # zero border around the warped images: taps up to 4 px outside read zeros


def pad_for_warp(img_bhw: torch.Tensor) -> torch.Tensor:
    """[B, (H+8) * (W+8)] zero-padded, flattened copy of an image batch, the input of `warp_padded`."""
    return F.pad(img_bhw, (_WARP_PAD,) * 4).reshape(img_bhw.shape[0], -1)


def warp_padded(u1, u2, *padded):
    """`cv::remap(src, x + u1, y + u2, INTER_CUBIC)` with a constant 0 border, for three images that
    share the flow (I1, I1x, I1y), each given as `pad_for_warp(...)`. Returns one [B, H, W] tensor per
    image.

    Written as index arithmetic plus indexing so that `torch.compile` makes one loop of 48 loads per
    pixel (measured here: 2.3x faster than 16 `torch.gather` calls in eager mode).
    """
    b, h, w = u1.shape
    stride = w + 2 * _WARP_PAD
    xs = torch.arange(w, dtype=torch.float32, device=u1.device)
    ys = torch.arange(h, dtype=torch.float32, device=u1.device).unsqueeze(1)
    # Positions beyond 4 px outside the image sample only zeros; clamping first keeps indices in range.
    map_x = (xs + u1).clamp(-8.0, w + 8.0)
    map_y = (ys + u2).clamp(-8.0, h + 8.0)
    floor_x = torch.floor(map_x)
    floor_y = torch.floor(map_y)
    wx = cubic_weights(map_x - floor_x).unbind(-1)
    wy = cubic_weights(map_y - floor_y).unbind(-1)
    ix = floor_x.to(torch.int64).clamp(-3, w + 1)
    iy = floor_y.to(torch.int64).clamp(-3, h + 1)
    first_tap = _WARP_PAD - 1
    base = (iy + first_tap) * stride + (ix + first_tap)
    base = base + torch.arange(b, device=u1.device).view(b, 1, 1) * ((h + 2 * _WARP_PAD) * stride)
    outs = []
    for img in padded:
        flat = img.reshape(-1)
        out = None
        for ky in range(4):
            # Separable: along the row with the x weights, then down the four rows with the y weights
            # (of the summation orders tried, this one agrees with cv2.remap most often, to <= 4 ulp).
            row = None
            for kx in range(4):
                term = flat[base + (ky * stride + kx)] * wx[kx]
                row = term if row is None else row + term
            term = row * wy[ky]
            out = term if out is None else out + term
        outs.append(out)
    return outs


def warp_bicubic(images_bchw: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """`warp_padded` for a [B, C, H, W] stack; returns [B, C, H, W]."""
    padded = [pad_for_warp(t) for t in images_bchw.unbind(1)]
    return torch.stack(warp_padded(u1, u2, *padded), dim=1)


# State layout: u1, u2 are [B, H+1, W+1] with the flow in [:H, :W] and a zero row/column after it;
# p11, p12, p21, p22 are [B, H+1, W+1] with a zero row/column before them and their values in [1:, 1:].
# Every stencil is then a plain slice: no padding op and no masked load in the fused loops. (Measured
# under torch.compile on this CPU: the same iteration written with F.pad ran 5-8x slower because of
# masked loads, and channel slices of one [B, 4, H, W] tensor 10-25x slower than separate tensors.)
# The zero row/column of p is never written: that is the "zero outside" of the divergence. The
# forward gradient of u is multiplied by 0 in the last column/row, as OpenCV's `forwardGradient`.


def _new_u(u1, u2, p11, p12, p21, p22, i1wx, i1wy, grad, rho_c, l_t: float, theta: float):
    h, w = i1wx.shape[-2:]
    a1 = u1[:, :h, :w]
    a2 = u2[:, :h, :w]
    # Thresholding step (TH): v = u + d, d from the three cases of the linearised L1 data term.
    rho = rho_c + (i1wx * a1 + i1wy * a2)
    lt_grad = l_t * grad
    fi = torch.where(grad > _FLT_EPSILON, -rho / grad, torch.zeros_like(rho))
    fi = torch.where(rho > lt_grad, torch.full_like(rho, -l_t), fi)
    fi = torch.where(rho < -lt_grad, torch.full_like(rho, l_t), fi)
    v1 = a1 + fi * i1wx
    v2 = a2 + fi * i1wy
    # Divergence of (p11, p12) and (p21, p22): backward differences.
    div1 = (p11[:, 1:, 1:] - p11[:, 1:, :w]) + (p12[:, 1:, 1:] - p12[:, :h, 1:])
    div2 = (p21[:, 1:, 1:] - p21[:, 1:, :w]) + (p22[:, 1:, 1:] - p22[:, :h, 1:])
    return a1, a2, v1 + theta * div1, v2 + theta * div2


def u_step_masked(active, u1, u2, p11, p12, p21, p22, i1wx, i1wy, grad, rho_c, l_t: float, theta: float):
    """estimateV + divergence + estimateU: u <- v + theta * div p, in place, for pairs with active == True
    ([B] bool); the others stay unchanged. Returns the per-pair sum of the squared change of u (the error of
    the stopping rule), [B] (0 for inactive pairs)."""
    a1, a2, n1, n2 = _new_u(u1, u2, p11, p12, p21, p22, i1wx, i1wy, grad, rho_c, l_t, theta)
    keep = active.view(-1, 1, 1)
    n1 = torch.where(keep, n1, a1)
    n2 = torch.where(keep, n2, a2)
    d1 = n1 - a1
    d2 = n2 - a2
    error = (d1 * d1 + d2 * d2).sum(dim=(-2, -1))
    a1.copy_(n1)
    a2.copy_(n2)
    return error


def _new_p(u, px, py, colmask, rowmask, taut: float):
    h, w = rowmask.shape[-2], colmask.shape[-1]
    c = u[:, :h, :w]
    ux = (u[:, :h, 1:] - c) * colmask
    uy = (u[:, 1:, :w] - c) * rowmask
    # OpenCV takes hypot in double and rounds; sqrt of the float sum of squares differs by an ulp at
    # most and vectorises (libm hypot does not).
    ng = 1.0 + taut * torch.sqrt(ux * ux + uy * uy)
    qx = px[:, 1:, 1:]
    qy = py[:, 1:, 1:]
    return qx, qy, (qx + taut * ux) / ng, (qy + taut * uy) / ng


def p_step_masked(active, error, u1, u2, p11, p12, p21, p22, colmask, rowmask, taut: float, scaled_eps: float):
    """forwardGradient + estimateDualVariables for active pairs: p <- (p + taut * grad u) / (1 + taut * |grad u|).
    Returns the flags for the next iteration (active and error > scaled_eps)."""
    keep = active.view(-1, 1, 1)
    for u, px, py in ((u1, p11, p12), (u2, p21, p22)):
        qx, qy, nx, ny = _new_p(u, px, py, colmask, rowmask, taut)
        qx.copy_(torch.where(keep, nx, qx))
        qy.copy_(torch.where(keep, ny, qy))
    return active & (error > scaled_eps)


KERNELS = ("native", "compiled", "eager")


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class TorchKernels:
    """The kernels of an iteration as PyTorch functions: eager, or fused by `torch.compile` (the CUDA path).

    Same contracts as `tvl1_native.NativeKernels`, the CPU path: `u_step` and `median` work in place on
    the state, `p_step` in place on its duals and returns the next flags, `warp` returns three images.
    """

    def __init__(self, compile: bool):
        fns = dict(u=u_step_masked, p=p_step_masked, runs=sorted_column_runs, median=median_of_runs,
                   warp=warp_padded)
        if compile:
            fns = {k: torch.compile(f, dynamic=True) for k, f in fns.items()}
        self._fn = fns
        self._masks: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def u_step(self, active, state, consts, l_t: float, theta: float) -> torch.Tensor:
        return self._fn["u"](active, *state, *consts, l_t, theta)

    def p_step(self, active, error, state, taut: float, scaled_eps: float) -> torch.Tensor:
        b, h1, w1 = state[0].shape
        key = (h1 - 1, w1 - 1, state[0].device)
        if key not in self._masks:
            # forwardGradient: zero across the last column / row
            colmask = torch.ones(1, w1 - 1, device=key[2])
            colmask[0, -1] = 0
            rowmask = torch.ones(h1 - 1, 1, device=key[2])
            rowmask[-1, 0] = 0
            self._masks[key] = (colmask, rowmask)
        return self._fn["p"](active, error, *state, *self._masks[key], taut, scaled_eps)

    def median(self, state, h: int, w: int, k: int, active) -> None:
        for u in state[:2]:
            a = u[:, :h, :w]
            runs = self._fn["runs"](pad_replicate(a, k // 2), k, h)
            med = self._fn["median"](*runs, k, w)
            a.copy_(med if active is None else torch.where(active.view(-1, 1, 1), med, a))

    def warp(self, u1, u2, sources) -> list[torch.Tensor]:
        return self._fn["warp"](u1, u2, *sources)


def make_kernels(kernels: str | None, device: torch.device):
    """The kernel set `kernels` names, or the default for the device: on CPU the C kernels (eager PyTorch,
    with a warning, where they cannot be built), on CUDA `torch.compile` when Triton is there.
    $VFX_NO_COMPILE=1 asks for eager PyTorch kernels (no compiler involved at all)."""
    if kernels is not None and kernels not in KERNELS:
        raise UsageError(f"unknown TV-L1 kernels {kernels!r} ({', '.join(KERNELS)})")
    if kernels is None:
        if os.environ.get("VFX_NO_COMPILE"):
            kernels = "eager"
        elif device.type == "cpu":
            from vfx.flow.tvl1_native import KernelBuildError, NativeKernels

            try:
                return "native", NativeKernels()
            except KernelBuildError as exc:
                log.warning("TV-L1 runs on eager PyTorch kernels, several times slower: %s", exc)
                kernels = "eager"
        else:
            kernels = "compiled" if _triton_available() else "eager"
    if kernels == "native":
        if device.type != "cpu":
            raise UsageError("the native TV-L1 kernels run on the CPU only")
        from vfx.flow.tvl1_native import NativeKernels

        return kernels, NativeKernels()
    if kernels == "compiled":
        log.warning("compiling TV-L1 kernels with torch.compile for this %s (first call of a process: about "
                    "a minute or more)", device.type)
    return kernels, TorchKernels(compile=kernels == "compiled")


class TVL1Torch:
    """Dual TV-L1 on batches of frame pairs.

    >>> flow_bhw2 = TVL1Torch(TVL1Params(), device="cpu")(gray0_bhw, gray1_bhw)

    `mode` is "compact" (finished pairs leave the batch; needs the per-pair flags on the host every
    iteration, free on CPU) or "mask" (no host-device synchronisation inside a warp); default: compact
    on CPU, mask on CUDA. `kernels`: "native" (C, CPU only), "compiled" (`torch.compile`) or "eager"
    (PyTorch); default: native on CPU, compiled on CUDA (see `make_kernels`).
    """

    def __init__(self, params: TVL1Params, device: str | torch.device = "cpu", *, mode: str | None = None,
                 kernels: str | None = None, poll_every: int = 10):
        if params.gamma != 0:
            raise UsageError("the torch TV-L1 backend does not implement gamma (illumination term); "
                             "use --backend opencv for gamma > 0")
        self.params = params
        self.device = torch.device(device)
        self.mode = mode or ("mask" if self.device.type == "cuda" else "compact")
        if self.mode not in ("compact", "mask"):
            raise UsageError(f"unknown TV-L1 mode {self.mode!r} (compact or mask)")
        self.kernels, self._k = make_kernels(kernels, self.device)
        self.poll_every = poll_every
        self._resize = _Resizer(self.device)

    # ------------------------------------------------------------------ public
    def __call__(self, frames0_bhw, frames1_bhw) -> torch.Tensor:
        """Flow from frames0 to frames1: float32 [B, H, W, 2] (x, y) in pixels, on `self.device`.

        Inputs: uint8 gray [B, H, W] (or float in [0, 1], scaled by 255 like OpenCV), numpy or torch.
        """
        i0 = self._as_float(frames0_bhw)
        i1 = self._as_float(frames1_bhw)
        if i0.shape != i1.shape or i0.dim() != 3:
            raise UsageError(f"TV-L1 needs two [B, H, W] batches of the same shape, got {tuple(i0.shape)} "
                             f"and {tuple(i1.shape)}")
        if min(i0.shape[-2:]) < 3:
            raise UsageError(f"frames of {tuple(i0.shape[-2:])} are too small for TV-L1 (at least 3x3)")
        with torch.no_grad():
            return self._run(i0, i1)

    # ----------------------------------------------------------------- helpers
    def _as_float(self, frames) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
        if t.dtype == torch.uint8:
            return t.to(self.device).float()
        return t.to(self.device).float() * 255.0

    def _run(self, i0: torch.Tensor, i1: torch.Tensor) -> torch.Tensor:
        p = self.params
        b, h, w = i0.shape
        sizes = pyramid_sizes(h, w, p.nscales, p.scale_step)
        pyr0, pyr1 = [i0], [i1]
        for size in sizes[1:]:
            pyr0.append(self._resize.by_factor(pyr0[-1], p.scale_step, size))
            pyr1.append(self._resize.by_factor(pyr1[-1], p.scale_step, size))
        coarse_h, coarse_w = sizes[-1]
        u = torch.zeros(b, 2, coarse_h, coarse_w, device=self.device)
        inv_step = float(np.float32(1.0 / p.scale_step))
        for s in range(len(sizes) - 1, -1, -1):
            u = self._one_scale(pyr0[s], pyr1[s], u)
            if s == 0:
                break
            u = self._resize.to_size(u, sizes[s - 1]) * inv_step
        return u.permute(0, 2, 3, 1).contiguous()

    def _one_scale(self, i0, i1, u_b2hw):
        p = self.params
        b, h, w = i0.shape
        dev = self.device
        scaled_eps = float(np.float32(p.epsilon * p.epsilon * h * w))
        coeffs = dict(l_t=float(np.float32(p.lambda_ * p.theta)), theta=float(np.float32(p.theta)),
                      taut=float(np.float32(p.tau / p.theta)))
        u = [torch.zeros(b, h + 1, w + 1, device=dev) for _ in range(2)]
        u[0][:, :h, :w] = u_b2hw[:, 0]
        u[1][:, :h, :w] = u_b2hw[:, 1]
        duals = [torch.zeros(b, h + 1, w + 1, device=dev) for _ in range(4)]  # restart at every level
        i1x, i1y = centered_gradient(i1)
        sources = [pad_for_warp(t) for t in (i1, i1x, i1y)]
        iterate = self._iterate_compact if self.mode == "compact" else self._iterate_masked
        for _ in range(p.warps):
            u1 = u[0][:, :h, :w]
            u2 = u[1][:, :h, :w]
            i1w, i1wx, i1wy = self._k.warp(u1.contiguous(), u2.contiguous(), sources)
            grad = i1wx * i1wx + i1wy * i1wy
            rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
            consts = [t.contiguous() for t in (i1wx, i1wy, grad, rho_c)]
            state = iterate(u + duals, consts, coeffs, scaled_eps)
            u, duals = state[:2], state[2:]
        return torch.stack([t[:, :h, :w] for t in u], dim=1)

    def _iterate_compact(self, state, consts, coeffs, scaled_eps):
        """CPU loop: finished pairs are frozen by the masked kernels and leave the batch once they are a
        quarter of it (copying the state at every single departure cost more than it saved)."""
        p = self.params
        h, w = consts[0].shape[-2:]
        k = self._k
        full = state  # pairs that leave the batch are written back here
        idx = None  # None: the batch is `full` itself, in its original order
        n_batch = state[0].shape[0]
        active = torch.ones(n_batch, dtype=torch.bool, device=self.device)
        n_active = n_batch
        for _ in range(p.outer_iterations):
            if n_active == 0:
                break
            if p.uses_median:
                k.median(state, h, w, p.median_filtering, active if n_active < n_batch else None)
            for _ in range(p.inner_iterations):
                error = k.u_step(active, state, consts, coeffs["l_t"], coeffs["theta"])
                active = k.p_step(active, error, state, coeffs["taut"], scaled_eps)
                n_active = int(active.sum())
                if n_active == n_batch or (0 < n_active and 4 * (n_batch - n_active) < n_batch):
                    continue
                if n_active == 0:
                    break
                # Compact: write the finished pairs back, keep working on copies of the others.
                if idx is None:
                    idx = torch.arange(n_batch, device=self.device)  # finished ones are already in `full`
                else:
                    done = ~active
                    for f, t in zip(full, state):
                        f[idx[done]] = t[done]
                idx = idx[active]
                state = [t[active] for t in state]
                consts = [t[active] for t in consts]
                active = torch.ones(n_active, dtype=torch.bool, device=self.device)
                n_batch = n_active
        if idx is not None:
            for f, t in zip(full, state):
                f[idx] = t
        return full

    def _iterate_masked(self, state, consts, coeffs, scaled_eps):
        p = self.params
        h, w = consts[0].shape[-2:]
        b = state[0].shape[0]
        k = self._k
        active = torch.ones(b, dtype=torch.bool, device=self.device)
        on_cuda = self.device.type == "cuda"
        flag_host = torch.zeros(1, dtype=torch.bool, pin_memory=on_cuda)
        event = torch.cuda.Event() if on_cuda else None
        pending = False
        n = 0
        finished = False
        for _ in range(p.outer_iterations):
            if finished:
                break
            if p.uses_median:
                k.median(state, h, w, p.median_filtering, active)
            for _ in range(p.inner_iterations):
                error = k.u_step(active, state, consts, coeffs["l_t"], coeffs["theta"])
                active = k.p_step(active, error, state, coeffs["taut"], scaled_eps)
                n += 1
                if n % self.poll_every:
                    continue
                if event is None:  # CPU: reading the flags costs nothing
                    finished = not bool(active.any())
                else:
                    # Use the flag copied at the previous poll if it has arrived; never wait for it.
                    if pending and event.query() and not bool(flag_host[0]):
                        finished = True
                    flag_host.copy_(active.any().view(1), non_blocking=True)
                    event.record()
                    pending = True
                if finished:
                    break
        return state
