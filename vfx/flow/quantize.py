"""Flow as uint8 images with a bound, the denseflow/TSN convention, and its JPEG and float16 variants.

denseflow (open-mmlab/denseflow src/common.cpp, `convertFlowToImage`) maps a flow value v with bound B to
255 when v > B, 0 when v < -B, and otherwise cvRound(255 * (v + B) / (2B)) (rounding half to even, in
double). Readers invert it with f = q * (2B / 255) - B (`Store.read_flow`).
"""

from __future__ import annotations

import numpy as np

# `dequantize` lives in the codec (a leaf) so that the store reader uses the same formula without importing flow.
from vfx.codec import dequantize_flow as dequantize  # noqa: F401 - re-exported by vfx.flow
from vfx.codec import encode_jpegs
from vfx.errors import UsageError

FORMATS = ("uint8", "jpeg", "float16")
#: Flow (pixels) mapped to 0 and 255 unless told otherwise: the bound of the denseflow/TSN rawframes convention.
DEFAULT_BOUND = 20.0


def quantize(flow: np.ndarray, bound: float) -> np.ndarray:
    """float flow (any shape) -> uint8, exactly as denseflow's `convertFlowToImage`."""
    if not bound > 0:
        raise UsageError(f"bound must be > 0, got {bound}")
    v = flow.astype(np.float64)
    q = np.rint(255.0 * (v + bound) / (2.0 * bound))  # np.rint: half to even, like cvRound
    q = np.where(v > bound, 255.0, np.where(v < -bound, 0.0, q))
    # NaN (which no backend produces) would otherwise become an arbitrary byte: make it "no motion".
    q = np.where(np.isnan(v), np.rint(127.5), q)
    return q.astype(np.uint8)


def encode_flow_jpeg(flow_nhw2: np.ndarray, bound: float, quality: int = 95) -> tuple[np.ndarray, np.ndarray]:
    """Quantised flow as 2N grayscale JPEGs ordered x0, y0, x1, y1, ... -> (buffer, offsets [2N+1])."""
    q = quantize(flow_nhw2, bound)
    planes = np.ascontiguousarray(q.transpose(0, 3, 1, 2).reshape(-1, *q.shape[1:3]))
    return encode_jpegs(planes, quality)
