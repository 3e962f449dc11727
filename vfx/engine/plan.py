"""Plan a run: which videos still need work, split into shards of a fixed size.

The plan is a pure function of the items and of what the store's ledgers already record: rerunning the same
command skips every video with a ledger entry, and new shards are numbered after every shard id already on
disk, so a shard file is never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfx.errors import UsageError
from vfx.types import VideoItem

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


def balance_shards(shards: list[Shard], workers: int, per_worker: int = 8) -> list[Shard]:
    """Split shards so that every worker gets about `per_worker` of them (sizes differ by at most one video).

    With few videos the configured size would leave workers idle (18 videos in shards of 16: one worker does
    16 while the other does 2), and videos differ in length, so several shards per worker even the load out.
    Shard ids stay consecutive from the first one, so the plan is still new ids after every id on disk.
    """
    items = [item for shard in shards for item in shard.items]
    if not shards or workers < 1:
        return shards
    count = max(len(shards), min(len(items), per_worker * workers))
    if count == len(shards):
        return shards
    first = shards[0].shard_id
    bounds = [round(n * len(items) / count) for n in range(count + 1)]
    return [Shard(first + n, tuple(items[bounds[n] : bounds[n + 1]])) for n in range(count)]
