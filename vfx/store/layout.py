"""Where things live inside a store, and the manifest that says what the store is (schema 2).

    STORE/
      vfx-store.json                     manifest: kind, schema version, vfx version, parameters, their hash
      catalog.h5                         every recorded video: id, status, shard; failure reasons; shard table
      log.jsonl  (object stores: log/)   commits not yet folded into the catalog (one record per shard)
      index.h5                           external links to every done video (updated with new shards only)
      shards/BBBB/shard-NNNNNNN.h5       one HDF5 file per shard; bucket BBBB = shard id // 1000
      tmp/                               workers' scratch of a local store (never read)
      lock/                              the writing run's claim and heartbeat (vfx/store/lock.py); readers ignore it

The catalog plus the log are the truth: a shard file that neither names is an interrupted write and is
removed on the next run; `*.tmp` files are never read. See FORMAT.md for the contents of the HDF5 files,
`vfx/store/catalog.py` for the catalog and the log, `vfx/store/schema1.py` for stores made before schema 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from vfx.errors import UsageError
from vfx.store.location import Location
from vfx.version import __version__

SCHEMA_VERSION = 2
MANIFEST = "vfx-store.json"
SHARDS = "shards"
INDEX = "index.h5"
SCRATCH = "tmp"  # workers of a local store write their shards here, then rename them into shards/
#: Shard files per bucket folder: a million videos in shards of one is 1000 folders of 1000 files, and a
#: listing of one folder stays fast on NFS/Lustre and on object-store prefixes.
SHARDS_PER_BUCKET = 1000
_SHARD_FILE_RE = re.compile(r"^shard-(\d{5,})\.h5$")


def bucket_name(shard_id: int) -> str:
    return f"{shard_id // SHARDS_PER_BUCKET:04d}"


def shard_relpath(shard_id: int) -> str:
    """Name of a shard file inside the store ('/'-separated)."""
    return f"{SHARDS}/{bucket_name(shard_id)}/shard-{shard_id:07d}.h5"


def shard_path(store, shard_id: int) -> str:
    """Full path (local) or fsspec path of a shard file."""
    return Location.parse(store).path(shard_relpath(shard_id))


def shard_id_of(filename: str) -> int | None:
    m = _SHARD_FILE_RE.match(filename)
    return int(m.group(1)) if m else None


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the complete new one, never a partial one."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_store(path) -> bool:
    try:
        return Location.parse(path).size(MANIFEST) is not None
    except (OSError, UsageError):
        return False


def read_manifest(store) -> dict[str, Any]:
    location = Location.parse(store)
    try:
        manifest = json.loads(location.read_bytes(MANIFEST))
    except FileNotFoundError:
        raise UsageError(f"{location.url}: not a vfx store (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{location.url_of(MANIFEST)}: unreadable store manifest ({exc})") from None
    if manifest.get("schema_version", 0) > SCHEMA_VERSION:
        raise UsageError(
            f"{location.url}: store schema {manifest['schema_version']} is newer than this vfx understands "
            f"({SCHEMA_VERSION}); upgrade vfx"
        )
    return manifest


def new_manifest(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    import h5py
    import numpy as np

    return {
        "kind": kind,
        "schema_version": SCHEMA_VERSION,
        "vfx_version": __version__,
        "params": params,
        "params_hash": params_hash(params),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version, "numpy": np.__version__},
    }


def remove_incomplete(store, recorded=None) -> list[str]:
    """Delete leftovers of interrupted runs: `*.tmp` files, the scratch folder's files, and shard files that
    neither the catalog nor the log names. Returns what it removed ('/'-separated names in the store).

    Only the buckets after the catalog's last shard can hold such files (an earlier run that finished folded
    everything it committed), so this lists a few folders, not every shard. `recorded` (a `Recorded`) saves
    reading the catalog again."""
    from vfx.store.catalog import Recorded, read_catalog, read_log

    location = Location.parse(store)
    if recorded is None:
        recorded = Recorded(read_catalog(location), read_log(location))
    folded = recorded.base_shards
    committed = set(recorded.catalog.shard_id.tolist())
    first_unknown = int(folded.max()) + 1 if folded.size else 0
    removed = []
    for name in location.listdir(""):
        if name.endswith(".tmp"):
            location.remove(name)
            removed.append(name)
    if location.is_local:
        for name in location.listdir(SCRATCH):
            location.remove(f"{SCRATCH}/{name}")
            removed.append(f"{SCRATCH}/{name}")
    for bucket in sorted(location.listdir(SHARDS)):
        if not bucket.isdigit() or int(bucket) < first_unknown // SHARDS_PER_BUCKET:
            continue
        for name in location.listdir(f"{SHARDS}/{bucket}"):
            shard_id = shard_id_of(name)
            if name.endswith(".tmp") or (shard_id is not None and shard_id >= first_unknown and shard_id not in committed):
                location.remove(f"{SHARDS}/{bucket}/{name}")
                removed.append(f"{SHARDS}/{bucket}/{name}")
    return removed

