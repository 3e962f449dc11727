"""The contract between a stage (frames, flow, features) and the engine that runs it.

A stage does the per-video work and never writes files or knows about Ray: it returns arrays and
attributes, the engine's shard writer puts them in the store. Stage objects are pickled into worker
processes, so keep them small (parameters only) and load heavy things (models) in `setup()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from vfx.engine.plan import DEFAULT_SHARD_BYTES
from vfx.types import VideoItem, VideoOutput


class Stage(ABC):
    """Base class of every stage. Subclasses set `kind` and implement `process` (or `process_many`)."""

    kind: ClassVar[str] = ""
    #: What the stage counts inside a video, for progress and summaries ("frames", "pairs", "clips").
    unit: ClassVar[str] = "frames"
    #: Bytes per shard file the engine aims at (with at most --shard-size videos); --shard-mb overrides it.
    shard_bytes: ClassVar[int] = DEFAULT_SHARD_BYTES
    #: Where `report` sends sub-video progress: set by the engine's worker, a no-op elsewhere.
    _progress: Callable[[int, int | None], None] | None = None

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable parameters recorded in the store; a rerun with other values is refused."""

    def resources(self) -> dict[str, float | None]:
        """Ray resources of one worker: {"num_cpus": 1} for CPU stages, {"num_gpus": g, ...} for models.

        `"num_cpus": None` leaves the CPUs to the engine: on each node it gives every worker the node's CPUs
        divided by the workers that fit there, and tells the stage through `set_threads` before `setup`.
        """
        return {"num_cpus": 1}

    def set_threads(self, threads: int) -> None:
        """The CPUs this worker holds, when `resources()` left them to the engine (called before `setup`)."""

    def prepare(self) -> None:
        """Called once in the driver before any worker starts: one-off work per machine (building kernels),
        done once and where its message reaches the user (Ray workers' output does not)."""

    def setup(self) -> None:
        """Called once in each worker process before its first video (load models here)."""

    def report(self, done: int, total: int | None = None) -> None:
        """Progress inside the current video: `done` more units (`unit`) finished; `total` units when known.

        Call with done=0 and the total at the start of a video. Cheap; the engine shows it on its bar.
        """
        if self._progress is not None:
            self._progress(done, total)

    def reported(self, stream: Iterable[dict[str, Any]], total: int, count: Callable[[dict[str, Any]], int]
                 ) -> Iterator[dict[str, Any]]:
        """`stream` (a video's output chunks) passed through, reporting `count(chunk)` units per chunk and
        `total` before the first: the engine's bar then shows units/s and the time left inside a long video."""
        self.report(0, total)
        for chunk in stream:
            self.report(count(chunk))
            yield chunk

    @abstractmethod
    def process(self, item: VideoItem) -> VideoOutput:
        """Do the work for one video. Raise `VideoError` (or any exception) to fail just this video."""

    def process_many(self, items: Iterable[VideoItem]) -> Iterator[tuple[VideoItem, VideoOutput | Exception]]:
        """Yield one result per item, in order. Override to prefetch or batch across videos.

        A per-video failure is yielded as the exception, never raised: the run goes on.
        """
        for item in items:
            try:
                yield item, self.process(item)
            except Exception as exc:  # noqa: BLE001 - any per-video failure is recorded, the run goes on
                yield item, exc
