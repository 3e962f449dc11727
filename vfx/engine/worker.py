"""`ShardWorker`: runs shards of one stage in one process (a Ray actor, or the driver for --engine serial).

The driver calls `start` once, then per shard `open_shard`, `next_video` once per video and `close_shard`,
one call at a time. One call per video lets the driver know exactly which video was in flight when a worker
died or overran its deadline, and which had finished. `close_shard` returns a receipt (what was written,
where, its size and checksum); nothing counts as done until the driver has committed that receipt.

A worker never assumes it sees the driver's disk: it writes to local scratch, then publishes into the store,
or (`ship`, when this node does not see a local store) hands the bytes back inside the receipt.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from vfx.engine.plan import Shard
from vfx.engine.stage import Stage
from vfx.errors import VfxError
from vfx.store.shard import ShardReceipt, ShardWriter, publish_shard, scratch_dir_for, store_visible
from vfx.types import VideoItem, VideoOutput


@dataclass(frozen=True)
class VideoResult:
    video_id: str
    status: str  # "done" | "failed"
    reason: str = ""
    units: int = 0  # stage units (frames, pairs, clips) processed for this video


def describe_failure(item: VideoItem, exc: BaseException) -> str:
    """One line naming the file and the reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, VfxError):
        return text if item.path in text else f"{item.path}: {text}"
    return f"{item.path}: {type(exc).__name__}: {text}"


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


class ShardWorker:
    def __init__(self, stage: Stage, store_url: str):
        # Light on purpose: a Ray actor is "placed" when this returns; the stage's setup runs in `start`.
        self.stage = stage
        self.store_url = store_url
        self.ship = False
        self._writer: ShardWriter | None = None
        self._results: Iterator[tuple[VideoItem, VideoOutput | Exception | str]] | None = None
        self._lock = threading.Lock()
        self._units = 0  # of the current video
        self._total: int | None = None

    def start(self, threads: int | None, token: str | None) -> dict:
        """Set up the stage (threads first) and say where this worker runs and whether it sees the store."""
        if threads is not None:
            self.stage.set_threads(threads)
        self.stage._progress = self._on_progress
        self.stage.setup()
        sees = True if token is None else store_visible(self.store_url, token)
        self.ship = not sees
        self.scratch = scratch_dir_for(self.store_url) if sees else tempfile.mkdtemp(prefix="vfx-scratch-")
        return {"host": socket.gethostname(), "ip": _node_ip(), "sees_store": sees}

    def _on_progress(self, done: int, total: int | None) -> None:
        with self._lock:
            self._units += done
            if total is not None:
                self._total = total

    def poll(self) -> tuple[int, int | None]:
        """Units done of the current video and its total (called concurrently with `next_video`)."""
        with self._lock:
            return self._units, self._total

    def open_shard(self, shard: Shard, skip: dict[str, str]) -> None:
        """Start a shard. Videos in `skip` are recorded as failed with the given reason, not processed."""
        self.abort_shard()
        self._writer = ShardWriter(self.scratch, shard.shard_id, self.stage.kind)
        self._results = self._iterate(shard.items, skip)

    def _iterate(self, items: tuple[VideoItem, ...], skip: dict[str, str]):
        todo = [i for i in items if i.video_id not in skip]
        local = {i.video_id: i for i in todo}
        downloads: dict[str, str] = {}

        def fetched():  # URL inputs are downloaded to scratch when the stage asks for them, removed after
            for item in todo:
                if is_url(item.path):
                    try:
                        downloads[item.video_id] = _download(item.path, self.scratch)
                    except (OSError, ValueError, ImportError) as exc:
                        downloads[item.video_id] = ""
                        local[item.video_id] = replace(item, path=f"{item.path} (download failed: {exc})")
                        yield local[item.video_id]
                        continue
                    local[item.video_id] = replace(item, path=downloads[item.video_id])
                yield local[item.video_id]

        results = self.stage.process_many(fetched())
        try:
            for item in items:
                if item.video_id in skip:
                    yield item, skip[item.video_id]
                    continue
                _, output = next(results)
                yield item, output  # the original item: source_path records the URL, not the scratch copy
                path = downloads.pop(item.video_id, "")
                if path:
                    os.unlink(path)
        finally:
            for path in downloads.values():
                if path and os.path.exists(path):
                    os.unlink(path)

    def next_video(self) -> VideoResult:
        assert self._writer is not None and self._results is not None, "open_shard first"
        with self._lock:
            self._units, self._total = 0, None
        item, output = next(self._results)
        if isinstance(output, str):
            reason = output
        elif isinstance(output, Exception):
            reason = describe_failure(item, output)
        else:
            try:
                self._writer.write(item, output)
                return VideoResult(item.video_id, "done", units=self._units)
            except Exception as exc:  # noqa: BLE001 - decoding errors surface while streaming; record, go on
                reason = describe_failure(item, exc)
        self._writer.fail(item.video_id, reason)
        return VideoResult(item.video_id, "failed", reason, units=self._units)

    def close_shard(self) -> ShardReceipt:
        """Finish and verify the shard, publish it (or ship its bytes); the driver commits the receipt."""
        assert self._writer is not None, "open_shard first"
        writer, self._writer, self._results = self._writer, None, None
        try:
            shard_file = writer.finish()
        except BaseException:
            writer.abort()
            raise
        return publish_shard(shard_file, self.store_url, ship=self.ship)

    def abort_shard(self) -> None:
        """Drop the shard in progress (its scratch file too)."""
        if self._writer is not None:
            results, self._results = self._results, None
            if results is not None:
                results.close()
            self._writer.abort()
            self._writer = None


def _download(url: str, scratch: str) -> str:
    """Copy an object-store video to local scratch (fsspec; credentials from the standard variables)."""
    import fsspec

    os.makedirs(scratch, exist_ok=True)
    suffix = os.path.splitext(url.rsplit("/", 1)[-1])[1]
    fd, path = tempfile.mkstemp(prefix="input-", suffix=suffix, dir=scratch)
    try:
        with os.fdopen(fd, "wb") as out, fsspec.open(url, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _node_ip() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except ImportError:
        pass
    return "127.0.0.1"
