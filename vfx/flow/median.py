"""Exact k x k median filter (k = 3 or 5, replicated border) built from min/max comparator networks.

Why not `unfold().median()`: it materialises k*k copies of the image and runs a generic sort per pixel,
which was the slowest part of a straightforward batched TV-L1 on CPU. A comparator network is a fixed
sequence of elementwise `minimum`/`maximum` calls, which `torch.compile` fuses into one loop that keeps
all k*k values in registers (and which stays reasonably fast in eager mode too).

The network is derived once at import:
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

import itertools
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

# A node is ("in", column, rank) or ("min"|"max", node_id_a, node_id_b); ids index into the node list.
Node = tuple


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Comparators (i < j) of Batcher's odd-even merge sort for n a power of two."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _next_pow2(n: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return size


@lru_cache(maxsize=None)
def sorting_network(n: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Comparators sorting n wires ascending, and the wire that ends up holding each rank.

    Batcher's network for the next power of two, with the padding positions (+inf) removed: a comparator
    against a pad above never swaps, and one with the pad below only exchanges which wire sits where.
    """
    size = _next_pow2(n)
    wire_at: list[int | None] = list(range(n)) + [None] * (size - n)
    comparators = []
    for i, j in _batcher_pairs(size):
        a, b = wire_at[i], wire_at[j]
        if b is None:
            continue
        if a is None:
            wire_at[i], wire_at[j] = b, a
            continue
        comparators.append((a, b))
    order = tuple(w for w in wire_at if w is not None)
    return tuple(comparators), order


def _apply_sort(values: list, network) -> list:
    """Sort a list of tensors elementwise with a `sorting_network` result."""
    comparators, order = network
    vals = list(values)
    for a, b in comparators:
        vals[a], vals[b] = torch.minimum(vals[a], vals[b]), torch.maximum(vals[a], vals[b])
    return [vals[w] for w in order]


@lru_cache(maxsize=None)
def median_network(k: int) -> tuple[list[Node], int]:
    """The pruned network computing the median of a k x k window whose columns are already sorted.

    Returns (nodes, output_id); the inputs ("in", column, rank) are the sorted column values.
    """
    n = k * k
    size = _next_pow2(n)
    pairs = _batcher_pairs(size)
    pad = 2  # any value above the 0/1 inputs stands for +inf
    # All 0-1 inputs with sorted columns: column c holds `count` ones at its top ranks.
    rows = []
    for counts in itertools.product(range(k + 1), repeat=k):
        row = [pad] * size
        for c, count in enumerate(counts):
            for r in range(k):
                row[c * k + r] = 1 if r >= k - count else 0
        rows.append(row)
    zero_one = np.array(rows, dtype=np.int8)
    useful = []
    for i, j in pairs:
        lo = np.minimum(zero_one[:, i], zero_one[:, j])
        hi = np.maximum(zero_one[:, i], zero_one[:, j])
        if (zero_one[:, i] > zero_one[:, j]).any():
            useful.append((i, j))
        zero_one[:, i], zero_one[:, j] = lo, hi
    # Single-assignment form: each comparator makes a min node and a max node.
    nodes: list[Node] = []
    position: list[int | None] = [None] * size
    for c in range(k):
        for r in range(k):
            nodes.append(("in", c, r))
            position[c * k + r] = len(nodes) - 1
    for i, j in useful:
        a, b = position[i], position[j]
        if b is None:
            continue
        if a is None:
            position[i], position[j] = b, a
            continue
        nodes.append(("min", a, b))
        nodes.append(("max", a, b))
        position[i], position[j] = len(nodes) - 2, len(nodes) - 1
    out = position[n // 2]
    # Keep only what the middle output depends on.
    live = set()
    stack = [out]
    while stack:
        node = stack.pop()
        if node in live:
            continue
        live.add(node)
        if nodes[node][0] != "in":
            stack.extend(nodes[node][1:])
    remap = {}
    kept: list[Node] = []
    for idx, node in enumerate(nodes):
        if idx not in live:
            continue
        if node[0] == "in":
            kept.append(node)
        else:
            kept.append((node[0], remap[node[1]], remap[node[2]]))
        remap[idx] = len(kept) - 1
    return kept, remap[out]


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
