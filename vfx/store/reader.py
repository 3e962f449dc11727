"""Read-only access to a store: `vfx.open_store(path_or_url)` returns a `Store`.

Opening reads the manifest and the catalog (plus the commit log of a run not yet folded): one or two small
files, whatever the number of shards. `len`, `video_ids()` and `in` are answered from those arrays. Shard
files are opened lazily and kept open; on object storage each shard is first copied whole to local scratch
(TMPDIR), the copy's name removed at once, its data held by the open file until `close()`. A `Store` can be
pickled (into DataLoader workers or Ray tasks) and reopens its files on first use there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vfx.codec import decode_jpegs, dequantize_flow
from vfx.errors import UsageError
from vfx.store import schema1
from vfx.store.catalog import Recorded, read_catalog, read_log
from vfx.store.layout import read_manifest, shard_relpath
from vfx.store.location import Location

#: Videos whose JPEG offsets a `Store` keeps (a few KiB each); past it the cache starts again.
_JPEG_CACHE_VIDEOS = 4096


class Store:
    def __init__(self, path: str | os.PathLike):
        self.location = Location.parse(path)
        # A local store's path stays a Path (callers join and resolve it); a URL store's is its URL.
        self.path = Path(self.location.root) if self.location.is_local else self.location.url
        if self.location.is_local and not os.path.exists(self.location.root):
            raise UsageError(f"{self.path}: no such store")
        self.manifest = read_manifest(self.location)
        if self.manifest.get("schema_version") == schema1.SCHEMA:
            self._recorded = Recorded(schema1.read_catalog(self.location))
            self._shard_relpath = schema1.shard_relpath
        else:
            self._recorded = Recorded(read_catalog(self.location), read_log(self.location))
            self._shard_relpath = shard_relpath
        self._recorded.fold()  # one merged set of arrays; nothing is written
        self._files: dict[int, h5py.File] = {}
        self._jpeg_cache: dict[tuple[str, str], tuple] = {}

    # -- what the store is -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def params(self) -> dict[str, Any]:
        return self.manifest["params"]

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def recorded(self) -> Recorded:
        """Every video's status, as arrays (see `vfx.store.catalog.Recorded`)."""
        return self._recorded

    def video_ids(self, status: str = "done") -> list[str]:
        """Sorted ids (computed once, then cached: do not modify the list)."""
        if status == "done":
            return self._recorded.done_ids()
        if status == "failed":
            return self._recorded.failed_ids()
        raise ValueError(f"status must be 'done' or 'failed', got {status!r}")

    def status(self, video_id: str) -> str | None:
        return self._recorded.status(video_id)

    def failures(self) -> dict[str, str]:
        return dict(sorted(self._recorded.catalog.reasons.items()))

    def __contains__(self, video_id: str) -> bool:
        return self._recorded.status(video_id) == "done"

    def __len__(self) -> int:
        return self._recorded.count("done")

    def size_bytes(self) -> int:
        return self.location.total_bytes()

    # -- per video -------------------------------------------------------------------------------------
    def group(self, video_id: str) -> h5py.Group:
        """The HDF5 group of a done video (for datasets this API has no method for)."""
        status = self._recorded.status(video_id)
        if status is None:
            raise KeyError(f"{self.path}: no video {video_id!r}")
        if status != "done":
            raise KeyError(f"{self.path}: video {video_id!r} failed: {self._recorded.reason(video_id)}")
        shard = self._recorded.shard(video_id)
        if shard not in self._files:
            self._files[shard] = self._open_shard(shard)
        return self._files[shard]["videos"][video_id]

    def _open_shard(self, shard: int) -> h5py.File:
        rel = self._shard_relpath(shard)
        if self.location.is_local:
            return h5py.File(self.location.path(rel), "r")
        # Not h5py over an fsspec file object: fsspec reads on its own IO thread while h5py holds its global
        # lock, and a garbage collection on that thread that frees an h5py object waits for that lock for ever
        # (h5py#2019; seen here as a test hung in a read). A local copy is read by HDF5 itself.
        fd, copy = tempfile.mkstemp(prefix="vfx-shard-", suffix=".h5")
        os.close(fd)
        try:
            self.location.fs.get_file(self.location.path(rel), copy)
            return h5py.File(copy, "r")
        finally:
            os.unlink(copy)  # the open file keeps the data until closed; no name is left in TMPDIR

    def attrs(self, video_id: str) -> dict[str, Any]:
        return {k: _py(v) for k, v in self.group(video_id).attrs.items()}

    def frame_index(self, video_id: str) -> np.ndarray:
        return self.group(video_id)["frame_index"][()]

    def timestamps(self, video_id: str) -> np.ndarray:
        return self.group(video_id)["timestamp_sec"][()]

    def num_frames(self, video_id: str) -> int:
        return int(self.group(video_id)["frame_index"].shape[0])

    def read_frames(self, video_id: str, indices=None) -> np.ndarray:
        """uint8 [T, H, W, 3] RGB; `indices` are positions in the stored sequence (not source frame numbers), in
        any order, repeats allowed."""
        files = self._jpeg_files(video_id, "jpeg", "jpeg_offsets")
        if files is None:
            return _read_rows(self.group(video_id)["frames"], indices)
        data, offsets = files
        positions = _positions(indices, len(offsets) - 1)
        if positions.size == 0:
            return np.zeros((0, 0, 0, 3), np.uint8)
        unique, inverse = _unique(positions)
        frames = np.concatenate([_decode_run(data, offsets, lo, hi) for lo, hi in _runs(unique)])
        return frames if inverse is None else frames[inverse]

    def read_flow(self, video_id: str, indices=None, dequantize: bool = True) -> np.ndarray:
        """Flow fields [N, H, W, 2] (x, y). dequantize=True: float32 pixels; False: the stored values."""
        group = self.group(video_id)
        fmt = group.attrs.get("flow_format", "uint8")
        bound = float(group.attrs.get("bound", 20.0))
        if fmt == "jpeg":
            data, offsets = self._jpeg_files(video_id, "flow_jpeg", "flow_jpeg_offsets")
            positions = _positions(indices, (len(offsets) - 1) // 2)
            if positions.size == 0:
                return np.zeros((0, 0, 0, 2), np.float32 if dequantize else np.uint8)
            unique, inverse = _unique(positions)
            # Field i is the grey files 2i (x) and 2i + 1 (y): a run of fields is a run of files.
            planes = np.concatenate([_decode_run(data, offsets, 2 * lo, 2 * hi, gray=True) for lo, hi in _runs(unique)])
            flow = planes.reshape(len(unique), 2, *planes.shape[1:]).transpose(0, 2, 3, 1)
            flow = flow if inverse is None else flow[inverse]
        else:
            flow = _read_rows(group["flow"], indices)
        if not dequantize:
            return flow
        if flow.dtype == np.uint8:
            return dequantize_flow(flow, bound)
        return flow.astype(np.float32)

    def _jpeg_files(self, video_id: str, data: str, offsets: str) -> tuple[h5py.Dataset, np.ndarray] | None:
        """A video's JPEG buffer dataset and its offsets, looked up once: training reads one video many times,
        and the group lookup plus the offsets read cost more than the slice of bytes itself."""
        key = (video_id, data)
        files = self._jpeg_cache.get(key)
        if files is None:
            group = self.group(video_id)
            files = (group[data], group[offsets][()]) if data in group else ()
            if len(self._jpeg_cache) >= _JPEG_CACHE_VIDEOS:
                self._jpeg_cache.clear()
            self._jpeg_cache[key] = files
        return files or None

    def stored_jpegs(self, video_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The JPEG files as stored, never re-encoded: `(buffer uint8 [B], offsets int64 [N+1])`, file i being
        `buffer[offsets[i]:offsets[i+1]]` (frames: one per frame; flow: x0, y0, x1, y1, ...), or None when the
        video's frames or flow are not stored as JPEG."""
        group = self.group(video_id)
        for data, offsets in (("jpeg", "jpeg_offsets"), ("flow_jpeg", "flow_jpeg_offsets")):
            if data in group:
                return group[data][()], group[offsets][()]
        return None

    def flow_pairs(self, video_id: str) -> np.ndarray:
        return self.group(video_id)["flow_pairs"][()]

    def read_features(self, video_id: str) -> np.ndarray:
        return self.group(video_id)["features"][()]

    def clip_frames(self, video_id: str) -> np.ndarray:
        return self.group(video_id)["clip_frames"][()]

    def clip_timestamps(self, video_id: str) -> np.ndarray:
        """float64 [num_clips, 2]: start of each clip's first frame, end of its last (NaN when unknown)."""
        group = self.group(video_id)
        if "clip_timestamps" not in group:
            return np.full((group["clip_frames"].shape[0], 2), np.nan)
        return group["clip_timestamps"][()]

    # -- lifetime --------------------------------------------------------------------------------------
    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._jpeg_cache.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}  # HDF5 handles do not survive pickling or fork; reopen lazily
        state["_jpeg_cache"] = {}
        return state

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, kind={self.kind!r}, done={len(self)})"


def open_store(path: str | os.PathLike) -> Store:
    return Store(path)


def _positions(indices, length: int) -> np.ndarray:
    if indices is None:
        return np.arange(length)
    positions = np.asarray(indices, dtype=np.int64).reshape(-1)
    if positions.size and (positions.min() < -length or positions.max() >= length):
        raise IndexError(f"index out of range for {length} stored items")
    return np.where(positions < 0, positions + length, positions)


def _unique(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Sorted unique positions and how to put them back in the asked order (None: already in that order)."""
    if positions.size < 2 or np.all(np.diff(positions) > 0):
        return positions, None
    return np.unique(positions, return_inverse=True)


def _runs(unique: np.ndarray) -> list[tuple[int, int]]:
    """Ascending unique positions as [start, stop) runs of consecutive ones: one slice read per run. Neither
    h5py's per-element fancy indexing (~260x slower than a slice, DESIGN.md) nor one slice spanning the gaps
    (TSN's K segments would read the whole video)."""
    breaks = np.flatnonzero(np.diff(unique) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(unique)]])
    return [(int(unique[a]), int(unique[b - 1]) + 1) for a, b in zip(starts, stops)]


def _decode_run(data: h5py.Dataset, offsets: np.ndarray, lo: int, hi: int, gray: bool = False) -> np.ndarray:
    """Decode JPEG files lo..hi-1 of a buffer dataset with one read of their bytes."""
    start = offsets[lo]
    return decode_jpegs(data[start : offsets[hi]], offsets[lo : hi + 1] - start, range(hi - lo), gray=gray)


def _read_rows(dataset: h5py.Dataset, indices) -> np.ndarray:
    if indices is None:
        return dataset[()]
    positions = _positions(indices, dataset.shape[0])
    if positions.size == 0:
        return np.zeros((0,) + dataset.shape[1:], dataset.dtype)
    unique, inverse = _unique(positions)
    rows = np.concatenate([dataset[lo:hi] for lo, hi in _runs(unique)])
    return rows if inverse is None else rows[inverse]


def _py(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
