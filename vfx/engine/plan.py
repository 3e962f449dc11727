"""Plan a run: which videos still need work, and shards cut from them by bytes as well as by count.

What needs work is a pure function of the items and of what the store records (`pending`): a rerun skips
every recorded video. Shards are cut as workers ask for them (`ShardPlan.next`), numbered after every shard
id the store has used, so a shard file is never written twice. A shard holds at most `max_videos` videos
and about `target_bytes`: before anything is committed the first shards are small probes
(`PROBE_VIDEOS`); each committed shard's size then refines the bytes per video, and the next shards are cut
to the target (a frames shard of ~4 MB videos holds tens, a features shard of ~30 KB videos thousands).
With several workers every cut also takes at most 1/(`PER_WORKER` x workers) of what is left (guided
self-scheduling, Polychronopoulos & Kuck 1987): a small run still gives every worker several shards, and the
shards shrink towards the end of a large one so that no worker is left idle while one finishes a big shard.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter

from vfx.errors import UsageError
from vfx.types import VideoItem, VideoItems

#: Videos per shard at most (--shard-size), whatever the bytes rule allows: a shard is also the unit of work
#: lost by a killed run and redone by a retry, so even tiny outputs (features) are not packed without limit.
DEFAULT_SHARD_SIZE = 4096
#: Bytes per shard file aimed at (--shard-mb overrides a stage's `shard_bytes`): large enough that a store of
#: 10^6 videos is a few thousand files, small enough that a shard shipped through Ray's object store or
#: redone after a kill is a moment's work.
DEFAULT_SHARD_BYTES = 128 << 20
#: Videos in each shard cut before any shard of the run was committed (nothing is known of their size yet).
PROBE_VIDEOS = 16
#: With W workers a cut takes at most what is left / (PER_WORKER * W): about eight shards each on small runs.
PER_WORKER = 8


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: int
    items: tuple[VideoItem, ...]


@dataclass(frozen=True, slots=True)
class Pending:
    todo: list[VideoItem]  # sorted by video_id
    failed_earlier: int  # recorded as failed and not retried


def _status_codes(recorded, video_ids: list[str]) -> list[int]:
    """One code per id: 0 nothing recorded, 1 done, 2 failed. The store's `Recorded` answers for all ids in one
    vectorised lookup (10^6 single lookups would cost seconds); a plain {video_id: {"status": ...}} mapping,
    as tests give, one by one."""
    codes = getattr(recorded, "status_codes", None)
    if callable(codes):
        return codes(video_ids).tolist()
    names = {None: 0, "done": 1, "failed": 2}
    return [names[(recorded.get(v) or {}).get("status")] for v in video_ids]


def sorted_unique(items: Sequence[VideoItem]) -> list[VideoItem]:
    """`items` sorted by video_id (no copy of the order work when they already are); a repeated id is an error."""
    ids = [item.video_id for item in items]
    if all(map(str.__lt__, ids, islice(ids, 1, None))):  # strictly increasing: sorted and unique, in C
        return list(items)
    ordered = sorted(items, key=attrgetter("video_id"))
    for before, item in zip(ordered, islice(ordered, 1, None)):
        if before.video_id == item.video_id:
            raise UsageError(f"duplicate video id {item.video_id!r} ({item.path})")
    return ordered


def pending(items: Sequence[VideoItem], recorded, retry_failed: bool = False) -> Pending:
    """The items with nothing recorded (and the failed ones too with `retry_failed`), sorted by video_id.

    `VideoItems` (columns, sorted and unique already) are looked up by their id column, and `VideoItem`s are
    made for the videos to do only: a rerun of a finished 10^6-video run builds none.
    """
    columns = items if isinstance(items, VideoItems) else None
    if columns is None:
        items = sorted_unique(items)
    if len(recorded) == 0:
        return Pending(list(items), 0)
    codes = _status_codes(recorded, columns.video_ids if columns is not None else [item.video_id for item in items])
    wanted = (0, 2) if retry_failed else (0,)
    if columns is not None:
        todo = columns.take(i for i, code in enumerate(codes) if code in wanted)
    else:
        todo = [item for item, code in zip(items, codes) if code in wanted]
    return Pending(todo, 0 if retry_failed else codes.count(2))


class ShardPlan:
    """The rest of a run's work, cut into shards as workers ask for them, and the shards to redo first."""

    def __init__(
        self,
        todo: Sequence[VideoItem],
        first_shard_id: int,
        max_videos: int = DEFAULT_SHARD_SIZE,
        target_bytes: int = DEFAULT_SHARD_BYTES,
        workers: int | None = None,
    ):
        if max_videos < 1:
            raise UsageError(f"shard size must be >= 1, got {max_videos}")
        if target_bytes < 1:
            raise UsageError(f"shard target must be >= 1 byte, got {target_bytes}")
        self.todo = todo
        self.cursor = 0
        self.next_id = first_shard_id
        self.max_videos = max_videos
        self.target_bytes = target_bytes
        self.workers = workers
        self.redo: deque[Shard] = deque()
        self.committed_bytes = 0
        self.committed_videos = 0

    @property
    def videos_left(self) -> int:
        """Videos not yet cut into a shard (shards to redo not counted)."""
        return len(self.todo) - self.cursor

    def __bool__(self) -> bool:
        return bool(self.redo) or self.cursor < len(self.todo)

    @property
    def bytes_per_video(self) -> float | None:
        """Mean bytes per done video over the shards committed so far, None before the first."""
        return self.committed_bytes / self.committed_videos if self.committed_videos else None

    def cut_size(self) -> int:
        """Videos in the next new shard."""
        per_video = self.bytes_per_video
        size = self.max_videos if per_video is None else min(self.max_videos, int(self.target_bytes // per_video))
        if per_video is None:
            size = min(size, PROBE_VIDEOS)
        if self.workers:
            size = min(size, math.ceil(self.videos_left / (PER_WORKER * self.workers)))
        return max(1, size)

    def next(self) -> Shard:
        """A shard to redo if there is one, else a new shard cut from the videos left."""
        if self.redo:
            return self.redo.popleft()
        if self.cursor >= len(self.todo):
            raise IndexError("no videos left to plan")
        end = min(len(self.todo), self.cursor + self.cut_size())
        shard = Shard(self.next_id, tuple(self.todo[self.cursor : end]))
        self.cursor, self.next_id = end, self.next_id + 1
        return shard

    def put_back(self, shard: Shard) -> None:
        """A shard none of whose videos were committed: first in line again, same id."""
        self.redo.appendleft(shard)

    def committed(self, size_bytes: int, done_videos: int) -> None:
        """A shard of `size_bytes` holding `done_videos` was committed: refine the bytes per video."""
        if done_videos > 0:
            self.committed_bytes += size_bytes
            self.committed_videos += done_videos

    def committed_receipt(self, receipt) -> None:
        self.committed(receipt.size, sum(1 for e in receipt.videos.values() if e.get("status") == "done"))
