"""Render a stored video as an image or animation, every panel labelled (`vfx show`).

Frames stores: one captioned frame per row. Flow stores: the frame beside its colour-coded flow, the wheel
legend in the flow panel's corner; the frames come from the frames store the flow was computed from
(`from_frames`), else from the source video (decoded and resized to the flow's size); when neither can be
read, flow is shown alone. Features stores with MSNet maps: one column per frame pair of the first clip
(frame, displacement, confidence, arrows). A PNG holds every shown frame (rows; columns for MSNet); a GIF or
MP4 shows one per animation frame, 10 per second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vfx.errors import UsageError, VideoError
from vfx.flow.colorwheel import flow_to_rgb
from vfx.show.panels import caption, enlarge, frame_text, paste, typical_speed, wheel_legend
from vfx.store.reader import open_store

SUFFIXES = (".png", ".gif", ".mp4")
#: Frames shown when --max-frames is not given: a PNG stays a readable page, an animation a few seconds.
DEFAULT_MAX_FRAMES = {".png": 4, ".gif": 32, ".mp4": 32}
ANIMATION_FPS = 10


@dataclass(frozen=True)
class Rendered:
    path: Path
    video_id: str
    frames: int  # panels (rows, columns or animation frames) written
    note: str | None = None  # what the user should know (the video that was picked)


def spread(n: int, k: int) -> np.ndarray:
    """At most k positions spread evenly over range(n), first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def render(store_path, video_id: str | None, output, *, max_frames: int | None = None,
           max_flow: float | None = None) -> Rendered:
    """Write `output` (.png, .gif or .mp4) for one video (None: the store's first done video)."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"{output}: output must end in {', '.join(SUFFIXES)}")
    if max_frames is None:
        max_frames = DEFAULT_MAX_FRAMES[suffix]
    if max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {max_frames}")
    try:
        store = open_store(store_path)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{store_path}: cannot open as a vfx store ({exc})") from None
    note = None
    with store:
        done = store.video_ids()
        if video_id is None:
            if not done:
                raise UsageError(f"{store_path}: the store has no finished video to show")
            video_id = done[0]
            note = f"no video id given: showing {video_id} (first of {len(done)}; vfx info {store_path} --videos lists them)"
        if video_id not in store:
            raise UsageError(f"{store_path}: no video {video_id!r} (vfx info {store_path} --videos lists them)")
        if store.kind == "frames":
            panels = _frame_panels(store, video_id, max_frames)
        elif store.kind == "flow":
            panels = _flow_panels(store, video_id, max_frames, max_flow)
        elif store.kind == "features":
            from vfx.show.motion import motion_columns

            panels = motion_columns(store, video_id, clip=0, max_pairs=max_frames)
        else:
            raise UsageError(f"{store_path}: vfx show reads frames, flow and features stores, not {store.kind!r}")
    if not panels:
        raise UsageError(f"{store_path}: video {video_id!r} has nothing to show")
    _write(panels, output, side_by_side=store.kind == "features")
    return Rendered(output, video_id, len(panels), note)


def _frame_panels(store, video_id: str, max_frames: int) -> list[np.ndarray]:
    positions = spread(store.num_frames(video_id), max_frames)
    frames = store.read_frames(video_id, positions)
    sources, times = store.frame_index(video_id)[positions], store.timestamps(video_id)[positions]
    h, w = frames.shape[1:3]
    return [caption(enlarge(f), [frame_text(video_id, int(s), float(t)), f"RGB frame {int(p) + 1} of "
                                 f"{store.num_frames(video_id)} stored, {w}x{h}"])
            for f, s, t, p in zip(frames, sources, times, positions)]


def _flow_panels(store, video_id: str, max_frames: int, max_flow: float | None) -> list[np.ndarray]:
    pairs = store.flow_pairs(video_id)
    positions = spread(len(pairs), max_frames)
    flow = store.read_flow(video_id, positions)
    rim = float(max_flow) if max_flow else typical_speed(flow)
    how = "--max-flow" if max_flow else "95th percentile"
    h, w = flow.shape[1:3]
    frames, fps = _frames_for(store, video_id, pairs[positions, 0], (w, h))
    panels = []
    for i, field in enumerate(flow):
        a, b = (int(v) for v in pairs[positions[i]])
        head = frame_text(video_id, a, a / fps if fps else None)
        coloured = enlarge(flow_to_rgb(field, rim))
        key = wheel_legend(max(48, min(coloured.shape[:2]) // 3), rim, "px")
        flow_panel = caption(paste(coloured, key), [head, f"flow {a}->{b}, rim = {rim:.2g} px ({how})"])
        if frames is None:
            panels.append(flow_panel)
            continue
        frame_panel = caption(enlarge(frames[i]), [head, f"RGB frame {a} (flow is from {a} to {b})"])
        panels.append(np.concatenate([frame_panel, flow_panel], axis=1))
    return panels


def _frames_for(store, video_id: str, source_frames: np.ndarray, size_wh: tuple[int, int]):
    """(RGB frames at the given source frame numbers resized to size_wh, or None; the frame rate or 0)."""
    fps = float(store.attrs(video_id).get("fps") or 0.0)
    frames_store = store.params.get("from_frames")
    if frames_store and os.path.isdir(frames_store):
        with open_store(frames_store) as fs:
            if video_id in fs:
                fps = fps or float(fs.attrs(video_id).get("fps") or 0.0)
                lookup = {int(f): i for i, f in enumerate(fs.frame_index(video_id))}
                if all(int(f) in lookup for f in source_frames):
                    frames = fs.read_frames(video_id, [lookup[int(f)] for f in source_frames])
                    return np.stack([cv2.resize(f, size_wh, interpolation=cv2.INTER_LINEAR) for f in frames]), fps
    source = store.attrs(video_id).get("source_path")
    if source and os.path.isfile(str(source)):
        from vfx.decode import VideoFile, read_frames

        try:
            with VideoFile(str(source)) as video:
                fps = fps or float(video.info.fps)
            frames = read_frames(str(source), np.asarray(source_frames))
        except VideoError:
            return None, fps
        return np.stack([cv2.resize(f, size_wh, interpolation=cv2.INTER_LINEAR) for f in frames]), fps
    return None, fps


def _write(panels: list[np.ndarray], output: Path, side_by_side: bool) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    suffix = output.suffix.lower()
    if suffix == ".png":
        if side_by_side:
            gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
            image = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        else:
            image = np.concatenate(panels, axis=0)
        if not cv2.imwrite(str(output), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise UsageError(f"{output}: could not write the image")
    elif suffix == ".gif":
        animation = cv2.Animation()
        animation.frames = [cv2.cvtColor(p, cv2.COLOR_RGB2BGR) for p in panels]
        animation.durations = [1000 // ANIMATION_FPS] * len(panels)
        animation.loop_count = 0  # forever
        if not cv2.imwriteanimation(str(output), animation):
            raise UsageError(f"{output}: could not write the GIF")
    else:
        h, w = panels[0].shape[:2]
        writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), float(ANIMATION_FPS), (w, h))
        if not writer.isOpened():
            raise UsageError(f"{output}: could not open an MP4 writer")
        for p in panels:
            writer.write(cv2.cvtColor(p, cv2.COLOR_RGB2BGR))
        writer.release()
