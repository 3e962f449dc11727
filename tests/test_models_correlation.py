"""Correlation operators (vfx/models/correlation.py) against naive loops, gradients and FLOP counts."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vfx.models.correlation import local_correlation, weighted_correlation


def naive_local(f1, f2, patch, dilation):
    n, c, h, w = f1.shape
    r = patch // 2
    out = torch.zeros(n, patch * patch, h, w, dtype=f1.dtype)
    for b in range(n):
        for iy in range(patch):
            for ix in range(patch):
                dy, dx = (iy - r) * dilation, (ix - r) * dilation
                for y in range(h):
                    for x in range(w):
                        if 0 <= y + dy < h and 0 <= x + dx < w:
                            out[b, iy * patch + ix, y, x] = sum(f1[b, ch, y, x] * f2[b, ch, y + dy, x + dx] for ch in range(c))
    return out


def naive_weighted(x1, x2, weight, groups, dilation):
    b, c, t, h, w = x1.shape
    k = weight.shape[-1]
    r = k // 2
    cg = c // groups
    out = torch.zeros(b, k * k * groups, t, h, w, dtype=x1.dtype)
    for n in range(b):
        for iy in range(k):
            for ix in range(k):
                dy, dx = (iy - r) * dilation, (ix - r) * dilation
                for g in range(groups):
                    for f in range(t):
                        for y in range(h):
                            for x in range(w):
                                if 0 <= y + dy < h and 0 <= x + dx < w:
                                    s = sum(
                                        weight[ch, f, iy, ix] * x1[n, ch, f, y, x] * x2[n, ch, f, y + dy, x + dx]
                                        for ch in range(g * cg, (g + 1) * cg)
                                    )
                                    out[n, (iy * k + ix) * groups + g, f, y, x] = s / cg
    return out


@pytest.mark.parametrize("patch,dilation", [(3, 1), (5, 1), (3, 2)])
def test_local_correlation_matches_naive_loop(patch, dilation):
    g = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64), torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(local_correlation(f1, f2, patch, dilation), naive_local(f1, f2, patch, dilation))


def test_local_correlation_golden_peak_at_known_offset():
    # f2 is f1 moved 1 pixel right and 2 down: at (y, x) the best match sits at offset (dy, dx) = (2, 1),
    # i.e. index iy * 5 + ix = (2 + 2) * 5 + (1 + 2) = 23 in a 5x5 window.
    f1 = torch.zeros(1, 1, 6, 6)
    f1[0, 0, 1, 1] = 1.0
    f2 = torch.roll(f1, shifts=(2, 1), dims=(2, 3))
    out = local_correlation(f1, f2, 5)
    assert out[0, :, 1, 1].argmax().item() == 23
    assert out.sum().item() == 1.0


@pytest.mark.parametrize("groups,dilation", [(1, 1), (2, 2)])
def test_weighted_correlation_matches_naive_loop(groups, dilation):
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(1, 4, 2, 5, 5, generator=g, dtype=torch.float64)
    x2 = torch.randn(1, 4, 2, 5, 5, generator=g, dtype=torch.float64)
    w = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(weighted_correlation(x1, x2, w, groups, dilation), naive_weighted(x1, x2, w, groups, dilation))


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(2)
    f1 = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    f2 = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: local_correlation(a, b, 3, 1), (f1, f2))
    x1 = torch.randn(1, 2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(1, 2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: weighted_correlation(a, b, c, 2, 2), (x1, x2, w))


def test_flop_counter_sees_the_correlation_ops():
    f = torch.randn(2, 3, 5, 6)
    with FlopCounterMode(display=False) as counter:
        local_correlation(f, f, 7)
    assert counter.get_total_flops() == 2 * f.numel() * 49
    x, w = torch.randn(1, 4, 2, 5, 5), torch.randn(4, 2, 3, 3)
    with FlopCounterMode(display=False) as counter:
        weighted_correlation(x, x, w, 2)
    assert counter.get_total_flops() == 3 * x.numel() * 9


def test_bad_shapes_are_refused_with_the_shapes_in_the_message():
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 3\) and \(1, 2, 4, 4\)"):
        local_correlation(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 4), 3)
    with pytest.raises(ValueError, match=r"weight must be \[C=4, T=2, K, K\]"):
        weighted_correlation(torch.zeros(1, 4, 2, 3, 3), torch.zeros(1, 4, 2, 3, 3), torch.zeros(4, 3, 3, 3), 2)
