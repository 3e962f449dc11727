"""Overlap decoding with inference and batch clips across videos.

A producer thread opens each video's sources, plans its clips and preprocesses them (decord, OpenCV and
NumPy release the GIL for the heavy parts) into a bounded queue; the consumer (the worker's main thread)
fills batches of `batch_size` clips, across video boundaries, and runs the models under
`torch.inference_mode`. Results are handed back per video, in order, as the chunks a `VideoOutput.stream`
yields, so that the shard writer appends them while later clips are still being computed.

Memory: the queue holds at most `prefetch` clips, the consumer one batch plus the results of at most one
batch of the videos after the one being written.

Precision: `autocast(precision, device_type)` is the context every forward pass runs in: fp32 (the
default) as is, fp16 / bf16 through `torch.autocast`. On CPU bf16 pays off only where the CPU computes it
natively (AVX512-BF16 or AMX on x86, the BF16 extension on Arm): elsewhere oneDNN emulates it and it runs
slower than fp32 (scripts/bench_models.py measures both, with the feature drift), which
`precision_note` says in words.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfx.features.clips import VideoPlan
from vfx.types import VideoItem


_AUTOCAST_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic: avx512_bf16 or AMX tiles (x86, as torch detects them), or the
    Arm BF16 extension (`bf16` in /proc/cpuinfo's Features)."""
    import torch

    x86 = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(fn is not None and fn() for fn in x86):
        return True
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def precision_note(precision: str, device_type: str) -> str | None:
    """What the user should know about running `precision` on this device, or None."""
    if precision == "bf16" and device_type == "cpu" and not cpu_has_native_bf16():
        return ("--precision bf16: this CPU has no native bf16 arithmetic (no avx512_bf16 or amx_bf16; Arm: no "
                "bf16), so autocast emulates it and it runs slower than fp32 here; use fp32 on this machine")
    return None


def autocast(precision: str, device_type: str):
    """The context of a forward pass in `precision` ("fp32", "fp16", "bf16") on "cpu" or "cuda"."""
    import torch

    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=getattr(torch, dtype))


@dataclass
class _Header:
    seq: int
    plan: VideoPlan


@dataclass
class _Clip:
    seq: int
    inputs: list[np.ndarray]  # per model: float32 [V, C, T, h, w]


@dataclass
class _End:
    seq: int


@dataclass
class _Failed:
    seq: int
    error: BaseException


_FINISHED = object()


class Prefetcher:
    """Runs `produce(items)` in a thread into a bounded queue; iteration re-raises the thread's crash."""

    def __init__(self, units: Iterable[Any], maxsize: int):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(units,), name="vfx-features-prefetch", daemon=True)
        self._thread.start()

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, units: Iterable[Any]) -> None:
        try:
            for unit in units:
                if not self._put(unit):
                    break
            else:
                self._put(_FINISHED)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(("crash", exc))
        finally:
            close = getattr(units, "close", None)
            if close is not None:
                close()  # a generator stopped early runs its `finally` blocks: open videos are closed

    def get(self) -> Any:
        if self._crash is not None:  # the thread is gone: every later call gets the same error
            raise self._crash
        value = self._queue.get()
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "crash":
            self._crash = value[1]
            raise self._crash
        return value

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5.0)


def produce_units(
    items: list[VideoItem], open_video: Callable[[VideoItem], tuple[VideoPlan, Iterator[list[np.ndarray]], Callable[[], None]]]
) -> Iterator[Any]:
    """Per video: a header with its plan, its clips, an end marker; or a failure, then the next video."""
    for seq, item in enumerate(items):
        close = None
        try:
            plan, clips, close = open_video(item)
            yield _Header(seq, plan)
            for inputs in clips:
                yield _Clip(seq, inputs)
            yield _End(seq)
        except Exception as exc:  # noqa: BLE001 - one video's failure is recorded, the next one goes on
            yield _Failed(seq, exc)
        finally:
            if close is not None:
                close()


@dataclass
class _VideoState:
    plan: VideoPlan | None = None
    chunks: deque = field(default_factory=deque)
    outstanding: int = 0  # clips queued in the current batch, not computed yet
    ended: bool = False
    error: BaseException | None = None


class BatchScheduler:
    """Consumes units, runs `infer(list of per-model batches) -> {name: array [B, ...]}` on full batches."""

    def __init__(self, prefetcher: Prefetcher, infer: Callable[[list[np.ndarray]], dict[str, np.ndarray]], batch_size: int):
        self.prefetcher = prefetcher
        self.infer = infer
        self.batch_size = batch_size
        self.states: dict[int, _VideoState] = {}
        self.batch: list[_Clip] = []
        self.exhausted = False
        # Videos before this one are finished or abandoned (the writer stopped reading their stream):
        # their remaining units and results are dropped.
        self.current = 0

    def state(self, seq: int) -> _VideoState:
        return self.states.setdefault(seq, _VideoState())

    def pull(self) -> None:
        """Take one unit from the queue (or flush the last partial batch when there are none left)."""
        if self.exhausted:
            self.flush()
            return
        unit = self.prefetcher.get()
        if unit is _FINISHED:
            self.exhausted = True
            self.flush()
        elif unit.seq < self.current:
            return
        elif isinstance(unit, _Header):
            self.state(unit.seq).plan = unit.plan
        elif isinstance(unit, _Clip):
            state = self.state(unit.seq)
            if state.error is None:
                self.batch.append(unit)
                state.outstanding += 1
                if len(self.batch) >= self.batch_size:
                    self.flush()
        elif isinstance(unit, _End):
            self.state(unit.seq).ended = True
        elif isinstance(unit, _Failed):
            state = self.state(unit.seq)
            state.error = unit.error
            state.chunks.clear()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        stacked = [np.stack([clip.inputs[m] for clip in batch]) for m in range(len(batch[0].inputs))]
        try:
            outputs = self.infer(stacked)
        except Exception as exc:  # noqa: BLE001 - fails the videos of this batch only
            for clip in batch:
                state = self.state(clip.seq)
                state.error = state.error or exc
                state.outstanding = 0
            return
        start = 0
        while start < len(batch):
            seq = batch[start].seq
            stop = start
            while stop < len(batch) and batch[stop].seq == seq:
                stop += 1
            if seq < self.current:
                start = stop
                continue
            state = self.state(seq)
            state.outstanding -= stop - start
            if state.error is None:
                state.chunks.append({name: array[start:stop] for name, array in outputs.items()})
            start = stop

    def wait_header(self, seq: int) -> _VideoState:
        state = self.state(seq)
        while state.plan is None and state.error is None:
            if self.exhausted and not self.batch:
                raise RuntimeError(f"the clip producer ended before video {seq} was opened")
            self.pull()
        return state

    def stream(self, seq: int) -> Iterator[dict[str, np.ndarray]]:
        """Result chunks of video `seq`; raises its error (decode failure, inference failure) instead."""
        state = self.state(seq)
        try:
            while True:
                while state.chunks:
                    yield state.chunks.popleft()
                if state.error is not None:
                    raise state.error
                if state.ended and state.outstanding == 0:
                    return
                self.pull()
        finally:
            self.states.pop(seq, None)


def run_batched(
    items: list[VideoItem],
    open_video,
    infer: Callable[[list[np.ndarray]], dict[str, np.ndarray]],
    batch_size: int,
    prefetch: int,
    make_output: Callable[[VideoItem, VideoPlan, Iterator[dict[str, np.ndarray]]], Any],
) -> Iterator[tuple[VideoItem, Any]]:
    """The body of `Stage.process_many`: `(item, VideoOutput | Exception)` per item, in order."""
    prefetcher = Prefetcher(produce_units(items, open_video), maxsize=prefetch)
    scheduler = BatchScheduler(prefetcher, infer, batch_size)
    try:
        for seq, item in enumerate(items):
            scheduler.current = seq
            for old in [s for s in scheduler.states if s < seq]:
                del scheduler.states[old]
            try:
                state = scheduler.wait_header(seq)
            except Exception as exc:  # noqa: BLE001 - a producer crash fails this video; the rest still try
                yield item, exc
                continue
            if state.plan is None:
                error = state.error
                scheduler.states.pop(seq, None)
                yield item, error
                continue
            yield item, make_output(item, state.plan, scheduler.stream(seq))
    finally:
        prefetcher.close()
