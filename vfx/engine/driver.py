"""`run_stage`: plan the shards of a run, execute them (Ray or in-process), report progress, index the store.

The driver owns retries, deadlines and progress, and is the only one that declares a video done: a worker's
`close_shard` returns a receipt, and only after `StoreWriter.commit` has checked the shard is in the store do
its videos count. A video that raises is recorded as failed by the worker and the run goes on. A worker that
dies (segfault, SIGKILL, OOM kill, its node lost) loses only its shard in flight, which is retried on whichever
worker is free first; the video that was in flight when a worker died twice is recorded as failed ("worker
died while processing"), and one that overruns its deadline as "timed out after N s".
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vfx.engine.options import RunOptions
from vfx.engine.plan import ShardPlan, pending
from vfx.engine.stage import Stage
from vfx.engine.worker import ShardWorker, VideoResult
from vfx.errors import UsageError, VfxError
from vfx.store.layout import MANIFEST, remove_incomplete
from vfx.store.location import Location
from vfx.store.writer import StoreError, StoreWriter
from vfx.types import VideoItem

#: A video in flight when its worker died this many times is recorded as failed.
MAX_WORKER_DEATHS = 2
#: A shard whose open/close keeps failing (not a video's fault: disk full, store unreachable) stops the run.
MAX_SHARD_ATTEMPTS = 4
WORKER_DIED = "worker died while processing"


class Interrupted(VfxError):
    """The run was stopped by Ctrl-C (SIGINT) after leaving the store consistent; the message says how to resume."""


@dataclass
class RunSummary:
    store: Path | str
    kind: str
    total: int = 0  # items given
    skipped: int = 0  # already recorded by an earlier run
    done: int = 0
    failed: int = 0
    failed_earlier: int = 0  # recorded as failed by an earlier run and not retried (see --retry-failed)
    failures: dict[str, str] = field(default_factory=dict)  # of this run
    elapsed_sec: float = 0.0
    engine: str = "serial"
    unit: str = "frames"
    units: int = 0  # stage units (frames, pairs, clips) of the videos committed by this run

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.failed_earlier == 0

    def line(self) -> str:
        rate = self.done / self.elapsed_sec if self.elapsed_sec > 0 else 0.0
        unit_rate = f", {self.units / self.elapsed_sec:.1f} {self.unit}/s" if self.elapsed_sec > 0 and self.units else ""
        return (
            f"{self.kind}: {self.done} done, {self.failed} failed, {self.skipped} already in the store "
            f"({self.elapsed_sec:.1f} s, {rate:.2f} videos/s{unit_rate}) -> {self.store}"
        )


def say(message: str) -> None:
    """A status line on stderr that does not break the progress bar."""
    tqdm.write(message, file=sys.stderr)


class Progress:
    """The run's single bar: committed videos only; in-flight units per second and time left in the postfix."""

    def __init__(self, todo: int, unit: str, enabled: bool):
        self.unit = unit
        self.bar = tqdm(total=todo, unit="video", disable=not enabled or todo == 0, dynamic_ncols=True, leave=True)
        self.started = time.monotonic()
        self.units = 0  # committed and in flight, for the rate
        self._shown = 0.0

    def committed(self, results: list[VideoResult], summary: RunSummary) -> None:
        for result in results:
            if result.status == "done":
                summary.done += 1
                summary.units += result.units
            else:
                summary.failed += 1
                summary.failures[result.video_id] = result.reason
        self.bar.update(len(results))
        self.show(summary, force=True)

    def show(self, summary: RunSummary, inflight_units: int = 0, eta_sec: float | None = None, force=False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < 0.5:
            return
        self._shown = now
        rate = (summary.units + inflight_units) / max(1e-9, now - self.started)
        post = {"done": summary.done, "failed": summary.failed, self.unit + "/s": f"{rate:.1f}"}
        if eta_sec is not None:
            post["video left"] = f"{eta_sec:.0f}s"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_stage(
    stage: Stage,
    items: Sequence[VideoItem],
    output: str | os.PathLike,
    options: RunOptions = RunOptions(),
) -> RunSummary:
    """Run `stage` over `items` into the store at `output`, resuming whatever an earlier run finished.

    Ctrl-C raises `Interrupted` once the store is consistent (committed shards kept, nothing half-written).
    """
    if not items:
        raise UsageError("no videos to process")
    started = time.perf_counter()
    ray_link = _RayLink(options)
    # A run that creates the store connects first: a cluster that cannot be reached leaves no store behind. A
    # store that exists is resumed, and Ray starts only if something is left to do: the rerun of a finished
    # store takes what reading its records takes, not a cluster's startup.
    if options.engine == "ray" and not _store_exists(output):
        ray_link.connect()
    writer = None
    try:
        writer = StoreWriter.open(output, stage.kind, stage.provenance(), overwrite=options.overwrite)
        summary = _run(stage, items, writer, options, ray_link)
    except KeyboardInterrupt:
        raise _interrupted(writer, output) from None
    finally:
        if writer is not None:
            writer.close()
        ray_link.close()
    summary.elapsed_sec = time.perf_counter() - started
    return summary


class _RayLink:
    """The run's connection to Ray, made once and only when needed; closed by whoever made it."""

    def __init__(self, options: RunOptions):
        self.options = options
        self.started = False
        if options.engine == "ray" and options.address is not None:
            _check_reachable(options.address)  # a wrong --address is an error even when nothing is left to do

    def connect(self) -> None:
        if not self.started:
            self.started = init_ray(self.options.address)

    def close(self) -> None:
        if self.started:
            self.started = False
            _shutdown_ray()


def _store_exists(output) -> bool:
    try:
        return Location.parse(output).exists(MANIFEST)
    except (OSError, ValueError):
        return False  # unreachable or malformed: StoreWriter.open says why, after the connection check


def _run(stage: Stage, items: Sequence[VideoItem], writer: StoreWriter, options: RunOptions, ray_link: _RayLink) -> RunSummary:
    work = pending(items, writer.recorded, options.retry_failed)
    todo = len(work.todo)
    summary = RunSummary(writer.url, stage.kind, total=len(items), skipped=len(items) - todo, engine=options.engine,
                         unit=stage.unit, failed_earlier=work.failed_earlier)  # fmt: skip
    if summary.skipped:
        earlier = f", {work.failed_earlier} failed earlier" if work.failed_earlier else ""
        say(f"resuming: {summary.skipped - summary.failed_earlier} of {len(items)} done{earlier}, {todo} to go")
    if not todo:
        return summary
    if options.engine == "ray":
        ray_link.connect()
    plan = ShardPlan(work.todo, writer.next_shard_id(), options.shard_size, options.shard_target_bytes(stage))
    stage.prepare()
    progress = Progress(todo, stage.unit, options.progress)
    try:
        if options.engine == "serial":
            _run_serial(stage, writer, plan, options, progress, summary)
        else:
            from vfx.engine.ray_pool import RayPool

            RayPool(stage, writer, options, progress, summary).run(plan)
    finally:
        progress.close()
    return summary


def _interrupted(writer: StoreWriter | None, output) -> Interrupted:
    saved = 0
    if writer is not None:
        if writer.location.is_local:
            remove_incomplete(writer.path)  # the killed workers' scratch files in STORE/tmp
        saved = writer.recorded.count("done")
    where = writer.url if writer is not None else output
    return Interrupted(f"interrupted: {saved} videos saved in {where}; run the same command to resume")


# -- in-process engine ------------------------------------------------------------------------------------


class _TimedOut(BaseException):
    """Raised in the main thread by the serial engine's SIGALRM watchdog (a BaseException so that a stage's
    `except Exception` cannot swallow it)."""


@contextmanager
def _alarm(seconds: float):
    """SIGALRM after `seconds` in the main thread. It interrupts Python code and interruptible system calls,
    not a native call that never returns: the Ray engine, which kills the worker process, is the hard bound."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_serial(stage, writer, plan: ShardPlan, options: RunOptions, progress: Progress, summary: RunSummary) -> None:
    worker = ShardWorker(stage, writer.url)
    threads = (os.cpu_count() or 1) if stage.resources().get("num_cpus", 1) is None else None
    worker.start(threads, None)
    stage._progress = _serial_progress(worker, progress, summary)
    skips: dict[str, str] = {}
    while plan:
        shard = plan.next()
        while True:  # a timed-out video is recorded as failed and its shard redone without it
            worker.open_shard(shard, {i.video_id: skips[i.video_id] for i in shard.items if i.video_id in skips})
            results = []
            try:
                for item in shard.items:
                    limit = options.timeout_for(_duration(item))
                    try:
                        with _alarm(limit):
                            results.append(worker.next_video())
                    except _TimedOut:
                        skips[item.video_id] = f"{item.path}: timed out after {limit:g} s"
                        raise
            except _TimedOut:
                worker.abort_shard()
                continue
            receipt = worker.close_shard()
            writer.commit(receipt)
            plan.committed_receipt(receipt)
            progress.committed(results, summary)
            break


def _serial_progress(worker: ShardWorker, progress: Progress, summary: RunSummary):
    def report(done: int, total: int | None) -> None:
        worker._on_progress(done, total)
        units, total = worker.poll()
        rate = units / max(1e-9, time.monotonic() - progress.started)
        eta = (total - units) / rate if total and rate > 0 else None
        progress.show(summary, inflight_units=units, eta_sec=eta)

    return report


def _duration(item: VideoItem) -> float | None:
    if item.start_sec is not None and item.end_sec is not None:
        return max(0.0, item.end_sec - item.start_sec)
    return None


# -- Ray connection ---------------------------------------------------------------------------------------


def init_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to Ray. Returns True when this call connected (then the caller shuts it down).

    Default: an embedded cluster on this machine (`address="local"`); `--address auto|host:port|ray://...` or
    RAY_ADDRESS join an existing one.
    """
    import ray

    if address is not None:
        _check_reachable(address)  # also when this process already holds a connection: the flag must not lie
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
    # Ray puts the driver's working directory first on every worker's sys.path: a folder named `vfx` there (a
    # clone, say) would shadow the installed package in the workers. Connect from the installed package's
    # parent instead, where `import vfx` is the installed vfx.
    here = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[2])
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(_connection_error(address, exc)) from None
    except Exception as exc:  # noqa: BLE001 - ray.exceptions.AuthenticationError and kin: one line, not a trace
        raise UsageError(_connection_error(address, exc)) from None
    finally:
        os.chdir(here)
    return True


def _connection_error(address: str, exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    if "authentication" in text.lower() or "token" in text.lower() or "Authentication" in type(exc).__name__:
        return (
            f"cannot connect to Ray at {address!r}: the cluster requires token authentication ({text}); set "
            "RAY_AUTH_TOKEN to the cluster's token (or RAY_AUTH_TOKEN_PATH to a file holding it), with "
            "RAY_AUTH_MODE=token"
        )
    return f"cannot connect to Ray at {address!r}: {text}"


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


def _shutdown_ray() -> None:
    import ray

    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - the cluster may already be gone (Ctrl-C reached its processes too)
        pass

