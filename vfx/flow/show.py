"""Render a stored video as an image or animation: frames beside colour-coded flow, with a legend.

For a flow store the frames come from the frames store it was computed from (`--from-frames`), else from
the source video (decoded and resized to the flow's size); when neither can be read, flow is shown alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from vfx.errors import UsageError
from vfx.flow.colorwheel import flow_to_rgb, legend

SUFFIXES = (".png", ".gif", ".mp4")
_PNG_ROWS = 4


def spread(n: int, k: int) -> np.ndarray:
    """At most k positions spread evenly over range(n), first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def render(store_path, video_id: str, output, *, max_frames: int = 32, max_flow: float | None = None) -> Path:
    """Write `output` (.png: up to 4 rows; .gif/.mp4: one panel per frame) and return its path."""
    from vfx import open_store

    output = Path(output)
    if output.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{output}: output must end in {', '.join(SUFFIXES)}")
    if max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {max_frames}")
    try:
        store = open_store(store_path)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{store_path}: cannot open as a vfx store ({exc})") from None
    with store:
        if video_id not in store:
            raise UsageError(f"{store_path}: no video {video_id!r} (vfx info {store_path} lists them)")
        try:
            store.group(video_id)
        except KeyError as exc:
            raise UsageError(str(exc.args[0] if exc.args else exc)) from None
        if store.kind == "frames":
            positions = spread(store.num_frames(video_id), max_frames)
            panels = list(store.read_frames(video_id, positions))
        elif store.kind == "flow":
            panels = _flow_panels(store, video_id, max_frames, max_flow)
        elif store.kind == "features":
            # MSNet displacement and confidence over the frames of the first clip (Motion Squeeze paper figures)
            from vfx.features.motion_viz import render_motion

            panels = [render_motion(store, video_id, clip=0)]
        else:
            raise UsageError(f"{store_path}: vfx show reads frames, flow and features stores, not {store.kind!r}")
    if not panels:
        raise UsageError(f"{store_path}: video {video_id!r} has nothing to show")
    _write(panels, output)
    return output


def _flow_panels(store, video_id: str, max_frames: int, max_flow: float | None) -> list[np.ndarray]:
    pairs = store.flow_pairs(video_id)
    positions = spread(len(pairs), max_frames)
    flow = store.read_flow(video_id, positions)
    speed = np.hypot(flow[..., 0], flow[..., 1])
    vmax = float(max_flow) if max_flow else max(float(speed.max()) if speed.size else 0.0, 1e-3)
    h, w = flow.shape[1:3]
    frames = _frames_for(store, video_id, pairs[positions, 0], (w, h))
    key = legend(max(32, min(h, w) // 3), vmax)
    panels = []
    for i, field in enumerate(flow):
        colored = flow_to_rgb(field, vmax)
        colored[: key.shape[0], -key.shape[1] :] = key
        panels.append(np.concatenate([frames[i], colored], axis=1) if frames is not None else colored)
    return panels


def _frames_for(store, video_id: str, source_frames: np.ndarray, size_wh: tuple[int, int]):
    """RGB frames at the given source frame numbers, resized to size_wh, or None when unavailable."""
    from vfx import open_store
    from vfx.errors import VideoError

    frames_store = store.params.get("from_frames")
    if frames_store and os.path.isdir(frames_store):
        with open_store(frames_store) as fs:
            if video_id in fs:
                lookup = {int(f): i for i, f in enumerate(fs.frame_index(video_id))}
                if all(int(f) in lookup for f in source_frames):
                    frames = fs.read_frames(video_id, [lookup[int(f)] for f in source_frames])
                    return np.stack([cv2.resize(f, size_wh, interpolation=cv2.INTER_LINEAR) for f in frames])
    source = store.attrs(video_id).get("source_path")
    if source and os.path.isfile(str(source)):
        from vfx.decode import read_frames

        try:
            frames = read_frames(str(source), np.asarray(source_frames))
        except VideoError:
            return None
        return np.stack([cv2.resize(f, size_wh, interpolation=cv2.INTER_LINEAR) for f in frames])
    return None


def _write(panels: list[np.ndarray], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix.lower()
    if suffix == ".png":
        rows = [panels[i] for i in spread(len(panels), _PNG_ROWS)]
        image = np.concatenate(rows, axis=0)
        if not cv2.imwrite(str(output), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise UsageError(f"{output}: could not write the image")
    elif suffix == ".gif":
        animation = cv2.Animation()
        animation.frames = [cv2.cvtColor(p, cv2.COLOR_RGB2BGR) for p in panels]
        animation.durations = [100] * len(panels)  # ms: 10 panels/s, as the MP4
        animation.loop_count = 0  # forever
        if not cv2.imwriteanimation(str(output), animation):
            raise UsageError(f"{output}: could not write the GIF")
    else:
        h, w = panels[0].shape[:2]
        writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
        if not writer.isOpened():
            raise UsageError(f"{output}: could not open an MP4 writer")
        for p in panels:
            writer.write(cv2.cvtColor(p, cv2.COLOR_RGB2BGR))
        writer.release()
