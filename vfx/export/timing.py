"""Where the rows of a features store sit in time: the clip grid that ActionFormer-style consumers assume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vfx.errors import VideoError


@dataclass(frozen=True)
class ClipGrid:
    """Row t of a video's features is the clip of source frames `first_frame + t * feat_stride` ..
    `+ num_frames - 1`, at `fps` source frames per second; `duration` in seconds.

    This is the grid ActionFormer's THUMOS14 loader assumes (libs/datasets/thumos14.py): a segment at
    `s` seconds falls on row `(s * fps - 0.5 * num_frames) / feat_stride` when `first_frame` is 0.
    """

    fps: float
    duration: float
    feat_stride: int
    num_frames: int
    first_frame: int

    def to_json(self) -> dict:
        return {"fps": self.fps, "duration": self.duration, "feat_stride": self.feat_stride,
                "num_frames": self.num_frames, "first_frame": self.first_frame}


def clip_grid(store, video_id: str) -> ClipGrid:
    """The grid of one video, or VideoError when its clips are not evenly spaced in source frames (features
    made from frames resampled to another rate: no fps/stride pair describes them)."""
    attrs = store.attrs(video_id)
    clips = np.asarray(store.clip_frames(video_id), np.int64)
    if len(clips) == 0:
        raise VideoError(f"{store.path}: video {video_id!r} has no clips")
    fps = float(attrs.get("fps") or 0.0)
    if fps <= 0:
        raise VideoError(f"{store.path}: video {video_id!r} has no frame rate recorded")
    starts = clips[:, 0]
    spans = clips[:, 1] - clips[:, 0] + 1
    if len(starts) > 1:
        steps = np.unique(np.diff(starts))
        if len(steps) != 1 or steps[0] <= 0:
            raise VideoError(
                f"{store.path}: clips of {video_id!r} start at unevenly spaced source frames "
                f"({starts[:6].tolist()}...): a fixed feat_stride cannot describe them (were the frames "
                "resampled with --fps? extract them at the source rate)"
            )
        stride = int(steps[0])
    else:
        # One clip (a video shorter than two strides): the stride the run asked for, in source frames.
        c = store.params.get("clips", {})
        stride = int(c.get("stride") or c.get("clip_len") or spans[0]) * int(c.get("frame_step") or 1)
    duration = attrs.get("duration_sec")
    if duration is None:
        duration = float(attrs.get("source_num_frames", clips[-1, 1] + 1)) / fps
    return ClipGrid(fps=fps, duration=float(duration), feat_stride=stride, num_frames=int(spans.max()),
                    first_frame=int(starts[0]))


def row_times_sec(store, video_id: str) -> np.ndarray:
    """float64 [num_clips]: the centre time of each row's clip (its timestamps; source frame numbers / fps
    where the store has no timestamps)."""
    ts = np.asarray(store.clip_timestamps(video_id), np.float64)
    if ts.size and np.all(np.isfinite(ts)):
        return ts.mean(axis=1)
    fps = float(store.attrs(video_id).get("fps") or 0.0)
    if fps <= 0:
        raise VideoError(f"{store.path}: video {video_id!r} has neither clip timestamps nor a frame rate")
    clips = np.asarray(store.clip_frames(video_id), np.float64)
    return (clips[:, 0] + clips[:, 1] + 1.0) / 2.0 / fps
