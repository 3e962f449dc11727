"""Labelled panels for `vfx show`: every picture carries a caption that says what it is.

Panels whose short side is under `MIN_SIDE` are enlarged (nearest neighbour, so pixels stay visible) before
anything is drawn, so that captions and legends are readable whatever the stored size: captions are OpenCV's
Hershey simplex at scale `FONT_SCALE` (capital letters about 11 px tall), two lines on a `CAPTION_H`-pixel strip
above the picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from vfx.flow.colorwheel import flow_to_rgb

MIN_SIDE = 240
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.5
LINE_H = 18
CAPTION_H = 2 * LINE_H + 6


def enlarge(image_hwc: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """The image scaled by a whole factor so its short side is at least `min_side` (unchanged if it is)."""
    factor = int(np.ceil(min_side / max(1, min(image_hwc.shape[:2]))))
    if factor <= 1:
        return image_hwc
    return cv2.resize(image_hwc, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def caption(image_hwc: np.ndarray, lines: list[str]) -> np.ndarray:
    """The image below a white strip with up to two lines of black text (cut to the panel's width)."""
    h, w = image_hwc.shape[:2]
    strip = np.full((CAPTION_H, w, 3), 255, np.uint8)
    for i, text in enumerate(lines[:2]):
        while text and cv2.getTextSize(text, FONT, FONT_SCALE, 1)[0][0] > w - 8:
            text = text[:-2] + "~"
        cv2.putText(strip, text, (4, LINE_H * (i + 1)), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, np.ascontiguousarray(image_hwc)], axis=0)


def typical_speed(flow_nhw2: np.ndarray) -> float:
    """The speed that `vfx show` puts at the rim of the colour wheel: the 95th percentile of the shown
    fields' speeds, so that typical motion is saturated colour (the maximum would leave most of a field
    near white: one fast pixel sets the scale)."""
    speed = np.hypot(flow_nhw2[..., 0], flow_nhw2[..., 1])
    speed = speed[np.isfinite(speed)]
    return max(float(np.percentile(speed, 95)) if speed.size else 0.0, 1e-3)


def wheel_legend(size: int, rim: float, unit: str) -> np.ndarray:
    """uint8 [size + LINE_H, size, 3]: the colour wheel with the speed of its rim written below it."""
    r = np.linspace(-1, 1, size)
    xx, yy = np.meshgrid(r, r)
    disc = flow_to_rgb(np.stack([xx, yy], -1) * rim, rim)
    disc[np.hypot(xx, yy) > 1] = 255
    label = np.full((LINE_H, size, 3), 255, np.uint8)
    cv2.putText(label, f"rim {rim:.2g} {unit}", (2, LINE_H - 5), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([disc, label], axis=0)


def colour_bar(height: int, width: int = 14) -> np.ndarray:
    """uint8 [height, width + 30, 3]: OpenCV's JET map from 1 (top) to 0 (bottom), with the two ends written."""
    values = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(width, 1)
    bar = cv2.cvtColor(cv2.applyColorMap(values, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    out = np.full((height, width + 30, 3), 255, np.uint8)
    out[:, :width] = bar
    cv2.putText(out, "1", (width + 4, 14), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(out, "0", (width + 4, height - 4), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def paste(image_hwc: np.ndarray, inset: np.ndarray, corner: str = "top-right") -> np.ndarray:
    """The inset drawn into a copy of the image at a corner (clipped to the image)."""
    out = image_hwc.copy()
    h, w = min(inset.shape[0], out.shape[0]), min(inset.shape[1], out.shape[1])
    if corner == "top-right":
        out[:h, -w:] = inset[:h, :w]
    else:
        out[:h, :w] = inset[:h, :w]
    return out


def frame_text(video_id: str, frame: int, time_sec: float | None) -> str:
    return f"{video_id}  frame {frame}" + (f"  t={time_sec:.2f}s" if time_sec is not None else "")
