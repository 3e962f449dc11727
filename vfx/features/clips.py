"""Clips of one video, streamed from where its pixels are: the video file, a frames store, a flow store.

A *source* is one modality of one video: its frame grid (source frame numbers it can deliver, ascending),
their timestamps, and `read(rows)` of resized frames. For flow, the grid is the first frame of every stored
flow pair, so flow row i is the motion from grid[i] onwards. With several sources (two-stream I3D) clips are
placed on the frames every source has, so the RGB clip and the flow clip of row k start on the same source
frame (as v-iashin/video_features i3d does: a stack of L + 1 frames gives L RGB frames and L flow fields).

`stream_clips` reads the frames the clips need in windows, in order, keeps each preprocessed frame only
until the last clip using it is emitted, and yields each clip's model inputs: memory stays bounded by one
window plus one clip span, whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfx.decode import VideoFile, decoder_version, probe
from vfx.errors import VideoError
from vfx.features.params import ClipPlanParams
from vfx.features.preprocess import ModelInput, resize_flow, resize_frames
from vfx.sampling import frames_in_range, select_clips, tsn_center_offsets
from vfx.types import VideoItem


class Source:
    """One modality of one video. Subclasses set `grid`, `timestamps` (or None) and implement `_read`."""

    modality: str = "rgb"
    grid: np.ndarray  # int64 [G] source frame numbers, ascending
    timestamps: np.ndarray | None  # float64 [G]
    attrs: dict[str, Any]

    def __init__(self, short_side: int, interpolation: str):
        self.short_side = short_side
        self.interpolation = interpolation

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Resized frames at grid rows `rows` (ascending): uint8 RGB or float32 flow `[n, H, W, C]`."""
        raw = self._read(rows)
        if len(raw) != len(rows):
            raise VideoError(f"{self.where}: asked for {len(rows)} frames, got {len(raw)}")
        if self.modality == "flow":
            return resize_flow(raw, self.short_side, self.interpolation)
        return resize_frames(raw, self.short_side, self.interpolation)

    def _read(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must implement _read")

    def close(self) -> None:
        """Release what the source holds open (nothing, unless a subclass opened a file)."""

    @property
    def where(self) -> str:
        return ""


class VideoSource(Source):
    """RGB frames decoded from the video file on the fly (restricted to the item's [start_sec, end_sec))."""

    def __init__(self, item: VideoItem, short_side: int, interpolation: str = "linear", window: int = 32):
        super().__init__(short_side, interpolation)
        self.item = item
        self.window = window
        self.video = VideoFile(item.path)
        info = self.video.info
        self.grid = frames_in_range(info.timestamps_sec, item.start_sec, item.end_sec)
        self.timestamps = info.timestamps_sec[self.grid]
        self.attrs = {
            "fps": info.fps,
            "source_width": info.width,
            "source_height": info.height,
            "source_num_frames": info.num_frames,
            "duration_sec": info.duration_sec,
            "decoder": decoder_version(),
        }

    @property
    def where(self) -> str:
        return self.item.path

    def _read(self, rows: np.ndarray) -> np.ndarray:
        chunks = list(self.video.read(self.grid[rows], window=max(len(rows), 1)))
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def close(self) -> None:
        self.video.close()


class FramesStoreSource(Source):
    """RGB frames of a frames store (`vfx extract-frames`); its grid is the stored `frame_index`."""

    def __init__(self, store, video_id: str, short_side: int, interpolation: str = "linear"):
        super().__init__(short_side, interpolation)
        if store.kind != "frames":
            raise VideoError(f"{store.path}: a {store.kind} store, not frames")
        if video_id not in store:
            raise VideoError(f"{store.path}: the frames store has no video {video_id!r}")
        self.store, self.video_id = store, video_id
        self.grid = store.frame_index(video_id).astype(np.int64)
        self.timestamps = store.timestamps(video_id).astype(np.float64)
        attrs = store.attrs(video_id)
        self.attrs = {k: attrs[k] for k in ("fps", "source_width", "source_height", "source_num_frames", "duration_sec") if k in attrs}
        _check_ascending(self.grid, self.where)

    @property
    def where(self) -> str:
        return f"{self.store.path} (video {self.video_id})"

    def _read(self, rows: np.ndarray) -> np.ndarray:
        return self.store.read_frames(self.video_id, rows)


class FlowStoreSource(Source):
    """Flow fields of a flow store (`vfx extract-flow`), dequantised to float pixels; grid = pair starts."""

    modality = "flow"

    def __init__(self, store, video_id: str, short_side: int, interpolation: str = "linear", video_path: str | None = None):
        super().__init__(short_side, interpolation)
        if store.kind != "flow":
            raise VideoError(f"{store.path}: a {store.kind} store, not flow (flow models need --from-flow FLOW_STORE)")
        if video_id not in store:
            raise VideoError(f"{store.path}: the flow store has no video {video_id!r}")
        self.store, self.video_id = store, video_id
        pairs = np.asarray(store.flow_pairs(video_id)).astype(np.int64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
            raise VideoError(f"{self.where}: flow_pairs has shape {pairs.shape}, expected [N, 2] with N >= 1")
        self.grid = pairs[:, 0]
        _check_ascending(self.grid, self.where)
        attrs = store.attrs(video_id)
        self.attrs = {k: attrs[k] for k in ("fps", "source_width", "source_height", "source_num_frames", "duration_sec") if k in attrs}
        self.timestamps = self._timestamps(store.group(video_id), attrs, video_path)

    def _timestamps(self, group, attrs: dict, video_path: str | None) -> np.ndarray | None:
        if "timestamp_sec" in group:
            stamps = group["timestamp_sec"][()].astype(np.float64)
            if "frame_index" in group:
                lookup = dict(zip(group["frame_index"][()].tolist(), stamps.tolist()))
                if all(int(f) in lookup for f in self.grid):
                    return np.array([lookup[int(f)] for f in self.grid], np.float64)
            elif len(stamps) == len(self.grid):
                return stamps
        if attrs.get("fps"):
            return self.grid / float(attrs["fps"])
        if video_path:
            try:
                info = probe(video_path)
            except VideoError:
                return None
            if self.grid.max() < info.num_frames:
                return info.timestamps_sec[self.grid]
        return None

    @property
    def where(self) -> str:
        return f"{self.store.path} (video {self.video_id})"

    def _read(self, rows: np.ndarray) -> np.ndarray:
        return self.store.read_flow(self.video_id, rows, dequantize=True)


def _check_ascending(grid: np.ndarray, where: str) -> None:
    if grid.size and np.any(np.diff(grid) <= 0):
        raise VideoError(f"{where}: stored frame numbers are not strictly increasing")


@dataclass
class VideoPlan:
    """Where the clips of one video are: rows into each source, and what the store records about them."""

    positions: np.ndarray  # int64 [num_clips, clip_len], positions into the common grid
    common: np.ndarray  # int64 [G] source frame numbers every source has
    rows: list[np.ndarray]  # per source: int64 [G] rows of `common` in that source's grid
    timestamps: np.ndarray | None  # float64 [G]
    padded: bool
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clips(self) -> int:
        return int(self.positions.shape[0])

    def clip_frames(self) -> np.ndarray:
        """int32 [num_clips, 2]: first and last source frame of each clip."""
        frames = self.common[self.positions]
        return np.stack([frames[:, 0], frames[:, -1]], axis=1).astype(np.int32)

    def clip_timestamps(self) -> np.ndarray:
        """float64 [num_clips, 2]: start of the first frame, end of the last (its time + one frame duration)."""
        if self.timestamps is None:
            return np.full((self.num_clips, 2), np.nan)
        ts = self.timestamps
        duration = float(np.median(np.diff(ts))) if ts.size > 1 else 1.0 / float(self.attrs.get("fps") or 25.0)
        return np.stack([ts[self.positions[:, 0]], ts[self.positions[:, -1]] + duration], axis=1).astype(np.float64)


def plan_clips(sources: Sequence[Source], clips: ClipPlanParams) -> VideoPlan:
    """Place the clips on the frames all sources share (`select_clips` / TSN centre segments)."""
    common = sources[0].grid
    for s in sources[1:]:
        common = np.intersect1d(common, s.grid, assume_unique=True)
    if common.size == 0:
        raise VideoError(
            f"{sources[0].where}: no frame is in every input ("
            + ", ".join(f"{s.modality} has frames {s.grid[0]}..{s.grid[-1]}" for s in sources) + ")"
        )
    rows = [np.searchsorted(s.grid, common) for s in sources]
    timestamps = next((s.timestamps[r] for s, r in zip(sources, rows) if s.timestamps is not None), None)
    if clips.mode == "segments":
        positions = tsn_center_offsets(common.size, clips.clip_len)[None, :]
        padded = common.size < clips.clip_len
    else:
        positions, padded = select_clips(
            int(common.size), clips.clip_len, stride=clips.stride, num_clips=clips.num_clips, frame_step=clips.frame_step
        )
    attrs: dict[str, Any] = {}
    for s in sources:
        for k, v in s.attrs.items():
            attrs.setdefault(k, v)
    attrs.update(
        num_clips=int(positions.shape[0]),
        clip_len=int(positions.shape[1]),
        padded=bool(padded),
        num_frames=int(common.size),
    )
    if padded:
        # Fewer frames than one clip: the clip repeats the last frame (select_clips / tsn_center_offsets).
        attrs["padded_frames"] = int(positions.shape[1] - np.unique(positions[0]).size)
    return VideoPlan(positions.astype(np.int64), common, rows, timestamps, bool(padded), attrs)


def stream_clips(
    plan: VideoPlan,
    sources: Sequence[Source],
    inputs: Sequence[tuple[int, ModelInput]],
    window: int = 32,
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yield `(clip number, [per model float32 [V, C, T, h, w]])` in clip order.

    `inputs` pairs each model's `ModelInput` with the index of its source in `sources`.
    """
    needed = np.unique(plan.positions)
    positions = plan.positions
    cache: dict[int, list[np.ndarray | None]] = {}
    next_clip = 0
    for start in range(0, needed.size, window):
        chunk = needed[start : start + window]
        per_source = [s.read(rows[chunk]) for s, rows in zip(sources, plan.rows)]
        prepared = [fn(per_source[src]) for src, fn in inputs]  # per model: [n, V, C, h, w]
        for j, pos in enumerate(chunk.tolist()):
            cache[pos] = [p[j] for p in prepared]
        del per_source, prepared
        last = int(chunk[-1])
        while next_clip < len(positions) and positions[next_clip].max() <= last:
            clip = positions[next_clip]
            yield next_clip, [np.stack([cache[int(p)][m] for p in clip], axis=2) for m in range(len(inputs))]
            next_clip += 1
            if next_clip < len(positions):
                keep_from = int(positions[next_clip].min())
                for pos in [p for p in cache if p < keep_from]:
                    del cache[pos]
    if next_clip != len(positions):  # pragma: no cover - positions are always within `needed`
        raise VideoError(f"{sources[0].where}: internal error, {len(positions) - next_clip} clips were not emitted")
