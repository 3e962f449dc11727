"""Draw MSNet's displacement and confidence maps over the frames they were computed from.

The Motion Squeeze paper (Kwon et al., ECCV 2020, Fig. 4-5) shows, per frame pair, the frame, the
displacement map colour-coded as optical flow, and the confidence map. We do the same, one column per frame
pair: the frame t, the displacement as flow colours (the Middlebury coding of vfx/flow/colorwheel.py: hue =
direction, saturation = magnitude) blended over it, the confidence as a heat map blended over it, and the displacement as arrows.

Units: MSNet's displacement is in [-1, 1] where 1 is the correlation radius (7 cells of the layer2 grid,
vfx/models/msnet.py); confidence is the top-1 correlation of L2-normalised features, in [0, 1].
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from vfx.errors import UsageError
from vfx.flow.colorwheel import flow_to_rgb
from vfx.store.reader import open_store
from vfx.show.panels import caption, colour_bar, enlarge, frame_text, paste, typical_speed, wheel_legend

#: Arrows across the width of a panel at most: one per block of map cells, so they can be read.
MAX_ARROWS = 8


def flow_to_colour(flow_hw2: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """uint8 RGB [h, w, 3]: direction as hue, magnitude (relative to `max_magnitude`) as saturation; the
    project's one Middlebury colour coding (vfx/flow/colorwheel.py), shared with `vfx show` of flow stores."""
    return flow_to_rgb(np.asarray(flow_hw2, np.float32), max_magnitude)


def confidence_to_heat(conf_hw: np.ndarray) -> np.ndarray:
    """uint8 RGB [h, w, 3]: confidence in [0, 1] on OpenCV's JET colour map (blue low, red high)."""
    grey = np.clip(np.asarray(conf_hw, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def blend(frame_hwc: np.ndarray, overlay_hwc: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The overlay (any size; upsampled bilinearly) over the frame with weight `alpha`."""
    h, w = frame_hwc.shape[:2]
    up = cv2.resize(overlay_hwc, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.addWeighted(up, alpha, frame_hwc, 1 - alpha, 0)


def draw_arrows(frame_hwc: np.ndarray, disp_2hw: np.ndarray, radius_px: float, colour=(255, 255, 0),
                max_arrows: int = MAX_ARROWS) -> np.ndarray:
    """Arrows on a sparse grid (at most `max_arrows` across): each from the centre of a block of map cells,
    `mean disp * radius_px` long (radius in frame pixels), drawn in `colour` over a dark outline so they show
    on any background."""
    out = np.ascontiguousarray(frame_hwc.copy())
    h, w = frame_hwc.shape[:2]
    _, gh, gw = disp_2hw.shape
    k = max(1, int(np.ceil(max(gw, gh) / max_arrows)))
    thick = max(1, w // 160)
    for y0 in range(0, gh, k):
        for x0 in range(0, gw, k):
            block = disp_2hw[:, y0 : y0 + k, x0 : x0 + k].reshape(2, -1).mean(axis=1)
            cx, cy = (x0 + min(k, gw - x0) / 2) * w / gw, (y0 + min(k, gh - y0) / 2) * h / gh
            dx, dy = float(block[0]) * radius_px, float(block[1]) * radius_px
            if abs(dx) + abs(dy) < 0.5:
                continue
            a, b = (int(round(cx)), int(round(cy))), (int(round(cx + dx)), int(round(cy + dy)))
            cv2.arrowedLine(out, a, b, (0, 0, 0), thick + 2, cv2.LINE_AA, tipLength=0.3)
            cv2.arrowedLine(out, a, b, colour, thick, cv2.LINE_AA, tipLength=0.3)
    return out


def motion_figure(
    frames_thwc: np.ndarray, displacement_t2hw: np.ndarray, confidence_t1hw: np.ndarray, radius_px: float | None = None
) -> np.ndarray:
    """uint8 RGB image: one column per frame pair t -> t+1, rows: frame, displacement, confidence, arrows.

    `frames_thwc` are the T frames the model saw (after crop); the maps are `[T-1, 2, h, w]` and
    `[T-1, 1, h, w]`. `radius_px`: frame pixels that a displacement of 1 means (default: 7 cells of the
    map grid, MSNet's correlation radius).
    """
    frames = np.asarray(frames_thwc)
    disp = np.asarray(displacement_t2hw, np.float32)
    conf = np.asarray(confidence_t1hw, np.float32)
    if disp.ndim != 4 or disp.shape[1] != 2 or conf.shape != (disp.shape[0], 1) + disp.shape[2:]:
        raise UsageError(f"maps must be displacement [T-1, 2, h, w] and confidence [T-1, 1, h, w], got {disp.shape} and {conf.shape}")
    if frames.ndim != 4 or len(frames) != disp.shape[0] + 1:
        raise UsageError(f"need T = {disp.shape[0] + 1} frames [T, H, W, 3] for {disp.shape[0]} frame pairs, got {frames.shape}")
    h, w = frames.shape[1:3]
    if radius_px is None:
        radius_px = 7.0 * w / disp.shape[3]
    columns = []
    for t in range(disp.shape[0]):
        frame = np.ascontiguousarray(frames[t])
        rows = [
            frame,
            blend(frame, flow_to_colour(disp[t].transpose(1, 2, 0), max_magnitude=1.0)),
            blend(frame, confidence_to_heat(conf[t, 0])),
            draw_arrows(frame, disp[t], radius_px),
        ]
        columns.append(np.concatenate(rows, axis=0))
    gap = np.full((4 * h, 2, 3), 255, np.uint8)
    parts = []
    for c in columns:
        parts += [c, gap]
    return np.concatenate(parts[:-1], axis=1)


def clip_frames_for_maps(store, video_id: str, clip: int = 0) -> np.ndarray:
    """The frames of one clip as the model saw them (resize + centre crop from the store's parameters)."""
    from vfx.decode import read_frames
    from vfx.features.preprocess import crop_boxes, resize_frames

    group = store.group(video_id)
    if "clip_indices" not in group:
        raise UsageError(f"{store.path}: video {video_id!r} has no motion maps (run vfx features with --motion-maps)")
    indices = group["clip_indices"][clip]
    params: dict[str, Any] = store.params
    spatial = params["spatial"]
    model = next(m for m in params["models"] if m["modality"] == "rgb")
    source = params["inputs"]["frames"]
    if source:

        frames_store = open_store(source)
        positions = np.searchsorted(frames_store.frame_index(video_id), indices)
        frames = frames_store.read_frames(video_id, positions)
    else:
        frames = read_frames(store.attrs(video_id)["source_path"], indices)
    frames = resize_frames(frames, int(spatial["short_side"]), spatial.get("interpolation", "linear"))
    size = int(model["crop_size"])
    top, left, _ = crop_boxes(frames.shape[1], frames.shape[2], size, "center")[0]
    return frames[:, top : top + size, left : left + size]


def render_motion(store, video_id: str, clip: int = 0, scale: int = 1) -> np.ndarray:
    """Figure of the stored MSNet maps of one clip of one video (for `vfx show`): uint8 RGB image."""
    group = store.group(video_id)
    if "displacement" not in group:
        raise UsageError(f"{store.path}: video {video_id!r} has no displacement maps (run vfx features with --motion-maps)")
    n = group["displacement"].shape[0]
    if not 0 <= clip < n:
        raise UsageError(f"{store.path}: video {video_id!r} has {n} clips, no clip {clip}")
    frames = clip_frames_for_maps(store, video_id, clip)
    if scale > 1:
        frames = np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for f in frames])
    return motion_figure(frames, group["displacement"][clip], group["confidence"][clip])


def motion_columns(store, video_id: str, clip: int = 0, max_pairs: int | None = None) -> list[np.ndarray]:
    """`vfx show` of a features store: one labelled column per frame pair of a clip (frame, displacement
    with its colour wheel, confidence with its colour bar, arrows), each panel captioned with the video, the
    source frame number and time, and what it shows."""
    group = store.group(video_id)
    if "displacement" not in group:
        raise UsageError(f"{store.path}: video {video_id!r} has no displacement maps (run vfx features with --motion-maps)")
    frames = clip_frames_for_maps(store, video_id, clip)
    disp, conf = group["displacement"][clip], group["confidence"][clip]
    sources = group["clip_indices"][clip]
    fps = float(store.attrs(video_id).get("fps") or 0.0)
    pairs = np.arange(disp.shape[0])
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = np.unique(np.round(np.linspace(0, len(pairs) - 1, max_pairs)).astype(int))
    # The wheel's rim is the typical displacement of the shown pairs, not the search radius: MSNet's maps are
    # mostly a small fraction of the radius, and coloured against it they come out nearly white.
    rim = typical_speed(disp[pairs].transpose(0, 2, 3, 1))
    columns = []
    for t in pairs:
        frame = enlarge(np.ascontiguousarray(frames[t]))
        h, w = frame.shape[:2]
        radius_px = 7.0 * w / disp.shape[3]
        f0, f1 = int(sources[t]), int(sources[t + 1])
        head = frame_text(video_id, f0, f0 / fps if fps else None)
        key = max(40, min(h, w) // 4)
        rows = [
            caption(frame, [head, "RGB: the frame the model saw (crop)"]),
            caption(paste(blend(frame, flow_to_colour(disp[t].transpose(1, 2, 0), max_magnitude=rim)),
                          wheel_legend(key, 7.0 * rim, "cells")),
                    [head, f"MSNet displacement {f0}->{f1}, rim {7.0 * rim:.2g} cells (95th pct)"]),
            caption(paste(blend(frame, confidence_to_heat(conf[t, 0])), colour_bar(key)),
                    [head, "MSNet confidence, colour bar 0..1"]),
            caption(draw_arrows(frame, disp[t], radius_px), [head, f"displacement arrows, 1 = {radius_px:.0f} px"]),
        ]
        columns.append(np.concatenate(rows, axis=0))
    return columns


def save_motion_figure(store_path, video_id: str, out_path, clip: int = 0, scale: int = 1) -> np.ndarray:
    """Render and write a PNG/JPEG (by extension); returns the RGB image."""
    with open_store(store_path) as store:
        image = render_motion(store, video_id, clip, scale)
    if not cv2.imwrite(str(out_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"{out_path}: cannot write the image (unknown extension or unwritable folder)")
    return image
