"""Spatial transforms shared by every stage: resize by short side or to an exact size, centre crop."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vfx.errors import UsageError

# "decoder": let decord/FFmpeg scale while decoding (bicubic swscale, as `ffmpeg -vf scale`). Frames already in
# memory are then resized with OpenCV's bicubic, the closest match (mean difference < 1 grey level).
_INTERPOLATION = {"decoder": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA,
                  "cubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class Resize:
    """How frames are resized before they are stored or fed to flow.

    `short_side`: scale so the shorter side has this length (aspect kept; sizes rounded to even numbers, as
    ffmpeg's `scale=-2:N` does, so that codecs and 2x2 pyramids never meet odd sizes). `size`: exact
    (width, height), e.g. (340, 256) as TSN does, always applied (UCF101's 320x240 videos are enlarged to
    340x256, as denseflow does). Neither: keep the source size. A short side only shrinks, unless `upscale`. `interpolation`: OpenCV's "linear" (default: what denseflow, which builds mmaction2's rawframe
    datasets, and mmcv's resize use; also the fastest here: the frames go from FFmpeg's decoder to OpenCV
    without a colour swap, measured 1.3x the throughput of "decoder" with 2 workers), "area", "cubic", or
    "decoder" (FFmpeg's bicubic scaler inside decord's decoder, as `ffmpeg -vf scale` does).
    """

    short_side: int | None = None
    size: tuple[int, int] | None = None
    upscale: bool = False
    interpolation: str = "linear"

    def __post_init__(self):
        if self.short_side is not None and self.size is not None:
            raise UsageError("choose either a short side or an exact size, not both")
        if self.short_side is not None and self.short_side <= 0:
            raise UsageError(f"short side must be positive, got {self.short_side}")
        if self.size is not None and min(self.size) <= 0:
            raise UsageError(f"size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.interpolation not in _INTERPOLATION:
            raise UsageError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {self.interpolation!r}")

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a resized frame whose source is width x height."""
        if self.size is not None:
            return self.size  # exactly this size, enlarging if need be, as TSN's denseflow (--new_width/height)
        if self.short_side is not None:
            short = min(width, height)
            if short <= self.short_side and not self.upscale:
                return width, height
            scale = self.short_side / short
            if width <= height:
                return self.short_side, _even(height * scale)
            return _even(width * scale), self.short_side
        return width, height

    def apply(self, frames_thwc: np.ndarray) -> np.ndarray:
        """Resize a batch of frames; returns the input itself when the size does not change."""
        t, h, w = frames_thwc.shape[:3]
        out_w, out_h = self.output_size(w, h)
        if (out_w, out_h) == (w, h):
            return frames_thwc
        out = np.empty((t, out_h, out_w) + frames_thwc.shape[3:], dtype=frames_thwc.dtype)
        flag = _INTERPOLATION[self.interpolation]
        for i in range(t):
            cv2.resize(frames_thwc[i], (out_w, out_h), dst=out[i], interpolation=flag)
        return out


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def center_crop(frames_thwc: np.ndarray, crop_w: int, crop_h: int) -> np.ndarray:
    """Centre crop (a view); a side shorter than the crop raises rather than silently padding."""
    h, w = frames_thwc.shape[1:3]
    if crop_w > w or crop_h > h:
        raise UsageError(f"crop {crop_w}x{crop_h} is larger than the frames ({w}x{h})")
    top = (h - crop_h) // 2
    left = (w - crop_w) // 2
    return frames_thwc[:, top : top + crop_h, left : left + crop_w]


def parse_size(text: str) -> tuple[int, int]:
    """'340x256' -> (340, 256)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size must look like 340x256, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UsageError(f"size must be positive, got {text!r}")
    return w, h
