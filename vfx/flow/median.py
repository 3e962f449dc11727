"""Exact k x k median filter (k = 3 or 5, replicated border) built from min/max comparator networks.

Why not `unfold().median()`: it materialises k*k copies of the image and runs a generic sort per pixel,
which was the slowest part of a straightforward batched TV-L1 on CPU. A comparator network is a fixed
sequence of elementwise `minimum`/`maximum` calls, which `torch.compile` fuses into one loop that keeps
all k*k values in registers (and which stays reasonably fast in eager mode too).

The network is derived once at import (vfx/flow/median_networks.py, pure Python):
1. each window column is sorted with a small sorting network; a column sort is shared by the k windows
   that contain that column, so it is paid once per pixel, not k times;
2. Batcher's odd-even merge sort over the k*k window values is pruned of every comparator that can
   never swap given sorted columns (checked on all 0-1 inputs with sorted columns: by the 0-1 principle
   such a comparator never swaps on real inputs either);
3. everything that does not feed the middle output is dropped.
For k = 5 this leaves 146 min/max operations per pixel after the 18 of the shared column sort
(a full sort of 25 values would need 2 * 140).

Results equal `cv2.medianBlur(src, k)` on float32 input bit for bit (OpenCV replicates the border for
the float median), which `tests/test_flow_tvl1_torch.py` checks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vfx.flow.median_networks import median_network, sorting_network  # noqa: F401 - median_network re-exported


def _apply_sort(values: list, network) -> list:
    """Sort a list of tensors elementwise with a `sorting_network` result."""
    comparators, order = network
    vals = list(values)
    for a, b in comparators:
        vals[a], vals[b] = torch.minimum(vals[a], vals[b]), torch.maximum(vals[a], vals[b])
    return [vals[w] for w in order]


def pad_replicate(src_bhw: torch.Tensor, radius: int) -> torch.Tensor:
    """Edge-replicated border of `radius` pixels around the last two dimensions."""
    h, w = src_bhw.shape[-2:]
    lead = src_bhw.shape[:-2]
    padded = F.pad(src_bhw.reshape(-1, 1, h, w), (radius,) * 4, mode="replicate")
    return padded.reshape(*lead, h + 2 * radius, w + 2 * radius)


def sorted_column_runs(padded: torch.Tensor, ksize: int, h: int) -> list[torch.Tensor]:
    """The ksize vertical neighbours of every (row, padded column), sorted: ksize tensors [..., h, W+2r]."""
    column_sort, _ = _NETWORKS[ksize]
    return _apply_sort([padded[..., dy : dy + h, :] for dy in range(ksize)], column_sort)


def median_of_runs(*runs_and_sizes):
    """Median of each window from `sorted_column_runs` output: median_of_runs(*runs, ksize, w)."""
    *runs, ksize, w = runs_and_sizes
    _, (nodes, out) = _NETWORKS[ksize]
    values: list[torch.Tensor] = []
    for node in nodes:
        if node[0] == "in":
            _, c, rank = node
            values.append(runs[rank][..., c : c + w])
        elif node[0] == "min":
            values.append(torch.minimum(values[node[1]], values[node[2]]))
        else:
            values.append(torch.maximum(values[node[1]], values[node[2]]))
    return values[out]


def median_blur(src_bhw: torch.Tensor, ksize: int) -> torch.Tensor:
    """Median of every ksize x ksize window (ksize 3 or 5) over the last two dimensions, border
    replicated; same shape as the input.

    Under `torch.compile`, compile `sorted_column_runs` and `median_of_runs` separately and pad outside
    (as `TVL1Torch` does): fused into one graph the column sorts get recomputed per window column and the
    replicated border turns into clamped loads, which measured 4x slower here.
    """
    if ksize not in (3, 5):
        raise ValueError(f"median_blur supports ksize 3 or 5, not {ksize}")
    h, w = src_bhw.shape[-2:]
    runs = sorted_column_runs(pad_replicate(src_bhw, ksize // 2), ksize, h)
    return median_of_runs(*runs, ksize, w)


# Built once at import (a few milliseconds) so that traced/compiled code only sees constants.
_NETWORKS = {k: (sorting_network(k), median_network(k)) for k in (3, 5)}
