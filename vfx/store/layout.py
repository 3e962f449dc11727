"""Where things live inside a store directory, and the manifest that says what the store is.

    STORE/
      vfx-store.json          manifest: kind, schema version, vfx version, parameters, their hash, created
      shards/shard-NNNNN.h5   one HDF5 file per shard, written by one worker (tmp name, verified, renamed)
      ledger/shard-NNNNN.json per-video status of that shard; written after the shard file is in place
      index.h5                external links to every video group, rebuilt at the end of each run

The ledgers are the truth: a shard file without a ledger is an interrupted write and is removed on the next
run; `*.tmp` files are never read. See FORMAT.md for the contents of the HDF5 files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from vfx.version import __version__
from vfx.errors import UsageError

SCHEMA_VERSION = 1
MANIFEST = "vfx-store.json"
SHARDS = "shards"
LEDGER = "ledger"
INDEX = "index.h5"
SCRATCH = "tmp"  # workers of a local store write their shards here, then rename them into shards/
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.(h5|json)$")


def shard_name(shard_id: int) -> str:
    return f"shard-{shard_id:05d}"


def shard_relpath(shard_id: int) -> str:
    """Name of a shard file inside the store ('/'-separated)."""
    return f"{SHARDS}/{shard_name(shard_id)}.h5"


def shard_path(store: Path, shard_id: int) -> Path:
    return Path(store) / SHARDS / f"{shard_name(shard_id)}.h5"


def ledger_path(store: Path, shard_id: int) -> Path:
    return Path(store) / LEDGER / f"{shard_name(shard_id)}.json"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the complete new one, never a partial one."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_store(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(store: Path) -> dict[str, Any]:
    path = Path(store) / MANIFEST
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{store}: not a vfx store (no {MANIFEST})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: unreadable store manifest ({exc})") from None
    if manifest.get("schema_version", 0) > SCHEMA_VERSION:
        raise UsageError(
            f"{store}: store schema {manifest['schema_version']} is newer than this vfx understands "
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


def read_ledgers(store: Path) -> dict[int, dict[str, Any]]:
    """{shard_id: ledger} of every complete shard, in shard order."""
    ledgers = {}
    folder = Path(store) / LEDGER
    if not folder.is_dir():
        return ledgers
    for entry in sorted(os.listdir(folder)):
        m = _SHARD_RE.match(entry)
        if not m or m.group(2) != "json":
            continue
        with open(folder / entry, encoding="utf-8") as f:
            ledgers[int(m.group(1))] = json.load(f)
    return ledgers


def video_status(ledgers: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{video_id: {"status", "reason"?, "shard"}}; a later shard's entry wins (a failure retried later)."""
    status: dict[str, dict[str, Any]] = {}
    for shard_id in sorted(ledgers):
        for video_id, entry in ledgers[shard_id]["videos"].items():
            status[video_id] = dict(entry, shard=shard_id)
    return status


def existing_shard_ids(store: Path) -> set[int]:
    ids = set()
    for sub in (SHARDS, LEDGER):
        folder = Path(store) / sub
        if folder.is_dir():
            for entry in os.listdir(folder):
                m = re.match(r"^shard-(\d{5,})\.", entry)
                if m:
                    ids.add(int(m.group(1)))
    return ids


def remove_incomplete(store: Path) -> list[str]:
    """Delete leftovers of interrupted runs: `*.tmp` files and shard files that have no ledger."""
    removed = []
    complete = set(read_ledgers(store))
    for sub in (SHARDS, LEDGER, SCRATCH):
        folder = Path(store) / sub
        if not folder.is_dir():
            continue
        for entry in os.listdir(folder):
            m = _SHARD_RE.match(entry)
            if entry.endswith(".tmp") or (sub == SHARDS and m and int(m.group(1)) not in complete):
                os.unlink(folder / entry)
                removed.append(entry)
    return removed


WRITER = "writer.json"


def token_matches(location, token: str) -> bool:
    """Whether the store at `location` carries the run token its writer put there (see `StoreWriter`)."""
    try:
        return json.loads(location.read_bytes(WRITER)).get("token") == token
    except (OSError, ValueError):
        return False
