"""`index.h5`: the one HDF5 file that plain-h5py users open to reach every video of a store.

    /videos/<video_id>   external link -> shards/BBBB/shard-NNNNNNN.h5:/videos/<video_id>  (done videos)
    /catalog             external link -> catalog.h5:/  (status of every video, failure reasons, shards)
    /shards              int64 [S]: the shards whose videos are linked (how an update knows what is new)

Links are relative to the store (HDF5 resolves them against the index file's folder), so a store can be
moved. The index is updated at the end of a run with the links of the shards it does not list yet, and
left alone when there are none. An update works on a copy (the old file copied, or downloaded from
object storage), which replaces the old file only once it is complete: a kill during an update leaves
the previous index in place, and the next run adds what is missing. The catalog stays the truth, so an
index that lags behind is only an inconvenience for plain-h5py readers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import h5py
import numpy as np

from vfx.store.catalog import CATALOG, DONE, Catalog
from vfx.store.layout import INDEX, shard_relpath


def indexed_shards(path) -> np.ndarray | None:
    """Shard ids an index file (a path or a file object) links (None: no index file, or one this vfx did not write)."""
    try:
        with h5py.File(path, "r") as h5:
            return h5["shards"][()].astype(np.int64) if "shards" in h5 else None
    except (FileNotFoundError, OSError):
        return None


def update_index(location, catalog: Catalog, manifest: dict) -> int:
    """Link the done videos of shards the index does not list yet. Returns how many links were added
    (0: the file was not touched)."""
    with tempfile.TemporaryDirectory(prefix="vfx-index-") as tmpdir:
        # The copy to edit: beside the index for a local store (the rename is then atomic), else local scratch.
        work = f"{location.path(INDEX)}.{os.getpid()}.tmp" if location.is_local else os.path.join(tmpdir, INDEX)
        # What the current index lists, read in place (a few small reads): a run that adds nothing copies nothing.
        have = _current_shards(location)
        new_shards = catalog.shard_id if have is None else np.setdiff1d(catalog.shard_id, have)
        if have is not None and new_shards.size == 0:
            return 0
        try:
            if have is None or not _copy_current(location, work):
                _create(work, manifest)
            rows = np.flatnonzero((catalog.status == DONE) & np.isin(catalog.shard, new_shards))
            with h5py.File(work, "a") as h5:
                _link(h5["videos"], catalog.video_id[rows], catalog.shard[rows])
                shards = h5["shards"]
                start = shards.shape[0]
                shards.resize(start + new_shards.size, axis=0)
                shards[start:] = new_shards
            _publish(location, work)
        finally:
            if location.is_local and os.path.exists(work):
                os.unlink(work)
        return int(rows.size)


def _current_shards(location) -> np.ndarray | None:
    if location.is_local:
        return indexed_shards(location.path(INDEX))
    try:
        with location.fs.open(location.path(INDEX), "rb") as f:
            return indexed_shards(f)
    except FileNotFoundError:
        return None


def _copy_current(location, target: str) -> bool:
    """Copy the current index to `target`; False when the store has none."""
    try:
        if location.is_local:
            shutil.copyfile(location.path(INDEX), target)
        else:
            location.fs.get_file(location.path(INDEX), target)
    except FileNotFoundError:
        return False
    return True


def _create(path: str, manifest: dict) -> None:
    # libver v110: groups with many links use dense storage (a B-tree over a fractal heap), which keeps
    # adding and finding links fast at a million entries; HDF5 1.10 (2016) and later read it.
    with h5py.File(path, "w", libver=("v110", "latest")) as h5:
        h5.attrs["kind"] = manifest["kind"]
        h5.attrs["schema_version"] = manifest["schema_version"]
        h5.attrs["vfx_version"] = manifest["vfx_version"]
        h5.attrs["params_json"] = json.dumps(manifest["params"], sort_keys=True)
        h5.attrs["manifest_json"] = json.dumps(manifest, sort_keys=True)
        h5.create_group("videos", track_order=False)
        h5.create_dataset("shards", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        h5["catalog"] = h5py.ExternalLink(CATALOG, "/")


def _link(videos: h5py.Group, video_ids: np.ndarray, shard_ids: np.ndarray) -> None:
    """One external link per video, through the low-level call (the high-level `group[name] = ...` builds
    property lists and checks names per call, several times slower at a million links)."""
    links = videos.id.links
    targets: dict[int, bytes] = {}
    for key, shard_id in zip(video_ids.tolist(), shard_ids.tolist()):
        target = targets.get(shard_id)
        if target is None:
            target = targets[shard_id] = shard_relpath(shard_id).encode()
        if links.exists(key):  # a video linked before (its shard retried after a kill): point at the latest
            links.delete(key)
        links.create_external(key, target, b"/videos/" + key)


def _publish(location, work: str) -> None:
    """Put the edited copy in place of the old index: an fsync and a rename, or one upload."""
    if not location.is_local:
        location.put_file(work, INDEX)
        return
    with open(work, "rb+") as f:
        os.fsync(f.fileno())
    _before_replace(work)
    os.replace(work, location.path(INDEX))


def _before_replace(tmp: str) -> None:
    """The moment between a complete new index and its rename (the kill tests stop a run here)."""
