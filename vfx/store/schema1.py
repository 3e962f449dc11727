"""Stores made before schema 2 (vfx-store.json `schema_version: 1`): read-only access.

Schema 1 kept one ledger per shard (`ledger/shard-NNNNN.json`) and the shard files side by side in
`shards/shard-NNNNN.h5`. A reader turns the ledgers into the same `Catalog` a schema-2 store has, so every
read works unchanged; a writer refuses the store (see `StoreWriter.open`) instead of mixing two layouts.
"""

from __future__ import annotations

import json
import re

from vfx.store.catalog import Catalog, merge

SCHEMA = 1
LEDGER = "ledger"
_LEDGER_RE = re.compile(r"^shard-(\d{5,})\.json$")


def shard_relpath(shard_id: int) -> str:
    return f"shards/shard-{shard_id:05d}.h5"


def read_catalog(location) -> Catalog:
    """The ledgers of a schema-1 store as a catalog (a later shard's entry wins, as schema 1 said)."""
    records = []
    for name in sorted(location.listdir(LEDGER)):
        m = _LEDGER_RE.match(name)
        if m is None:
            continue
        ledger = json.loads(location.read_bytes(f"{LEDGER}/{name}"))
        records.append({"shard": int(m.group(1)), "size": ledger.get("size", -1), "sha256": ledger.get("sha256", ""),
                        "videos": ledger["videos"]})
    return merge(Catalog.empty(), records)
