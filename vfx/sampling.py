"""Which source frames a stage reads: pure functions on frame counts and timestamps, no decoding.

Frame sampling (`Sampling` + `select_frames`), default all frames:

* `all`: every frame (of the [start_sec, end_sec) range when one is given).
* `every`: every n-th frame of the range, starting with its first frame.
* `fps`: a fixed output rate chosen by presentation time, so variable-frame-rate files come out right. For
  each target time `t_k = t0 + k / fps` (t0 = start_sec, or the first frame's timestamp) the frame *on
  screen* at t_k is picked: the latest frame whose timestamp is <= t_k (1 µs tolerance for float rounding;
  a target before the first frame takes the first frame). Targets run while t_k < end, where the end is
  end_sec or the last frame's timestamp plus one median frame duration, whichever is earlier, so a segment
  that runs past the video does not repeat its last frame. Downsampling never repeats a frame; asking for
  more fps than the video has repeats frames, as a player (or ffmpeg's fps filter) would.
* `segments`: TSN sparse sampling, K equal segments of the range and one frame from each. The index
  arithmetic follows TSN's official code (yjxiong/tsn-pytorch `dataset.py`: `_get_test_indices` for the
  centre, `_sample_indices` for random) as carried on by mmaction2 (`mmaction/datasets/transforms/
  loading.py`, `SampleFrames` with clip_len=1: `_get_test_clips` 2D branch and `_get_train_clips`); see
  `tsn_center_offsets` / `tsn_random_offsets`. Returned indices are non-decreasing: with fewer frames than
  segments some frames repeat, so every video still gives exactly K frames as TSN models expect.

Dense clips (`select_clips`) for clip-level features: clips of L frames (every `frame_step`-th frame) that
start every S source frames (`stride`), e.g. 16-frame clips with stride 4, the recipe of the THUMOS14 I3D
features ActionFormer uses (happyharrycn/actionformer_release README: "clips of 16 frames at the video frame
rate and a stride of 4 frames"); or N clips spread uniformly.

* Only full clips are kept with a stride: a trailing partial clip is dropped, as v-iashin/video_features
  `models/i3d/extract_i3d.py` does ("we don't run inference if the stack is not full"), which is what gives
  ActionFormer its feature grid of clip k = frames [4k, 4k + 16).
* N uniform clips follow mmaction2 `SampleFrames._get_test_clips` (3D branch, aligned with PySlowFast):
  first clip at the start, last clip ending on the last frame, the rest evenly between (rounded); a single
  clip is centred.
* A range shorter than one clip gives one clip (or N identical ones) padded by repeating the last frame,
  and `padded=True`, so short videos still get a feature instead of none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from vfx.errors import UsageError, VideoError

MODES = ("all", "every", "fps", "segments")
SEGMENT_PICKS = ("center", "random")

# Timestamps come from the decoder as pts * time_base in float seconds; 1 µs absorbs the rounding so that a
# frame at exactly a target time (or at start_sec / end_sec) is treated as being there.
TIME_TOLERANCE_SEC = 1e-6


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video (or of an annotated segment) to keep. Default: all frames.

    `every` is used when mode == "every", `fps` when "fps", `segments` and `segment_pick` when "segments";
    `seed` makes random segment picks reproducible (mixed with a per-video key in `select_frames`).
    """

    mode: str = "all"
    every: int = 1
    fps: float | None = None
    segments: int | None = None
    segment_pick: str = "center"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"sampling mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if isinstance(self.every, bool) or not isinstance(self.every, (int, np.integer)) or self.every < 1:
            raise UsageError(f"--every must be a whole number >= 1, got {self.every!r}")
        if self.mode == "fps" and (self.fps is None or not np.isfinite(self.fps) or self.fps <= 0):
            raise UsageError(f"--fps must be a number > 0, got {self.fps!r}")
        if self.mode == "segments":
            if isinstance(self.segments, bool) or not isinstance(self.segments, (int, np.integer)) or self.segments < 1:
                raise UsageError(f"--segments must be a whole number >= 1, got {self.segments!r}")
        if self.segment_pick not in SEGMENT_PICKS:
            raise UsageError(f"segment pick must be one of {', '.join(SEGMENT_PICKS)}, got {self.segment_pick!r}")
        # Plain Python numbers, so that the parameters recorded in a store compare equal whatever built them
        # (a TOML recipe's `fps = 5` and the CLI's `--fps 5.0`).
        object.__setattr__(self, "every", int(self.every))
        object.__setattr__(self, "fps", None if self.fps is None else float(self.fps))
        object.__setattr__(self, "segments", None if self.segments is None else int(self.segments))
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def from_options(
        cls,
        *,
        fps: float | None = None,
        every: int | None = None,
        segments: int | None = None,
        segment_pick: str = "center",
        seed: int = 0,
    ) -> Sampling:
        """Build from the CLI flags `--fps F | --every N | --segments K` (at most one; none: all frames)."""
        given = [name for name, value in (("--fps", fps), ("--every", every), ("--segments", segments)) if value is not None]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} cannot be combined: choose one way to sample frames")
        if fps is not None:
            return cls(mode="fps", fps=float(fps), segment_pick=segment_pick, seed=seed)
        if every is not None:
            return cls(mode="every", every=every, segment_pick=segment_pick, seed=seed)
        if segments is not None:
            return cls(mode="segments", segments=segments, segment_pick=segment_pick, seed=seed)
        return cls(segment_pick=segment_pick, seed=seed)


def _as_timestamps(timestamps_sec) -> np.ndarray:
    ts = np.asarray(timestamps_sec, dtype=np.float64)
    if ts.ndim != 1:
        raise ValueError(f"timestamps_sec must be 1-D, got shape {ts.shape}")
    if ts.size == 0:
        raise VideoError("the video has no frames")
    if not np.all(np.isfinite(ts)):
        raise VideoError("the decoder gave non-finite frame timestamps")
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        first = int(np.argmax(np.diff(ts) < 0))
        raise VideoError(
            f"frame timestamps go backwards (frame {first + 1} at {ts[first + 1]:.3f} s after {ts[first]:.3f} s)"
        )
    return ts


def frames_in_range(
    timestamps_sec, start_sec: float | None = None, end_sec: float | None = None
) -> np.ndarray:
    """Indices (int64, ascending) of the frames whose timestamp lies in [start_sec, end_sec).

    Raises `VideoError` when no frame does (e.g. an annotated segment beyond the end of the video).
    """
    ts = _as_timestamps(timestamps_sec)
    if start_sec is not None and end_sec is not None and end_sec <= start_sec:
        raise ValueError(f"end_sec ({end_sec}) must be greater than start_sec ({start_sec})")
    keep = np.ones(ts.shape, dtype=bool)
    if start_sec is not None:
        keep &= ts >= start_sec - TIME_TOLERANCE_SEC
    if end_sec is not None:
        keep &= ts < end_sec - TIME_TOLERANCE_SEC
    indices = np.flatnonzero(keep).astype(np.int64)
    if indices.size == 0:
        lo = "start" if start_sec is None else f"{start_sec:.3f}"
        hi = "end" if end_sec is None else f"{end_sec:.3f}"
        raise VideoError(f"no frames in [{lo}, {hi}) s: the video's frames span {ts[0]:.3f}-{ts[-1]:.3f} s")
    return indices


def tsn_center_offsets(num_frames: int, num_segments: int) -> np.ndarray:
    """Centre frame of each of K equal segments of `num_frames` (0-based, int64, non-decreasing).

    tsn-pytorch `_get_test_indices`: `int(tick / 2 + tick * k)` with `tick = num_frames / K` (its frames are
    1-based files, hence its `+ 1`; ours are 0-based). mmaction2's 2D test branch computes the same. With
    fewer frames than segments this repeats frames (tsn-pytorch's `_get_val_indices` would use frame 0 for
    all; we keep the spread of `_get_test_indices`).
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames}, {num_segments}")
    tick = num_frames / float(num_segments)
    offsets = tick / 2.0 + tick * np.arange(num_segments)
    return offsets.astype(np.int64)


def tsn_random_offsets(num_frames: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame from each of K equal segments (0-based, int64, non-decreasing).

    tsn-pytorch `_sample_indices` / mmaction2 `_get_train_clips` with clip_len=1: segments of
    `num_frames // K` frames, one uniform draw in each (frames past K * (num_frames // K) are never drawn,
    as in the official code). With fewer frames than segments (where tsn-pytorch returns frame 0 K times)
    we follow mmaction2: `round(k * num_frames / K)`, clamped to the last frame instead of mmaction2's
    modulo wrap-around so that indices stay in order.
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames}, {num_segments}")
    average = num_frames // num_segments
    if average > 0:
        offsets = np.arange(num_segments) * average + rng.integers(0, average, size=num_segments)
    else:
        ratio = num_frames / float(num_segments)
        offsets = np.around(np.arange(num_segments) * ratio)
    return np.minimum(offsets.astype(np.int64), num_frames - 1)


def _rng(seed: int, key: str | None) -> np.random.Generator:
    """PCG64 seeded from (seed, sha256(key)): reproducible across runs and machines, independent per video."""
    words = [int(seed) & 0xFFFFFFFF]
    if key is not None:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        words.extend(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.default_rng(np.random.SeedSequence(words))


def _fps_picks(ts: np.ndarray, fps: float, start_sec: float | None, end_sec: float | None) -> np.ndarray:
    """Positions into `ts` (the in-range frames) of the frame on screen at each target time."""
    if ts.size > 1:
        frame_duration = float(np.median(np.diff(ts)))
    else:
        frame_duration = 0.0
    t0 = float(start_sec) if start_sec is not None else float(ts[0])
    t_end = float(ts[-1]) + frame_duration
    if end_sec is not None:
        t_end = min(t_end, float(end_sec))
    count = max(1, int(np.ceil((t_end - t0) * fps - TIME_TOLERANCE_SEC)))
    return frames_at_times(ts, t0 + np.arange(count) / fps)


def frames_at_times(timestamps_sec: np.ndarray, times_sec) -> np.ndarray:
    """Index of the frame on screen at each time: the latest frame whose timestamp is <= t (a time before the
    first frame takes the first frame). int64, same shape as `times_sec`."""
    ts = np.asarray(timestamps_sec, dtype=np.float64)
    positions = np.searchsorted(ts, np.asarray(times_sec, dtype=np.float64) + TIME_TOLERANCE_SEC, side="right") - 1
    return np.clip(positions, 0, ts.size - 1).astype(np.int64)


def select_frames(
    s: Sampling,
    timestamps_sec: np.ndarray,
    *,
    start_sec: float | None = None,
    end_sec: float | None = None,
    key: str | None = None,
) -> np.ndarray:
    """Source frame indices (int64, non-decreasing) to keep, per `s`, within [start_sec, end_sec).

    `timestamps_sec[i]` is frame i's presentation time from the decoder. `key` (the video id) is mixed into
    the seed of random segment picks so that videos get independent, reproducible draws. Raises
    `VideoError` when the range holds no frame or the timestamps are unusable.
    """
    ts = _as_timestamps(timestamps_sec)
    candidates = frames_in_range(ts, start_sec, end_sec)
    if s.mode == "all":
        return candidates
    if s.mode == "every":
        return candidates[:: int(s.every)]
    if s.mode == "fps":
        return candidates[_fps_picks(ts[candidates], float(s.fps), start_sec, end_sec)]
    if s.segment_pick == "center":
        positions = tsn_center_offsets(candidates.size, int(s.segments))
    else:
        positions = tsn_random_offsets(candidates.size, int(s.segments), _rng(s.seed, key))
    return candidates[positions]


# ------------------------------------------------------------------------------------------ dense clips


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def select_clips(
    num_frames_or_timestamps: int | np.ndarray,
    clip_len: int,
    *,
    stride: int | None = None,
    num_clips: int | None = None,
    frame_step: int = 1,
    start_sec: float | None = None,
    end_sec: float | None = None,
) -> tuple[np.ndarray, bool]:
    """Dense clips: (indices int64 [num_clips, clip_len], padded).

    Give a frame count, or the frames' timestamps (needed to restrict to [start_sec, end_sec)). Clips take
    every `frame_step`-th frame, so one spans `(clip_len - 1) * frame_step + 1` source frames, and start
    every `stride` source frames (default: `clip_len * frame_step`, back to back), keeping full clips only;
    or, with `num_clips`, N clips spread uniformly. A range shorter than one clip gives one clip (N with
    `num_clips`) padded with its last frame and `padded=True`. See the module docstring for the sources.
    """
    clip_len = _positive_int(clip_len, "clip_len")
    frame_step = _positive_int(frame_step, "frame_step")
    if stride is not None and num_clips is not None:
        raise UsageError("give either a clip stride or a number of clips, not both")
    if stride is not None:
        stride = _positive_int(stride, "stride")
    if num_clips is not None:
        num_clips = _positive_int(num_clips, "num_clips")

    if isinstance(num_frames_or_timestamps, (int, np.integer)) and not isinstance(num_frames_or_timestamps, bool):
        if start_sec is not None or end_sec is not None:
            raise ValueError("start_sec/end_sec need the frames' timestamps, not a frame count")
        if num_frames_or_timestamps < 1:
            raise VideoError("the video has no frames")
        candidates = np.arange(int(num_frames_or_timestamps), dtype=np.int64)
    else:
        candidates = frames_in_range(num_frames_or_timestamps, start_sec, end_sec)

    available = candidates.size
    span = (clip_len - 1) * frame_step + 1
    steps = np.arange(clip_len, dtype=np.int64) * frame_step
    if available < span:
        positions = np.minimum(steps, available - 1)
        rows = num_clips if num_clips is not None else 1
        return np.tile(candidates[positions], (rows, 1)), True

    max_offset = available - span
    if num_clips is not None:
        if num_clips == 1:
            offsets = np.array([max_offset // 2], dtype=np.int64)
        else:
            offsets = np.round(np.arange(num_clips) * (max_offset / float(num_clips - 1))).astype(np.int64)
    else:
        step = stride if stride is not None else clip_len * frame_step
        offsets = np.arange(0, max_offset + 1, step, dtype=np.int64)
    return candidates[offsets[:, None] + steps[None, :]], False


def clip_frames(indices_nl: np.ndarray) -> np.ndarray:
    """First and last source frame of each clip, int32 [num_clips, 2] (the store's `clip_frames`)."""
    indices_nl = np.asarray(indices_nl)
    return np.stack([indices_nl[:, 0], indices_nl[:, -1]], axis=1).astype(np.int32)


@dataclass(frozen=True)
class ClipSampling:
    """Parameters of `select_clips`, for recipes: e.g. ClipSampling(clip_len=16, stride=4) for THUMOS14 I3D."""

    clip_len: int = 16
    stride: int | None = None
    num_clips: int | None = None
    frame_step: int = 1

    def __post_init__(self) -> None:
        _positive_int(self.clip_len, "clip_len")
        _positive_int(self.frame_step, "frame_step")
        if self.stride is not None and self.num_clips is not None:
            raise UsageError("give either a clip stride or a number of clips, not both")
        if self.stride is not None:
            _positive_int(self.stride, "stride")
        if self.num_clips is not None:
            _positive_int(self.num_clips, "num_clips")

    def select(
        self, num_frames_or_timestamps, *, start_sec: float | None = None, end_sec: float | None = None
    ) -> tuple[np.ndarray, bool]:
        return select_clips(
            num_frames_or_timestamps,
            self.clip_len,
            stride=self.stride,
            num_clips=self.num_clips,
            frame_step=self.frame_step,
            start_sec=start_sec,
            end_sec=end_sec,
        )
