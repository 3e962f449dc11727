"""`run_stage`: plan the shards of a run, execute them (Ray or in-process), report progress, index the store.

The driver owns retries and progress. A video that raises is recorded as failed by the worker and the run goes
on. A worker process that dies (segfault, SIGKILL, OOM kill) loses only its shard in flight: the driver starts
a new worker and retries the shard; the video that was in flight when a worker died twice is recorded as
failed ("worker died while processing") instead of being tried a third time.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vfx.engine.options import RunOptions
from vfx.engine.plan import Shard, balance_shards, plan_shards
from vfx.engine.stage import Stage
from vfx.engine.worker import ShardWorker, VideoResult
from vfx.errors import UsageError, VfxError
from vfx.types import VideoItem
from vfx.store.writer import StoreWriter

#: A video in flight when its worker died this many times is recorded as failed.
MAX_WORKER_DEATHS = 2
#: A shard whose open/close keeps failing (not a video's fault: disk full, setup crash) stops the run.
MAX_SHARD_ATTEMPTS = 4
WORKER_DIED = "worker died while processing"


@dataclass
class RunSummary:
    store: Path
    kind: str
    total: int = 0  # items given
    skipped: int = 0  # already recorded by an earlier run
    done: int = 0
    failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # of this run
    elapsed_sec: float = 0.0
    engine: str = "serial"

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def line(self) -> str:
        rate = self.done / self.elapsed_sec if self.elapsed_sec > 0 else 0.0
        return (
            f"{self.kind}: {self.done} done, {self.failed} failed, {self.skipped} already in the store "
            f"({self.elapsed_sec:.1f} s, {rate:.2f} videos/s) -> {self.store}"
        )


def run_stage(
    stage: Stage,
    items: list[VideoItem],
    output: str | os.PathLike,
    options: RunOptions = RunOptions(),
) -> RunSummary:
    """Run `stage` over `items` into the store at `output`, resuming whatever an earlier run finished."""
    engine, workers, address, progress = options.engine, options.workers, options.address, options.progress
    if not items:
        raise UsageError("no videos to process")
    started = time.perf_counter()
    writer = StoreWriter.open(output, stage.kind, stage.provenance(), overwrite=options.overwrite)
    store = writer.path
    try:
        shards = plan_shards(items, writer.recorded, writer.next_shard_id(), options.shard_size, options.retry_failed)
    except BaseException:
        writer.close()
        raise
    todo = sum(len(s.items) for s in shards)
    summary = RunSummary(store, stage.kind, total=len(items), skipped=len(items) - todo, engine=engine)

    bar = tqdm(total=todo, unit="video", disable=not progress or todo == 0, dynamic_ncols=True, leave=True)

    def on_result(result: VideoResult, undo: bool = False) -> None:
        sign = -1 if undo else 1
        if result.status == "done":
            summary.done += sign
        else:
            summary.failed += sign
            if undo:
                summary.failures.pop(result.video_id, None)
            else:
                summary.failures[result.video_id] = result.reason
        bar.update(sign)
        bar.set_postfix(done=summary.done, failed=summary.failed, refresh=False)

    try:
        if shards:
            stage.prepare()
            if engine == "serial":
                _run_serial(stage, writer, shards, on_result)
            else:
                _run_ray(stage, writer, shards, on_result, workers=workers, address=address)
    finally:
        bar.close()
        writer.close()
    summary.elapsed_sec = time.perf_counter() - started
    return summary


def _run_serial(stage: Stage, writer: StoreWriter, shards: list[Shard], on_result) -> None:
    worker = ShardWorker(stage, writer.url)
    for shard in shards:
        worker.open_shard(shard, {})
        for _ in shard.items:
            on_result(worker.next_video())
        writer.commit(worker.close_shard())


def init_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to Ray. Returns True when this call started a local cluster (then the caller shuts it down).

    Default: an embedded cluster on this machine (`address="local"`); `--address auto|ray://...` or
    RAY_ADDRESS join an existing one.
    """
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == "local":
        # Ray starts workers at nice 15, as if they were background help; here they do the whole job (the
        # driver only waits), so on a shared machine they would yield the cores to every other process.
        kwargs.update(include_dashboard=False, num_cpus=num_cpus, _system_config={"worker_niceness": 0})
        # The embedded cluster keeps Ray's default token authentication; its notice that it did so would
        # open every run's output.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot connect to Ray at {address!r}: {exc}") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on: Ray itself keeps retrying such an address for minutes."""
    import socket

    target = address.removeprefix("ray://")
    if address in ("local", "auto") or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot connect to Ray at {address!r}: {exc}") from None


@dataclass
class _Slot:
    """One worker actor and the shard it is running: refs of open, next_video x N, close, consumed in order."""

    actor: Any
    shard: Shard | None = None
    refs: list[Any] = field(default_factory=list)
    pos: int = 0
    results: list[VideoResult] = field(default_factory=list)


def _run_ray(stage: Stage, writer: StoreWriter, shards: list[Shard], on_result, *, workers: int | None, address: str | None):
    import ray
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

    resources = stage.resources()
    cpus_per_worker = float(resources.get("num_cpus", 1))
    local_cpus = None
    if workers is not None and (address or os.environ.get("RAY_ADDRESS") or "local") == "local":
        # The user asked for N worker processes: give the embedded cluster room for them.
        local_cpus = max(os.cpu_count() or 1, int(workers * cpus_per_worker + 0.999))
    started = init_ray(address, local_cpus)
    actor_cls = ray.remote(max_restarts=0, max_task_retries=0, **resources)(ShardWorker)
    available = ray.cluster_resources()
    for name, key in (("num_gpus", "GPU"), ("num_cpus", "CPU")):
        if resources.get(name, 0) > available.get(key, 0):
            if started:
                ray.shutdown()
            raise UsageError(
                f"each worker needs {resources[name]:g} {key} but the Ray cluster has {available.get(key, 0):g}"
               
            )
    if workers is None:
        if resources.get("num_gpus"):
            workers = int(available.get("GPU", 0) // resources["num_gpus"]) or 1
        else:
            workers = max(1, int(available.get("CPU", 1) // max(cpus_per_worker, 1e-9)))
    shards = balance_shards(shards, workers)
    queue: deque[Shard] = deque(shards)
    skips: dict[str, str] = {}
    deaths: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    slots = [_Slot(actor_cls.remote(stage, writer.url)) for _ in range(min(workers, len(shards)))]

    def assign(slot: _Slot) -> None:
        slot.shard = queue.popleft() if queue else None
        slot.pos, slot.results, slot.refs = 0, [], []
        if slot.shard is None:
            return
        attempts[slot.shard.shard_id] += 1
        shard_skips = {i.video_id: skips[i.video_id] for i in slot.shard.items if i.video_id in skips}
        slot.refs = [slot.actor.open_shard.remote(slot.shard, shard_skips)]
        slot.refs += [slot.actor.next_video.remote() for _ in slot.shard.items]
        slot.refs.append(slot.actor.close_shard.remote())

    def retry(slot: _Slot, reason: str, worker_died: bool) -> None:
        shard = slot.shard
        assert shard is not None
        for result in slot.results:  # the shard's file is gone: its videos are redone
            on_result(result, undo=True)
        if 1 <= slot.pos <= len(shard.items) and worker_died:
            culprit = shard.items[slot.pos - 1].video_id
            deaths[culprit] += 1
            if deaths[culprit] >= MAX_WORKER_DEATHS:
                skips[culprit] = f"{shard.items[slot.pos - 1].path}: {WORKER_DIED} ({deaths[culprit]} times)"
        elif attempts[shard.shard_id] >= MAX_SHARD_ATTEMPTS:
            raise VfxError(f"shard {shard.shard_id} failed {attempts[shard.shard_id]} times; last error: {reason}")
        queue.appendleft(shard)
        if worker_died:
            ray.kill(slot.actor, no_restart=True)
            slot.actor = actor_cls.remote(stage, writer.url)
        assign(slot)

    try:
        for slot in slots:
            assign(slot)
        while any(s.shard is not None for s in slots):
            waiting = {s.refs[s.pos]: s for s in slots if s.shard is not None}
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=1.0)
            for ref in ready:
                slot = waiting[ref]
                try:
                    value = ray.get(ref)
                except (RayActorError, WorkerCrashedError) as exc:
                    _raise_if_setup_failed(exc)
                    retry(slot, _one_line(exc), worker_died=True)
                    continue
                except RayTaskError as exc:  # open/close raised (e.g. disk full): not one video's fault
                    retry(slot, _one_line(exc), worker_died=False)
                    continue
                assert slot.shard is not None
                if 1 <= slot.pos <= len(slot.shard.items):
                    slot.results.append(value)
                    on_result(value)
                elif slot.pos == len(slot.shard.items) + 1:
                    writer.commit(value)
                slot.pos += 1
                if slot.pos == len(slot.refs):
                    assign(slot)
    finally:
        for slot in slots:
            ray.kill(slot.actor, no_restart=True)
        if started:
            ray.shutdown()


def _raise_if_setup_failed(exc: Exception) -> None:
    """A Python exception in the stage's setup (bad weights, missing GPU) stops the run with its message.

    Ray reports it as the actor's death with the creation task's traceback in the text; a vfx error in there
    is re-raised as itself so the user sees the one-line message, not a Ray traceback.
    """
    text = str(exc)
    if "creation task" not in text and "__init__" not in text:
        return
    import vfx.errors

    found = re.findall(r"vfx\.errors\.(\w+): (.+)", text)
    if found:
        name, message = found[-1]
        raise getattr(vfx.errors, name, VfxError)(message.strip()) from None
    raise VfxError(f"worker setup failed: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
