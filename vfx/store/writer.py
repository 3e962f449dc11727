"""The driver side of a store: `StoreWriter`, the only process that records what a store holds.

    with StoreWriter.open(url, kind, params, overwrite=False) as store:
        store.recorded                     # what earlier runs finished (a compact `Recorded` view)
        ...                                # workers write shards and publish them (vfx.store.shard)
        store.commit(receipt)              # checks the shard is there, then appends its record to the log
    # close: the log folded into catalog.h5, index.h5 given the new shards' links

A video counts as done once `commit` returned for its shard. Every step of `close` is crash-safe: the catalog
is replaced whole before the log entries it absorbed are deleted, the index is replaced by a complete new
version, and whatever a kill interrupts, the next run's `open` replays catalog + log and finishes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from vfx.errors import UsageError, VfxError
from vfx.store.catalog import CATALOG, Recorded, append_log, catalog_bytes, clear_log, log_record, read_catalog, read_log
from vfx.store.index import update_index
from vfx.store.layout import (
    MANIFEST,
    SCHEMA_VERSION,
    SCRATCH,
    new_manifest,
    params_hash,
    read_manifest,
    remove_incomplete,
    shard_id_of,
)
from vfx.store.location import Location
from vfx.store.lock import LOCK_DIR, StoreLock
from vfx.store.params_diff import describe_difference


class StoreError(VfxError):
    """The store does not hold what a worker said it wrote (a shard missing, or of another size)."""


class StoreWriter:
    def __init__(self, location: Location, lock: StoreLock, manifest: dict[str, Any] | None = None,
                 recorded: Recorded | None = None, seen_shards: int = -1):
        self.location = location
        self.lock = lock
        self.token = lock.token  # workers check they see the holder's claim (vfx.store.lock.holds)
        self.manifest = manifest if manifest is not None else read_manifest(location)
        # Read once per run: the catalog and whatever a killed run left in the log.
        self.recorded = recorded if recorded is not None else Recorded(read_catalog(location), read_log(location, repair=True))
        self._seen_shards = seen_shards  # highest shard id of a file seen on disk (also one just removed)
        self._next_id: int | None = None
        self._closed = False

    @property
    def path(self) -> str:
        """The store's root: a local path, or the fsspec path of a URL store (see `url`)."""
        return self.location.root

    @property
    def url(self) -> str:
        return self.location.url

    @classmethod
    def open(cls, url, kind: str, params: dict[str, Any], *, overwrite: bool = False) -> StoreWriter:
        """Create the store, or check that an existing one was made by the same stage with the same parameters;
        take the store's lock (a live run holding it is a UsageError), then remove what dead runs left."""
        location = Location.parse(url)
        manifest, lock = _prepare(location, kind, params, overwrite)
        try:
            recorded = Recorded(read_catalog(location), read_log(location, repair=True))
            removed = remove_incomplete(location, recorded)
        except BaseException:
            lock.release()
            raise
        seen = max((shard_id_of(name.rsplit("/", 1)[-1]) or -1 for name in removed), default=-1)
        return cls(location, lock, manifest, recorded, seen)

    def next_shard_id(self) -> int:
        """The first shard id no earlier run used (a shard file is never written twice, so a worker of a killed
        run that still uploads its shard cannot overwrite one of this run)."""
        if self._next_id is None:
            ids = self.recorded.catalog.shard_id
            self._next_id = max(int(ids.max()) if ids.size else -1, self._seen_shards) + 1
        return self._next_id

    def commit(self, receipt) -> None:
        """Record a published shard (writing its shipped bytes first); raises StoreError if it is not there."""
        self.lock.check()
        if receipt.payload is not None:
            if hashlib.sha256(receipt.payload).hexdigest() != receipt.sha256:
                raise StoreError(f"shard {receipt.shard_id}: shipped bytes do not match their checksum")
            self.location.write_bytes(receipt.name, receipt.payload)
        size = self.location.size(receipt.name)
        if size != receipt.size:
            found = "missing" if size is None else f"{size} bytes, not {receipt.size}"
            raise StoreError(f"{self.location.url_of(receipt.name)}: shard {receipt.shard_id} {found}")
        record = log_record(receipt.shard_id, receipt.name, receipt.size, receipt.sha256, receipt.videos)
        append_log(self.location, record)
        self.recorded.add(record)
        self._next_id = max(self.next_shard_id(), receipt.shard_id + 1)

    def close(self) -> None:
        """Fold the log into the catalog, index the new shards, release the store. Safe to call twice, and on
        errors or interrupts (what was committed is folded; nothing else is touched)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.lock.lost is None:  # a run that lost its lock leaves the fold and index to the run that took over
                self.fold()
                update_index(self.location, self.recorded.catalog, self.manifest)
        finally:
            self.lock.release()
            if self.location.is_local:
                try:
                    os.rmdir(self.location.path(SCRATCH))  # the workers' scratch folder, when they left it empty
                except OSError:
                    pass

    def fold(self) -> None:
        """Write the catalog with every pending record, then delete the log entries it now holds."""
        pending = list(self.recorded.pending)
        if not pending:
            return
        catalog = self.recorded.catalog
        self.location.write_bytes(CATALOG, catalog_bytes(catalog, {"schema_version": SCHEMA_VERSION,
                                                                   "kind": self.manifest["kind"]}))
        clear_log(self.location, [commit.shard for commit in pending])
        self.recorded.fold()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _prepare(location: Location, kind: str, params: dict[str, Any], overwrite: bool) -> tuple[dict[str, Any], StoreLock]:
    """Check the output, take its lock (before anything in it is removed or written), then return the manifest
    of the store at `location`, created if there is none."""
    if location.is_local and os.path.exists(location.root) and not os.path.isdir(location.root):
        raise UsageError(f"{location.root}: output exists and is not a directory")
    if location.size(MANIFEST) is None and set(location.listdir()) - {LOCK_DIR}:
        raise UsageError(f"{location.url}: output directory is not empty and is not a vfx store")
    try:
        lock = StoreLock.acquire(location)
    except OSError as exc:
        raise UsageError(f"{location.url}: output is not writable ({exc.strerror or exc})") from None
    try:
        return _check_or_create(location, kind, params, overwrite), lock
    except BaseException:
        lock.release()
        raise


def _check_or_create(location: Location, kind: str, params: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    if location.size(MANIFEST) is not None:
        manifest = read_manifest(location)
        same = manifest["kind"] == kind and manifest["params_hash"] == params_hash(params)
        if same and manifest.get("schema_version") == SCHEMA_VERSION:
            return manifest
        if not overwrite:
            if manifest.get("schema_version") != SCHEMA_VERSION:
                raise UsageError(
                    f"{location.url}: a schema-{manifest.get('schema_version')} store (vfx {manifest.get('vfx_version')}); "
                    f"this vfx reads it but writes schema {SCHEMA_VERSION} only: convert it with "
                    f"`vfx store upgrade {location.url}`, or write to another output"
                )
            raise UsageError(
                f"{location.url}: existing store was made with other parameters ({describe_difference(manifest, kind, params)}); "
                "use --overwrite to replace it, or choose another output"
            )
        for name in location.listdir():
            if name != LOCK_DIR:  # our own lock stays: nobody may start writing the store while it is replaced
                location.remove_tree(name)
    manifest = new_manifest(kind, params)
    try:
        location.makedirs()
        location.write_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True, default=str).encode())
    except OSError as exc:
        raise UsageError(f"{location.url}: output is not writable ({exc.strerror or exc})") from None
    return manifest
