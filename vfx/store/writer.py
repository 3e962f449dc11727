"""One shard file, written by one worker: temporary name, verified on close, then atomically renamed.

Only after the rename is the shard's ledger written, so a ledger always points at a complete file and a
killed run leaves at most `*.tmp` files and ledger-less shards, which the next run removes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vfx.types import VideoOutput
from vfx.types import VideoItem
from vfx.store.layout import SCHEMA_VERSION, ledger_path, shard_path, write_json_atomic

#: Target size of one HDF5 chunk for streamed (resizable) datasets: large enough for fast sequential I/O,
#: small enough that reading a few frames does not pull megabytes.
_CHUNK_BYTES = 1 << 20


class ShardWriter:
    def __init__(self, store: Path, shard_id: int, kind: str):
        self.store = Path(store)
        self.shard_id = shard_id
        self.final = shard_path(self.store, shard_id)
        self.tmp = self.final.with_name(self.final.name + f".{os.getpid()}.tmp")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.h5 = h5py.File(self.tmp, "w")
        self.h5.attrs["kind"] = kind
        self.h5.attrs["schema_version"] = SCHEMA_VERSION
        self.h5.attrs["shard"] = shard_id
        self.videos = self.h5.create_group("videos")
        self.ledger: dict[str, dict[str, Any]] = {}

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
        self.ledger[item.video_id] = {"status": "done"}

    def fail(self, video_id: str, reason: str) -> None:
        self.ledger[video_id] = {"status": "failed", "reason": reason}

    def commit(self) -> dict[str, Any]:
        """Close, verify, rename into place, then write the ledger. Returns the ledger."""
        self.h5.close()
        self._verify()
        os.replace(self.tmp, self.final)
        ledger = {"shard": self.shard_id, "file": f"{self.final.parent.name}/{self.final.name}", "videos": self.ledger}
        path = ledger_path(self.store, self.shard_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, ledger)
        return ledger

    def abort(self) -> None:
        if self.h5.id.valid:
            self.h5.close()
        self.tmp.unlink(missing_ok=True)

    def _verify(self) -> None:
        """Reopen the closed file and touch the last element of every dataset of every done video."""
        done = {v for v, e in self.ledger.items() if e["status"] == "done"}
        with h5py.File(self.tmp, "r") as h5:
            stored = set(h5["videos"].keys())
            if stored != done:
                raise OSError(f"{self.tmp}: shard verification failed: groups {sorted(stored ^ done)} mismatch")
            for video_id in stored:
                for dataset in h5["videos"][video_id].values():
                    if dataset.shape and dataset.shape[0]:
                        dataset[-1]


def _item_attrs(item: VideoItem) -> dict[str, Any]:
    attrs = {"video_id": item.video_id, "source_path": item.path}
    for key in ("label", "split", "start_sec", "end_sec"):
        value = getattr(item, key)
        if value is not None:
            attrs[key] = value
    return attrs


def _append_stream(group: h5py.Group, stream) -> None:
    for chunk in stream:
        for name, array in chunk.items():
            array = np.asarray(array)
            if name not in group:
                row_bytes = max(1, array[:1].nbytes if array.ndim else array.itemsize)
                rows = max(1, _CHUNK_BYTES // row_bytes)
                group.create_dataset(
                    name,
                    shape=(0,) + array.shape[1:],
                    maxshape=(None,) + array.shape[1:],
                    dtype=array.dtype,
                    chunks=(rows,) + array.shape[1:],
                )
            dataset = group[name]
            start = dataset.shape[0]
            dataset.resize(start + array.shape[0], axis=0)
            dataset[start:] = array
