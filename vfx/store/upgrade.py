"""`vfx store upgrade STORE`: convert a schema-1 store (a ledger per shard) to schema 2 in place.

The shard files are kept byte for byte, only moved into their bucket folders; the ledgers become one
catalog; the index is rebuilt. The steps are ordered so that a conversion killed at any point can simply
be run again: the catalog is written first (a schema-1 reader ignores it), then the shards are moved (each
found at its old name or already at its new one), then the manifest switches the store to schema 2, then
the index is built and the ledgers are deleted. No run may write the store meanwhile, and readers opened
before the conversion must be reopened after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vfx.errors import UsageError
from vfx.store import schema1
from vfx.store.catalog import CATALOG, catalog_bytes
from vfx.store.index import update_index
from vfx.store.layout import INDEX, MANIFEST, SCHEMA_VERSION, read_manifest, shard_relpath
from vfx.store.location import Location


@dataclass(frozen=True)
class Upgrade:
    url: str
    from_schema: int
    shards: int
    videos: int

    def __str__(self) -> str:
        if self.from_schema == SCHEMA_VERSION:
            return f"{self.url}: already schema {SCHEMA_VERSION}, nothing to do"
        return (f"{self.url}: schema {self.from_schema} -> {SCHEMA_VERSION}: {self.videos} videos in {self.shards} shards "
                "(shard files moved into bucket folders, ledgers folded into catalog.h5, index rebuilt)")


def upgrade_store(url) -> Upgrade:
    location = Location.parse(url)
    manifest = read_manifest(location)
    schema = manifest.get("schema_version")
    if schema == SCHEMA_VERSION:
        return Upgrade(location.url, schema, 0, 0)
    if schema != schema1.SCHEMA:
        raise UsageError(f"{location.url}: cannot upgrade a schema-{schema} store")
    catalog = schema1.read_catalog(location)
    location.write_bytes(CATALOG, catalog_bytes(catalog, {"schema_version": SCHEMA_VERSION, "kind": manifest["kind"]}))
    for shard_id in catalog.shard_id.tolist():
        old, new = schema1.shard_relpath(shard_id), shard_relpath(shard_id)
        if location.size(old) is not None:
            location.move(old, new)
        elif location.size(new) is None:
            raise UsageError(f"{location.url_of(old)}: shard {shard_id} named by its ledger is missing")
    manifest = dict(manifest, schema_version=SCHEMA_VERSION, upgraded_from_schema=schema)
    location.write_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True, default=str).encode())
    location.remove(INDEX)
    update_index(location, catalog, manifest)
    for name in location.listdir(schema1.LEDGER):
        location.remove(f"{schema1.LEDGER}/{name}")
    location.remove_dir(schema1.LEDGER)
    return Upgrade(location.url, schema, int(catalog.shard_id.size), len(catalog))
