"""Per-model input preparation: resize, crop views, and map pixel (or flow) values to the model's range.

Order, as in the test pipelines of TSN / TSM / I3D feature extractors: resize the short side (256), map
values, crop `crop_size` squares. Values are mapped once on the area all views cover (ten crops overlap and
together cover the whole frame; a centre crop only itself), then the views are cut from it.

Value mapping comes from the model's `InputSpec` (vfx/models/spec.py):
- RGB: `[0, 255] -> value_range` linearly, then `(x - mean) / std`. I3D RGB: [-1, 1]
  (pytorch-i3d charades_dataset.py `(x / 255) * 2 - 1`); TSM / MSNet: [0, 1] then ImageNet mean/std.
- flow: clipped to +-`flow_clip` pixels (20, the TSN/denseflow bound that I3D's flow input assumes), then
  `[-clip, clip] -> value_range` linearly (I3D: `flow / 20`), then mean/std.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfx.errors import UsageError, VideoError
from vfx.image import Resize

#: (top, left, mirrored) of each view, in the order views are stored; see `crop_boxes`.
Box = tuple[int, int, bool]


def crop_boxes(height: int, width: int, size: int, mode: str) -> list[Box]:
    """Top-left corners of the crop views of a `height` x `width` frame, the centre crop always first.

    three: centre, then the two ends of the long side (mmaction2 `ThreeCrop`: crops along the longer side,
    centred on the shorter one). ten: centre, top-left, top-right, bottom-left, bottom-right, then the same
    five mirrored (torchvision `TenCrop` holds the same views, centre last; we put it first so that view 0 is
    the centre crop everywhere, and per-view outputs such as spatial maps use it).
    """
    if size > height or size > width:
        raise VideoError(f"crop {size}x{size} is larger than the resized frames ({width}x{height})")
    top_c, left_c = (height - size) // 2, (width - size) // 2
    if mode == "center":
        return [(top_c, left_c, False)]
    if mode == "three":
        if width >= height:
            return [(top_c, left_c, False), (top_c, 0, False), (top_c, width - size, False)]
        return [(top_c, left_c, False), (0, left_c, False), (height - size, left_c, False)]
    if mode == "ten":
        five = [(top_c, left_c), (0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
        return [(t, l, False) for t, l in five] + [(t, l, True) for t, l in five]
    raise UsageError(f"unknown crop mode {mode!r}")


def resize_frames(frames_thwc: np.ndarray, short_side: int, interpolation: str = "linear") -> np.ndarray:
    """RGB uint8: short side to `short_side` (up or down; models need full crops even from small videos)."""
    return Resize(short_side=short_side, upscale=True, interpolation=interpolation).apply(frames_thwc)


def resize_flow(flow_thw2: np.ndarray, short_side: int, interpolation: str = "linear") -> np.ndarray:
    """Flow float32 [T, H, W, 2] in pixels: resized like frames, and the vectors scaled with the image,
    so that a displacement still points at the same content."""
    t, h, w = flow_thw2.shape[:3]
    out = Resize(short_side=short_side, upscale=True, interpolation=interpolation).apply(
        np.ascontiguousarray(flow_thw2, dtype=np.float32)
    )
    out_h, out_w = out.shape[1:3]
    if (out_h, out_w) != (h, w):
        out = out * np.array([out_w / w, out_h / h], np.float32)
    return out


@dataclass(frozen=True)
class ValueMap:
    """`x -> x * scale + offset` per channel (float32), after clipping flow to +-clip."""

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    clip: float | None = None

    @staticmethod
    def for_model(spec, flow_clip: float = 20.0) -> ValueMap:
        lo, hi = (float(v) for v in spec.value_range)
        mean = np.asarray(spec.mean, np.float64)
        std = np.asarray(spec.std, np.float64)
        if spec.channels == 2:
            # [-clip, clip] -> [lo, hi]: v = (f + clip) / (2 clip) * (hi - lo) + lo
            unit = (hi - lo) / (2.0 * flow_clip)
            scale = unit / std
            offset = (flow_clip * unit + lo - mean) / std
            return ValueMap(tuple(scale.tolist()), tuple(offset.tolist()), float(flow_clip))
        scale = (hi - lo) / 255.0 / std
        offset = (lo - mean) / std
        return ValueMap(tuple(scale.tolist()), tuple(offset.tolist()), None)

    def apply(self, x_thwc: np.ndarray) -> np.ndarray:
        x = x_thwc.astype(np.float32)
        if self.clip is not None:
            np.clip(x, -self.clip, self.clip, out=x)
        x *= np.asarray(self.scale, np.float32)
        x += np.asarray(self.offset, np.float32)
        return x


@dataclass(frozen=True)
class ModelInput:
    """Turns resized frames (uint8 RGB or float flow `[T, H, W, C]`) into one model's views
    `float32 [T, V, C, size, size]`."""

    value_map: ValueMap
    crop: str
    size: int
    flow: bool

    def __call__(self, frames_thwc: np.ndarray) -> np.ndarray:
        t, h, w, c = frames_thwc.shape
        boxes = crop_boxes(h, w, self.size, self.crop)
        # Map values only inside the area the views cover (a centre crop is 224x224 of a 256x340 frame).
        y0, x0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        y1, x1 = max(b[0] for b in boxes) + self.size, max(b[1] for b in boxes) + self.size
        x = self.value_map.apply(frames_thwc[:, y0:y1, x0:x1])
        out = np.empty((t, len(boxes), c, self.size, self.size), np.float32)
        for v, (top, left, mirrored) in enumerate(boxes):
            top, left = top - y0, left - x0
            view = x[:, top : top + self.size, left : left + self.size]
            if mirrored:
                view = view[:, :, ::-1]
            out[:, v] = view.transpose(0, 3, 1, 2)
            if mirrored and self.flow:
                # A mirrored flow field moves the other way along x; I3D/TSN flip flow the same way.
                out[:, v, 0] = self._mirror_x(out[:, v, 0])
        return out

    def _mirror_x(self, x_channel: np.ndarray) -> np.ndarray:
        # x' = -(x) in flow units, i.e. reflect the mapped value about the value of zero flow.
        return np.float32(2.0 * self.value_map.offset[0]) - x_channel
