"""What a store holds, video by video: the catalog (`catalog.h5`) plus the commit log of runs not yet folded.

A store records one line per committed shard in its commit log (`log.jsonl`, appended and fsynced; on object
storage one small object per commit, `log/shard-NNNNNNN.json`, since objects cannot be appended to). At the
end of a run the writer folds the log into `catalog.h5`, a handful of arrays sorted by video id, written
whole under a temporary name and renamed (one PUT on object storage), and only then deletes the folded log
entries. Reading a store is therefore reading one or two small files, whatever the number of shards.

Every record names its shard, and for a video recorded more than once (a failure retried with
`--retry-failed`) the record of the highest shard wins, so replaying a log entry that was already folded
(a run killed between the rename and the deletion) changes nothing.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from vfx.errors import UsageError

CATALOG = "catalog.h5"
LOG = "log.jsonl"  # local stores: one JSON line per committed shard
LOG_DIR = "log"  # object stores: one object per committed shard

#: Status codes of the catalog's `videos/status` array.
DONE, FAILED = 1, 2
_CODES = {"done": DONE, "failed": FAILED}
_NAMES = {DONE: "done", FAILED: "failed"}


@dataclass(frozen=True)
class Catalog:
    """Every recorded video once, sorted by id (numpy fixed-length bytes), with its status and shard; the reasons
    of failed videos; and the table of committed shards (id, size, SHA-256)."""

    video_id: np.ndarray  # S[n], sorted, unique
    status: np.ndarray  # uint8 [n], DONE | FAILED
    shard: np.ndarray  # int64 [n], the shard whose record is this video's latest
    reasons: dict[str, str]  # failed video id -> reason
    shard_id: np.ndarray  # int64 [s], sorted
    shard_size: np.ndarray  # int64 [s]
    shard_sha256: np.ndarray  # S64 [s]

    @classmethod
    def empty(cls) -> Catalog:
        return cls(np.zeros(0, "S1"), np.zeros(0, np.uint8), np.zeros(0, np.int64), {},
                   np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, "S64"))

    def __len__(self) -> int:
        return int(self.video_id.shape[0])

    def find(self, video_id: str) -> int:
        """Row of `video_id`, or -1."""
        key = video_id.encode()
        row = int(np.searchsorted(self.video_id, key))
        if row < len(self) and self.video_id[row] == key:
            return row
        return -1

    def rows(self, video_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Rows of many ids at once (-1 where absent): one vectorised search instead of a Python loop."""
        keys = np.asarray(video_ids, dtype="S") if not isinstance(video_ids, np.ndarray) or video_ids.dtype.kind != "S" else video_ids
        if len(self) == 0 or keys.size == 0:
            return np.full(keys.shape, -1, np.int64)
        rows = np.searchsorted(self.video_id, keys)
        clipped = np.minimum(rows, len(self) - 1)
        return np.where(self.video_id[clipped] == keys, clipped, -1)


# -- the catalog file ----------------------------------------------------------------------------------------


def read_catalog(location) -> Catalog:
    """The folded catalog of a store (empty when the store has none yet)."""
    try:
        data = location.read_bytes(CATALOG)
    except FileNotFoundError:
        return Catalog.empty()
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            failed_ids = h5["failures/video_id"][()]
            reasons = h5["failures/reason"].asstr()[()] if failed_ids.size else []
            return Catalog(
                video_id=h5["videos/video_id"][()],
                status=h5["videos/status"][()].astype(np.uint8),
                shard=h5["videos/shard"][()].astype(np.int64),
                reasons={v.decode(): r for v, r in zip(failed_ids, reasons)},
                shard_id=h5["shards/shard"][()].astype(np.int64),
                shard_size=h5["shards/size"][()].astype(np.int64),
                shard_sha256=h5["shards/sha256"][()],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"{location.url_of(CATALOG)}: unreadable store catalog ({exc})") from None


def catalog_bytes(catalog: Catalog, attrs: dict[str, Any]) -> bytes:
    """The catalog as the bytes of an HDF5 file (written whole, then put in place atomically)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=("v110", "latest")) as h5:
        for key, value in attrs.items():
            h5.attrs[key] = value
        videos = h5.create_group("videos")
        videos.create_dataset("video_id", data=_fixed(catalog.video_id))
        videos.create_dataset("status", data=catalog.status.astype(np.uint8))
        videos.create_dataset("shard", data=catalog.shard.astype(np.int64))
        failures = h5.create_group("failures")
        failed = sorted(catalog.reasons)
        failures.create_dataset("video_id", data=_fixed(np.asarray(failed, dtype="S")))
        failures.create_dataset("reason", data=[catalog.reasons[v] for v in failed], dtype=h5py.string_dtype())
        shards = h5.create_group("shards")
        shards.create_dataset("shard", data=catalog.shard_id.astype(np.int64))
        shards.create_dataset("size", data=catalog.shard_size.astype(np.int64))
        shards.create_dataset("sha256", data=_fixed(catalog.shard_sha256, 64))
    return buffer.getvalue()


def _fixed(array: np.ndarray, width: int = 1) -> np.ndarray:
    """A bytes array with at least one byte per item (HDF5 has no zero-length strings)."""
    array = np.asarray(array, dtype="S")
    return array.astype(f"S{max(width, array.dtype.itemsize, 1)}")


# -- the commit log ------------------------------------------------------------------------------------------


def log_record(shard_id: int, name: str, size: int, sha256: str, videos: dict[str, dict[str, Any]]) -> dict:
    return {"shard": int(shard_id), "name": name, "size": int(size), "sha256": sha256,
            "videos": {v: {k: e[k] for k in ("status", "reason") if k in e} for v, e in videos.items()}}


def log_object(shard_id: int) -> str:
    return f"{LOG_DIR}/shard-{shard_id:07d}.json"


def append_log(location, record: dict) -> None:
    """Make one commit durable: a line appended and fsynced (local), or one object (object storage)."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if not location.is_local:
        location.write_bytes(log_object(record["shard"]), line.encode())
        return
    with open(location.path(LOG), "ab") as f:
        f.write(line.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read_log(location, repair: bool = False) -> list[dict]:
    """Records not yet folded into the catalog, in commit order.

    A local log whose last line is incomplete was cut by a kill during the append: that commit never returned,
    so the line is ignored (and with `repair`, which only the store's writer may ask for, cut off so that the
    next append starts on a line of its own)."""
    if not location.is_local:
        names = sorted(n for n in location.listdir(LOG_DIR) if n.endswith(".json"))
        return [json.loads(location.read_bytes(f"{LOG_DIR}/{n}")) for n in names]
    try:
        with open(location.path(LOG), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    end = data.rfind(b"\n") + 1  # bytes after the last newline: an append cut short
    for line in data[:end].splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise UsageError(f"{location.url_of(LOG)}: damaged commit log line {line[:60]!r}") from None
    if repair and end < len(data):
        with open(location.path(LOG), "rb+") as f:
            f.truncate(end)
            os.fsync(f.fileno())
    return records


def clear_log(location, shard_ids: Iterable[int]) -> None:
    """Delete the log entries of these shards (in the catalog now)."""
    if location.is_local:
        location.remove(LOG)
        return
    for shard_id in shard_ids:
        location.remove(log_object(shard_id))


# -- merging records into a catalog -------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """One committed shard in compact form (arrays, not a dict per video): what a run keeps of its commits
    until it folds them, about 40 bytes per video."""

    shard: int
    size: int
    sha256: str
    video_id: np.ndarray  # S[k]
    status: np.ndarray  # uint8 [k]
    reasons: dict[str, str]  # the failed ones

    @classmethod
    def of(cls, record: dict) -> Commit:
        videos = record["videos"]
        return cls(
            shard=int(record["shard"]), size=int(record["size"]), sha256=str(record["sha256"]),
            video_id=np.asarray(list(videos), dtype="S") if videos else np.zeros(0, "S1"),
            status=np.asarray([_CODES[e["status"]] for e in videos.values()], np.uint8),
            reasons={v: e.get("reason", "") for v, e in videos.items() if e["status"] == "failed"},
        )


def merge(base: Catalog, records: Sequence[dict | Commit]) -> Catalog:
    """`base` with `records` (log records or `Commit`s) applied; per video the record of the highest shard wins
    (ties: the later record)."""
    if not records:
        return base
    commits = [r if isinstance(r, Commit) else Commit.of(r) for r in records]
    ids = np.concatenate([c.video_id for c in commits])
    codes = np.concatenate([c.status for c in commits])
    shards = np.concatenate([np.full(c.video_id.shape[0], c.shard, np.int64) for c in commits])
    reasons = {(v, c.shard): r for c in commits for v, r in c.reasons.items()}
    table = {c.shard: (c.size, c.sha256) for c in commits}
    return _merge_arrays(base, ids, codes, shards, reasons, table)


def _merge_arrays(base: Catalog, ids, codes, shards, reasons: dict, table: dict) -> Catalog:
    # The winner per id among the new records: highest shard, then latest position.
    order = np.lexsort((np.arange(ids.size), shards, ids))
    ids, codes, shards = ids[order], codes[order], shards[order]
    last = np.ones(ids.size, bool)
    last[:-1] = ids[1:] != ids[:-1]
    ids, codes, shards = ids[last], codes[last], shards[last]
    ids = ids.astype(f"S{max(ids.dtype.itemsize, base.video_id.dtype.itemsize, 1)}")

    rows = base.rows(ids)
    present = rows >= 0
    # A record older than what the catalog holds (a folded log entry replayed) does not win.
    wins = np.ones(ids.size, bool)
    if len(base):
        wins = ~present | (shards >= base.shard[np.maximum(rows, 0)])
    status, shard = base.status.copy(), base.shard.copy()
    update = present & wins
    status[rows[update]] = codes[update]
    shard[rows[update]] = shards[update]
    new = ~present
    positions = np.searchsorted(base.video_id, ids[new])
    video_id = np.insert(base.video_id.astype(ids.dtype), positions, ids[new])
    status = np.insert(status, positions, codes[new])
    shard = np.insert(shard, positions, shards[new])

    merged_reasons = dict(base.reasons)
    for key, code, shard_id, won in zip(ids.tolist(), codes.tolist(), shards.tolist(), wins.tolist()):
        if not won:
            continue
        video_id_str = key.decode()
        if code == FAILED:
            merged_reasons[video_id_str] = reasons.get((video_id_str, shard_id), "")
        else:
            merged_reasons.pop(video_id_str, None)

    shard_ids = np.asarray(sorted(table), np.int64)
    known = np.isin(shard_ids, base.shard_id)
    sizes = np.asarray([table[s][0] for s in shard_ids.tolist()], np.int64)
    shas = np.asarray([table[s][1] for s in shard_ids.tolist()], "S64")
    add = ~known
    all_ids = np.concatenate([base.shard_id, shard_ids[add]])
    order = np.argsort(all_ids, kind="stable")
    return Catalog(
        video_id=video_id, status=status, shard=shard, reasons=merged_reasons,
        shard_id=all_ids[order],
        shard_size=np.concatenate([base.shard_size, sizes[add]])[order],
        shard_sha256=np.concatenate([base.shard_sha256.astype("S64"), shas[add]])[order],
    )


# -- the view every run and reader gets ----------------------------------------------------------------------


class Recorded:
    """What a store records: a read-only view over a catalog, plus the commits of the current run.

        recorded.status(video_id) -> "done" | "failed" | None
        recorded.reason(video_id) -> str | None
        video_id in recorded; len(recorded); recorded.count("done")
        recorded.status_codes(ids)  -> uint8 array (0 none, 1 done, 2 failed), one vectorised lookup

    Commits are kept as records and merged into the catalog arrays when a query needs them (once per batch of
    commits), so committing stays O(shard) and the run's memory is arrays, not a dict per video.
    """

    __slots__ = ("_base", "_pending", "_merged", "_done_ids", "_counts")

    def __init__(self, catalog: Catalog, records: Sequence[dict] = ()) -> None:
        self._base = catalog
        self._pending: list[Commit] = [Commit.of(r) for r in records]
        self._merged: Catalog | None = None
        self._done_ids: list[str] | None = None
        self._counts: dict[int, int] = {}

    def add(self, record: dict) -> None:
        self._pending.append(Commit.of(record))
        self._merged = None
        self._done_ids = None
        self._counts = {}

    @property
    def catalog(self) -> Catalog:
        """Everything recorded, as one merged catalog."""
        if self._merged is None:
            self._merged = merge(self._base, self._pending)
        return self._merged

    def fold(self) -> Catalog:
        """Merge the pending commits into the base for good (after the catalog file was written)."""
        self._base, self._pending = self.catalog, []
        return self._base

    @property
    def pending(self) -> list[Commit]:
        """Records not in the base catalog (the unfolded log, then this run's commits)."""
        return self._pending

    @property
    def base_shards(self) -> np.ndarray:
        """Shard ids of the base catalog (what the catalog file held when this view was made, or last folded)."""
        return self._base.shard_id

    def status(self, video_id: str) -> str | None:
        catalog = self.catalog
        row = catalog.find(video_id)
        return None if row < 0 else _NAMES[int(catalog.status[row])]

    def reason(self, video_id: str) -> str | None:
        return self.catalog.reasons.get(video_id)

    def shard(self, video_id: str) -> int | None:
        catalog = self.catalog
        row = catalog.find(video_id)
        return None if row < 0 else int(catalog.shard[row])

    def status_codes(self, video_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        catalog = self.catalog
        rows = catalog.rows(video_ids)
        return np.where(rows >= 0, catalog.status[np.maximum(rows, 0)] if len(catalog) else 0, 0).astype(np.uint8)

    def count(self, status: str) -> int:
        code = _CODES[status]
        if code not in self._counts:
            self._counts[code] = int(np.count_nonzero(self.catalog.status == code))
        return self._counts[code]

    def __contains__(self, video_id: object) -> bool:
        return isinstance(video_id, str) and self.catalog.find(video_id) >= 0

    def __len__(self) -> int:
        return len(self.catalog)

    def done_ids(self) -> list[str]:
        """Sorted ids of done videos (computed once, then cached until the next commit)."""
        if self._done_ids is None:
            catalog = self.catalog
            self._done_ids = catalog.video_id[catalog.status == DONE].astype(str).tolist()
        return self._done_ids

    def failed_ids(self) -> list[str]:
        catalog = self.catalog
        return catalog.video_id[catalog.status == FAILED].astype(str).tolist()

    # The dict-like reading of schema-1 code (`recorded.get(v)["status"]`, iteration over ids).
    def get(self, video_id: str, default=None) -> dict[str, Any] | None:
        catalog = self.catalog
        row = catalog.find(video_id)
        if row < 0:
            return default
        entry = {"status": _NAMES[int(catalog.status[row])], "shard": int(catalog.shard[row])}
        if entry["status"] == "failed":
            entry["reason"] = catalog.reasons.get(video_id, "")
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self.catalog.video_id.astype(str).tolist())
