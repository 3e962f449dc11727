"""Plan a run: which videos still need work, split into shards of a fixed size.

The plan is a pure function of the items and of what the store's ledgers already record: rerunning the same
command skips every video with a ledger entry, and new shards are numbered after every shard id already on
disk, so a shard file is never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfx.errors import UsageError
from vfx.sources import VideoItem

DEFAULT_SHARD_SIZE = 16


@dataclass(frozen=True)
class Shard:
    shard_id: int
    items: tuple[VideoItem, ...]


def plan_shards(
    items: list[VideoItem],
    recorded: dict[str, dict],
    first_shard_id: int,
    shard_size: int = DEFAULT_SHARD_SIZE,
    retry_failed: bool = False,
) -> list[Shard]:
    """Shards for the items that have no ledger entry (and failed ones too with `retry_failed`)."""
    if shard_size < 1:
        raise UsageError(f"shard size must be >= 1, got {shard_size}")
    seen: set[str] = set()
    for item in items:
        if item.video_id in seen:
            raise UsageError(f"duplicate video id {item.video_id!r} ({item.path})")
        seen.add(item.video_id)

    def pending(item: VideoItem) -> bool:
        entry = recorded.get(item.video_id)
        return entry is None or (retry_failed and entry["status"] == "failed")

    todo = sorted((i for i in items if pending(i)), key=lambda i: i.video_id)
    return [
        Shard(first_shard_id + n, tuple(todo[start : start + shard_size]))
        for n, start in enumerate(range(0, len(todo), shard_size))
    ]
