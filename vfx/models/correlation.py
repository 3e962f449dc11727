"""Correlation operators shared by MSNet and CorrNet, in pure PyTorch.

Both compare a feature map with displaced copies of another over a square window of offsets, read
as *views* into one zero-padded tensor, so the extra memory is that padded copy plus one temporary of
about a feature map's size per step, never the K^2-times-larger stack an `unfold` would build.
`local_correlation` runs one batched matmul per vertical offset (see `_local_correlation_impl`);
`weighted_correlation` has a different weight for every channel and offset and loops over offsets.

Each operator is a `torch.library` custom op so that `torch.utils.flop_counter` sees it (its
elementwise multiplies and sums would otherwise count as zero FLOPs) and so that autograd
recomputes the cheap forward in backward instead of storing the per-offset products.

Offset order (shared with the checkpoints that depend on it): offset index `k = iy * K + ix` with
`dy = (iy - K // 2) * dilation`, `dx = (ix - K // 2) * dilation`, i.e. row-major over (dy, dx),
as `spatial_correlation_sampler` lays out its (patchH, patchW) output (MSNet) and as the CorrNet
re-implementation's `meshgrid` loop concatenates its responses (tefantasy/CorrNet corr.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula


def _offsets(kernel: int, dilation: int):
    """(k, dy, dx) for every offset of a K x K window, row-major."""
    r = kernel // 2
    for iy in range(kernel):
        for ix in range(kernel):
            yield iy * kernel + ix, (iy - r) * dilation, (ix - r) * dilation


def _local_correlation_impl(f1_nchw: torch.Tensor, f2_nchw: torch.Tensor, patch: int, dilation: int) -> torch.Tensor:
    # One batched matmul per vertical offset: for every image row, each position of f1 against every
    # position of the displaced (padded) f2 row, `[N*H, W, W+2r]`; the wanted offsets are the band
    # x' = x + ix * dilation of that matrix, read as a strided view. 2-3x faster on CPU than one
    # multiply-and-sum per offset; the transient matrix is W+2r values per pixel (for MSNet's 28x28
    # maps that is 42, smaller than the 64-channel feature map), not a K^2 stack.
    n, c, h, w = f1_nchw.shape
    r = (patch // 2) * dilation
    wp = w + 2 * r
    rows_f1 = f1_nchw.permute(0, 2, 3, 1).reshape(n * h, w, c)
    f2_pad = F.pad(f2_nchw, (r, r, r, r)).permute(0, 2, 3, 1)  # [N, H+2r, W+2r, C]
    out = f1_nchw.new_empty((n, patch, patch, h, w))
    for iy in range(patch):
        y0 = iy * dilation
        rows_f2 = f2_pad[:, y0 : y0 + h].reshape(n * h, wp, c)
        scores = torch.bmm(rows_f1, rows_f2.transpose(1, 2))
        band = scores.as_strided((n * h, w, patch), (w * wp, wp + 1, dilation), scores.storage_offset())
        out[:, iy] = band.view(n, h, w, patch).permute(0, 3, 1, 2)
    return out.view(n, patch * patch, h, w)


def _weighted_correlation_impl(
    x1_bcthw: torch.Tensor, x2_bcthw: torch.Tensor, weight_ctkk: torch.Tensor, groups: int, dilation: int
) -> torch.Tensor:
    b, c, t, h, w = x1_bcthw.shape
    kernel = weight_ctkk.shape[-1]
    r = (kernel // 2) * dilation
    x2_pad = F.pad(x2_bcthw, (r, r, r, r))
    out = x1_bcthw.new_empty((b, kernel * kernel * groups, t, h, w))
    for k, dy, dx in _offsets(kernel, dilation):
        iy, ix = divmod(k, kernel)
        window = x2_pad[:, :, :, r + dy : r + dy + h, r + dx : r + dx + w]
        scale = weight_ctkk[:, :, iy, ix].view(1, c, t, 1, 1)
        prod = x1_bcthw * scale * window
        out[:, k * groups : (k + 1) * groups] = prod.view(b, groups, c // groups, t, h, w).mean(dim=2)
    return out


@torch.library.custom_op("vfx::local_correlation", mutates_args=())
def _local_correlation_op(f1: torch.Tensor, f2: torch.Tensor, patch: int, dilation: int) -> torch.Tensor:
    return _local_correlation_impl(f1, f2, patch, dilation)


@_local_correlation_op.register_fake
def _(f1, f2, patch, dilation):
    n, _, h, w = f1.shape
    return f1.new_empty((n, patch * patch, h, w))


@torch.library.custom_op("vfx::weighted_correlation", mutates_args=())
def _weighted_correlation_op(
    x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor, groups: int, dilation: int
) -> torch.Tensor:
    return _weighted_correlation_impl(x1, x2, weight, groups, dilation)


@_weighted_correlation_op.register_fake
def _(x1, x2, weight, groups, dilation):
    b, _, t, h, w = x1.shape
    k = weight.shape[-1]
    return x1.new_empty((b, k * k * groups, t, h, w))


def _save_inputs(ctx, inputs, output):
    tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
    ctx.save_for_backward(*tensors)
    ctx.rest = [x for x in inputs if not isinstance(x, torch.Tensor)]


def _recompute_backward(impl):
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in saved]
            out = impl(*leaves, *ctx.rest)
            grads = torch.autograd.grad(out, leaves, grad)
        return (*grads, *([None] * len(ctx.rest)))

    return backward


_local_correlation_op.register_autograd(_recompute_backward(_local_correlation_impl), setup_context=_save_inputs)
_weighted_correlation_op.register_autograd(_recompute_backward(_weighted_correlation_impl), setup_context=_save_inputs)


@register_flop_formula(torch.ops.vfx.local_correlation)
def _local_correlation_flops(f1_shape, f2_shape, patch, dilation, *args, out_shape=None, **kwargs) -> int:
    # One multiply-add per channel, pixel and offset; flop_counter counts a multiply-add as 2.
    return 2 * math.prod(f1_shape) * patch * patch


@register_flop_formula(torch.ops.vfx.weighted_correlation)
def _weighted_correlation_flops(x1_shape, x2_shape, w_shape, groups, dilation, *args, out_shape=None, **kwargs) -> int:
    # Per channel, pixel, frame and offset: weight*x1, *x2, and the sum (3 FLOPs).
    return 3 * math.prod(x1_shape) * w_shape[-1] * w_shape[-2]


def local_correlation(f1_nchw: torch.Tensor, f2_nchw: torch.Tensor, patch: int, dilation: int = 1) -> torch.Tensor:
    """`out[n, k, y, x] = sum_c f1[n, c, y, x] * f2[n, c, y + dy_k, x + dx_k]`, zero outside f2.

    Returns `[N, patch*patch, H, W]`. Equals `SpatialCorrelationSampler(kernel_size=1, patch_size=patch,
    stride=1, padding=0, dilation_patch=dilation)` followed by a reshape, as MSNet uses it
    (arunos728/MotionSqueeze resnet_TSM.py, `Matching_layer_scs`).
    """
    if f1_nchw.shape != f2_nchw.shape or f1_nchw.dim() != 4:
        raise ValueError(f"local_correlation needs two equal [N, C, H, W] maps, got {tuple(f1_nchw.shape)} and {tuple(f2_nchw.shape)}")
    if patch % 2 != 1:
        raise ValueError(f"patch must be odd, got {patch}")
    return _local_correlation_op(f1_nchw.contiguous(), f2_nchw.contiguous(), int(patch), int(dilation))


def weighted_correlation(
    x1_bcthw: torch.Tensor, x2_bcthw: torch.Tensor, weight_ctkk: torch.Tensor, groups: int, dilation: int = 1
) -> torch.Tensor:
    """CorrNet's learnable, groupwise correlation between frame pairs (Wang et al. 2020, Eq. 2-3).

    `out[b, k*G + g, t, y, x] = mean_{c in group g} w[c, t, k] * x1[b, c, t, y, x] * x2[b, c, t, y+dy_k, x+dx_k]`
    with zero padding outside x2. Returns `[B, K*K*G, T, H, W]`.
    """
    if x1_bcthw.shape != x2_bcthw.shape or x1_bcthw.dim() != 5:
        raise ValueError(f"weighted_correlation needs two equal [B, C, T, H, W] maps, got {tuple(x1_bcthw.shape)} and {tuple(x2_bcthw.shape)}")
    c, t = x1_bcthw.shape[1:3]
    if weight_ctkk.dim() != 4 or tuple(weight_ctkk.shape[:2]) != (c, t) or weight_ctkk.shape[2] != weight_ctkk.shape[3]:
        raise ValueError(f"weight must be [C={c}, T={t}, K, K], got {tuple(weight_ctkk.shape)}")
    if weight_ctkk.shape[-1] % 2 != 1 or c % groups:
        raise ValueError(f"K must be odd and C={c} divisible by groups={groups}")
    return _weighted_correlation_op(x1_bcthw.contiguous(), x2_bcthw.contiguous(), weight_ctkk, int(groups), int(dilation))
