"""`index.h5`: one HDF5 file that plain-h5py users open to reach every video of a store.

It holds external links `/videos/<video_id>` -> `shards/shard-NNNNN.h5:/videos/<video_id>` (paths relative
to the store; HDF5 resolves them against the index file's folder), the manifest as root attributes, and the
failures as attributes of `/failed`. It is rebuilt, atomically, at the end of every run; the ledgers stay the
source of truth, so an index missing after a killed run is only an inconvenience.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py

from vfx.store.layout import INDEX, SHARDS, read_ledgers, read_manifest, shard_name, video_status


def build_index(store: Path) -> Path:
    store = Path(store)
    manifest = read_manifest(store)
    status = video_status(read_ledgers(store))
    final = store / INDEX
    tmp = store / f"{INDEX}.{os.getpid()}.tmp"
    with h5py.File(tmp, "w") as h5:
        h5.attrs["kind"] = manifest["kind"]
        h5.attrs["schema_version"] = manifest["schema_version"]
        h5.attrs["vfx_version"] = manifest["vfx_version"]
        h5.attrs["params_json"] = json.dumps(manifest["params"], sort_keys=True)
        h5.attrs["manifest_json"] = json.dumps(manifest, sort_keys=True)
        videos = h5.create_group("videos")
        failed = h5.create_group("failed")
        for video_id, entry in sorted(status.items()):
            if entry["status"] == "done":
                target = f"{SHARDS}/{shard_name(entry['shard'])}.h5"
                videos[video_id] = h5py.ExternalLink(target, f"/videos/{video_id}")
            else:
                failed.attrs[video_id] = entry.get("reason", "")
    os.replace(tmp, final)
    return final
