"""The driver side of a store: `StoreWriter`, the only process that records what a store holds.

    with StoreWriter.open(url, kind, params, overwrite=False) as store:
        recorded = store.recorded          # what earlier runs finished
        ...                                # workers write shards and publish them (vfx.store.shard)
        store.commit(receipt)              # checks the shard is there, then records its videos durably

A video counts as done only after `commit` returned for its shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from vfx.errors import UsageError, VfxError
from vfx.store.index import build_index
from vfx.store.layout import (
    MANIFEST,
    WRITER,
    existing_shard_ids,
    ledger_path,
    new_manifest,
    params_hash,
    read_ledgers,
    read_manifest,
    remove_incomplete,
    video_status,
    write_json_atomic,
)
from vfx.store.location import Location
from vfx.store.params_diff import describe_difference


class StoreError(VfxError):
    """The store does not hold what a worker said it wrote (a shard missing, or of another size)."""


class StoreWriter:
    def __init__(self, location: Location, token: str):
        self.location = location
        self.token = token
        self.recorded: dict[str, dict[str, Any]] = video_status(read_ledgers(self.path))
        self._next_id = max(existing_shard_ids(self.path), default=-1) + 1
        self._closed = False

    @property
    def path(self) -> Path:
        return Path(self.location.root)

    @property
    def url(self) -> str:
        return self.location.url

    @classmethod
    def open(cls, url, kind: str, params: dict[str, Any], *, overwrite: bool = False) -> StoreWriter:
        """Create the store, or check that an existing one was made by the same stage with the same parameters;
        remove what dead runs left; mark the store with this run's token."""
        location = Location.parse(url)
        _prepare(location, kind, params, overwrite)
        remove_incomplete(location.root)
        token = uuid.uuid4().hex
        info = {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        location.write_bytes(WRITER, json.dumps(info).encode())
        return cls(location, token)

    def next_shard_id(self) -> int:
        """The first shard id no earlier run used (a shard file is never written twice)."""
        return self._next_id

    def commit(self, receipt) -> None:
        """Record a published shard (writing its shipped bytes first); raises StoreError if it is not there."""
        if receipt.payload is not None:
            if hashlib.sha256(receipt.payload).hexdigest() != receipt.sha256:
                raise StoreError(f"shard {receipt.shard_id}: shipped bytes do not match their checksum")
            self.location.write_bytes(receipt.name, receipt.payload)
        size = self.location.size(receipt.name)
        if size != receipt.size:
            found = "missing" if size is None else f"{size} bytes, not {receipt.size}"
            raise StoreError(f"{self.location.url_of(receipt.name)}: shard {receipt.shard_id} {found}")
        ledger = {"shard": receipt.shard_id, "file": receipt.name, "size": receipt.size, "sha256": receipt.sha256,
                  "videos": receipt.videos}
        path = ledger_path(self.path, receipt.shard_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, ledger)
        for video_id, entry in receipt.videos.items():
            self.recorded[video_id] = dict(entry, shard=receipt.shard_id)
        self._next_id = max(self._next_id, receipt.shard_id + 1)

    def close(self) -> None:
        """Index the store and release it. Safe to call twice, and on errors or interrupts."""
        if self._closed:
            return
        self._closed = True
        build_index(self.path)
        self.location.remove(WRITER)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _prepare(location: Location, kind: str, params: dict[str, Any], overwrite: bool) -> None:
    path = location.root
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{path}: output exists and is not a directory")
    if os.path.isfile(os.path.join(path, MANIFEST)):
        manifest = read_manifest(path)
        if manifest["kind"] == kind and manifest["params_hash"] == params_hash(params):
            return
        if not overwrite:
            raise UsageError(
                f"{path}: existing store was made with other parameters ({describe_difference(manifest, kind, params)}); "
                "use --overwrite to replace it, or choose another output"
            )
        location.remove_tree()
    elif os.path.isdir(path) and os.listdir(path):
        raise UsageError(f"{path}: output directory is not empty and is not a vfx store")
    try:
        os.makedirs(path, exist_ok=True)
        write_json_atomic(Path(path) / MANIFEST, new_manifest(kind, params))
    except OSError as exc:
        raise UsageError(f"{path}: output is not writable ({exc.strerror or exc})") from None

