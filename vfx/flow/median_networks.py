"""The comparator networks of the exact k x k median (vfx/flow/median.py), derived once: pure Python.

Kept apart from the torch code that runs them: the C kernels of the torch TV-L1 backend are generated from
these networks (vfx/flow/tvl1_native.py), and building or finding those kernels must not import torch.
See vfx/flow/median.py for how the networks are derived and why.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

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
