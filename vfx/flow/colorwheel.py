"""Middlebury colour coding of optical flow (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", IJCV 2011): hue = direction, saturation = speed relative to a maximum, with a legend.

The wheel has 55 hues in six ramps (red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11,
blue-magenta 13, magenta-red 6), the segment lengths of the Middlebury `colorcode` reference code.
"""

from __future__ import annotations

import cv2
import numpy as np

# (length, start colour, end colour) of each ramp, in RGB 0..255.
_RAMPS = (
    (15, (255, 0, 0), (255, 255, 0)),
    (6, (255, 255, 0), (0, 255, 0)),
    (4, (0, 255, 0), (0, 255, 255)),
    (11, (0, 255, 255), (0, 0, 255)),
    (13, (0, 0, 255), (255, 0, 255)),
    (6, (255, 0, 255), (255, 0, 0)),
)


def color_wheel() -> np.ndarray:
    """[55, 3] float RGB in 0..255, hue by hue."""
    rows = []
    for length, start, end in _RAMPS:
        t = np.arange(length, dtype=np.float64)[:, None] / length
        rows.append(np.array(start, np.float64) * (1 - t) + np.array(end, np.float64) * t)
    return np.concatenate(rows)


def flow_to_rgb(flow_hw2: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """uint8 [H, W, 3] RGB image of a flow field. Speeds are divided by `max_magnitude` (default: the
    largest finite speed in the field); beyond it colours are darkened, as in the Middlebury code."""
    u = np.nan_to_num(flow_hw2[..., 0].astype(np.float64))
    v = np.nan_to_num(flow_hw2[..., 1].astype(np.float64))
    radius = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(radius.max()) if radius.size else 0.0
    scale = max_magnitude if max_magnitude > 0 else 1.0
    radius = radius / scale
    wheel = color_wheel()
    ncols = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # -1..1
    position = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % ncols
    frac = (position - k0)[..., None]
    col = ((1 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0
    inside = (radius <= 1)[..., None]
    col = np.where(inside, 1 - radius[..., None] * (1 - col), col * 0.75)
    return np.clip(np.floor(255 * col), 0, 255).astype(np.uint8)


def legend(size: int, max_magnitude: float) -> np.ndarray:
    """uint8 [size, size, 3] RGB disc of the colour code with the speed its rim stands for."""
    r = np.linspace(-1, 1, size)
    xx, yy = np.meshgrid(r, r)
    disc = flow_to_rgb(np.stack([xx, yy], -1) * max(max_magnitude, 1e-6), max_magnitude)
    disc[np.hypot(xx, yy) > 1] = 255
    text = f"{max_magnitude:.1f}px"
    scale = max(size / 160.0, 0.3)
    cv2.putText(disc, text, (2, size - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return disc
