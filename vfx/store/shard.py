"""The worker side of a store: write one shard to local scratch, verify it, publish it where the store lives.

A worker never assumes it sees the driver's disk. It writes `scratch/shard-NNNNN.h5.tmp`, closes and
verifies it (`ShardWriter.finish`), then `publish_shard` puts it into the store under its final name, or
hands its bytes back for the driver to write (`ship=True`). Either way the worker only reports what it
wrote (`ShardReceipt`: name, size, checksum, per-video results); the driver alone records a shard as done
(`StoreWriter.commit`), after checking that it can see it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vfx.store.layout import SCHEMA_VERSION, shard_relpath
from vfx.store.lock import holds
from vfx.store.location import Location
from vfx.types import VideoItem, VideoOutput

#: Target size of one HDF5 chunk for datasets streamed past `_CONTIGUOUS_BYTES`: large enough for fast
#: sequential I/O, small enough that reading a few frames does not pull megabytes. HDF5 allocates chunks
#: whole, so such a dataset carries at most one partly filled chunk.
_CHUNK_BYTES = 1 << 20
#: A video's streamed datasets are held in memory up to this many bytes and then written contiguous, at
#: their exact size: no chunk padding (a 2048-d feature vector in a 1 MiB chunk was 99.8 % padding). Past
#: it they become chunked datasets, so memory stays bounded for long videos; the padding is then at most
#: one chunk per dataset, under 1/8 of what the video stores.
_CONTIGUOUS_BYTES = 8 << 20


@dataclass(frozen=True)
class ShardFile:
    """A closed, verified shard file on the worker's local disk."""

    shard_id: int
    local_path: str
    size: int
    sha256: str
    videos: dict[str, dict[str, Any]]  # {video_id: {"status": "done"|"failed", "reason"?: str}}


@dataclass(frozen=True)
class ShardReceipt:
    """What a worker reports to the driver: where the shard went (`name`, relative to the store) and what it holds.

    `payload` holds the file's bytes when the worker could not put it into the store itself (`ship=True`).
    """

    shard_id: int
    name: str
    size: int
    sha256: str
    videos: dict[str, dict[str, Any]]
    payload: bytes | None = None


class ShardWriter:
    def __init__(self, scratch_dir: str | os.PathLike, shard_id: int, kind: str):
        self.shard_id = shard_id
        scratch = Path(scratch_dir)
        scratch.mkdir(parents=True, exist_ok=True)
        self.tmp = scratch / f"shard-{shard_id:05d}.{os.getpid()}.h5.tmp"
        self.h5 = h5py.File(self.tmp, "w")
        self.h5.attrs["kind"] = kind
        self.h5.attrs["schema_version"] = SCHEMA_VERSION
        self.h5.attrs["shard"] = shard_id
        self.videos = self.h5.create_group("videos")
        self.results: dict[str, dict[str, Any]] = {}

    def write(self, item: VideoItem, output: VideoOutput) -> None:
        """Write one video's group. If anything fails (also inside the stream), the group is removed and the
        exception propagates, for the caller to record the video as failed."""
        group = self.videos.create_group(item.video_id)
        try:
            for name, array in output.datasets.items():
                group.create_dataset(name, data=np.asarray(array))
            if output.stream is not None:
                _append_stream(group, output.stream)
            for key, value in _item_attrs(item).items():
                group.attrs[key] = value
            for key, value in output.attrs.items():
                if value is not None:
                    group.attrs[key] = value
        except BaseException:
            del self.videos[item.video_id]
            raise
        self.results[item.video_id] = {"status": "done"}

    def fail(self, video_id: str, reason: str) -> None:
        self.results[video_id] = {"status": "failed", "reason": reason}

    def finish(self) -> ShardFile:
        """Close and verify the file; returns what it holds. The file stays in scratch until published."""
        self.h5.close()
        self._verify()
        return ShardFile(self.shard_id, str(self.tmp), self.tmp.stat().st_size, _sha256(self.tmp), dict(self.results))

    def abort(self) -> None:
        if self.h5.id.valid:
            self.h5.close()
        self.tmp.unlink(missing_ok=True)

    def _verify(self) -> None:
        """Reopen the closed file and touch the last element of every dataset of every done video."""
        done = {v for v, e in self.results.items() if e["status"] == "done"}
        with h5py.File(self.tmp, "r") as h5:
            stored = set(h5["videos"].keys())
            if stored != done:
                raise OSError(f"{self.tmp}: shard verification failed: groups {sorted(stored ^ done)} mismatch")
            for video_id in stored:
                for dataset in h5["videos"][video_id].values():
                    if dataset.shape and dataset.shape[0]:
                        dataset[-1]


def scratch_dir_for(store_url: str) -> str:
    """Where a worker writes shards before publishing: inside a local store (publishing is then a rename),
    else the machine's temporary folder (TMPDIR)."""
    location = Location.parse(store_url)
    if location.is_local and os.path.isdir(location.root):
        return location.join_local("tmp")
    return os.path.join(tempfile.gettempdir(), f"vfx-scratch-{os.getuid()}")


def publish_shard(shard: ShardFile, store_url: str, ship: bool = False) -> ShardReceipt:
    """Put a finished shard into the store under its final name (or return its bytes with `ship=True`).

    The scratch file is removed either way. A store file only ever appears complete: posix stores get a
    temporary name in the store, fsync, rename; object stores an upload, which is atomic per object.
    """
    name = shard_relpath(shard.shard_id)
    payload = None
    try:
        if ship:
            payload = Path(shard.local_path).read_bytes()
        else:
            Location.parse(store_url).put_file(shard.local_path, name)
    finally:
        Path(shard.local_path).unlink(missing_ok=True)
    return ShardReceipt(shard.shard_id, name, shard.size, shard.sha256, shard.videos, payload)


def store_visible(store_url: str, token: str) -> bool:
    """Whether this process sees the store the driver opened (a local path on another node does not)."""
    return holds(Location.parse(store_url), token)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _item_attrs(item: VideoItem) -> dict[str, Any]:
    attrs = {"video_id": item.video_id, "source_path": item.path}
    for key in ("label", "split", "start_sec", "end_sec"):
        value = getattr(item, key)
        if value is not None:
            attrs[key] = value
    return attrs


def _append_stream(group: h5py.Group, stream) -> None:
    """Write a stream of {name: rows} chunks: contiguous datasets at their final size when the whole stream
    fits in `_CONTIGUOUS_BYTES`, else resizable chunked datasets appended to as the rows come."""
    held: dict[str, list[np.ndarray]] = {}
    held_bytes = 0
    for chunk in stream:
        for name, array in chunk.items():
            array = np.asarray(array)
            if name in group:
                _append_rows(group[name], array)
            else:
                held.setdefault(name, []).append(array)
                held_bytes += array.nbytes
        if held_bytes > _CONTIGUOUS_BYTES:
            for name, arrays in held.items():
                rows = np.concatenate(arrays)
                row_bytes = max(1, rows[:1].nbytes if rows.ndim else rows.itemsize)
                group.create_dataset(name, shape=(0,) + rows.shape[1:], maxshape=(None,) + rows.shape[1:],
                                     dtype=rows.dtype, chunks=(max(1, _CHUNK_BYTES // row_bytes),) + rows.shape[1:])
                _append_rows(group[name], rows)
            held, held_bytes = {}, 0
    for name, arrays in held.items():
        group.create_dataset(name, data=np.concatenate(arrays))


def _append_rows(dataset: h5py.Dataset, rows: np.ndarray) -> None:
    start = dataset.shape[0]
    dataset.resize(start + rows.shape[0], axis=0)
    dataset[start:] = rows
