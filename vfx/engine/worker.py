"""`ShardWorker`: runs shards of one stage in one process (a Ray actor, or the driver for --engine serial).

The driver calls `open_shard`, then `next_video` once per video, then `close_shard`. One call per video lets
the driver know exactly which video was in flight when a worker process died, and which had finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfx.engine.plan import Shard
from vfx.engine.stage import Stage
from vfx.types import VideoOutput
from vfx.errors import VfxError
from vfx.types import VideoItem
from vfx.store.shard import ShardReceipt, ShardWriter, publish_shard, scratch_dir_for


@dataclass(frozen=True)
class VideoResult:
    video_id: str
    status: str  # "done" | "failed"
    reason: str = ""


def describe_failure(item: VideoItem, exc: BaseException) -> str:
    """One line naming the file and the reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, VfxError):
        return text if item.path in text else f"{item.path}: {text}"
    return f"{item.path}: {type(exc).__name__}: {text}"


class ShardWorker:
    def __init__(self, stage: Stage, store_url: str):
        self.stage = stage
        self.store_url = store_url
        self.scratch = scratch_dir_for(store_url)
        self._writer: ShardWriter | None = None
        self._results: Iterator[tuple[VideoItem, VideoOutput | Exception | str]] | None = None
        stage.setup()

    def ready(self) -> bool:
        return True

    def open_shard(self, shard: Shard, skip: dict[str, str]) -> None:
        """Start a shard. Videos in `skip` are recorded as failed with the given reason, not processed."""
        if self._writer is not None:
            self._writer.abort()
        self._writer = ShardWriter(self.scratch, shard.shard_id, self.stage.kind)
        self._results = self._iterate(shard.items, skip)

    def _iterate(self, items: tuple[VideoItem, ...], skip: dict[str, str]):
        results = self.stage.process_many(i for i in items if i.video_id not in skip)
        for item in items:
            if item.video_id in skip:
                yield item, skip[item.video_id]
            else:
                yield next(results)

    def next_video(self) -> VideoResult:
        assert self._writer is not None and self._results is not None, "open_shard first"
        item, output = next(self._results)
        if isinstance(output, str):
            reason = output
        elif isinstance(output, Exception):
            reason = describe_failure(item, output)
        else:
            try:
                self._writer.write(item, output)
                return VideoResult(item.video_id, "done")
            except Exception as exc:  # noqa: BLE001 - decoding errors surface while streaming; record, go on
                reason = describe_failure(item, exc)
        self._writer.fail(item.video_id, reason)
        return VideoResult(item.video_id, "failed", reason)

    def close_shard(self) -> ShardReceipt:
        """Finish and verify the shard, publish it into the store; the driver commits the receipt."""
        assert self._writer is not None, "open_shard first"
        writer, self._writer, self._results = self._writer, None, None
        try:
            shard_file = writer.finish()
        except BaseException:
            writer.abort()
            raise
        return publish_shard(shard_file, self.store_url)
