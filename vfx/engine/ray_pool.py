"""`RayPool`: the Ray engine's scheduling loop. Worker actors fitted to the nodes, one call at a time per actor,
a deadline on every wait, shards retried on whichever live worker is free first.

Every actor goes through: placing (until Ray has placed it: `__ray_ready__`) -> starting (stage setup, and
whether its node sees the store) -> idle <-> busy (open_shard, next_video x N, close_shard, then the driver
commits the receipt). An actor that cannot be placed within `placement_timeout` is reported with Ray's
pending demand and dropped; a video that overruns its deadline is recorded as failed and its worker
replaced; an actor lost with its node is replaced only on a node where it fits.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vfx.engine.driver import MAX_SHARD_ATTEMPTS, MAX_WORKER_DEATHS, WORKER_DIED, Progress, RunSummary, _duration, say
from vfx.engine.options import RunOptions
from vfx.engine.placement import Node, Placement, fit_workers
from vfx.engine.plan import Shard, ShardPlan
from vfx.engine.stage import Stage
from vfx.engine.worker import ShardWorker, VideoResult
from vfx.errors import UsageError, VfxError
from vfx.store.writer import StoreError, StoreWriter

#: Seconds between polls of a busy worker's progress inside its video.
POLL_SEC = 1.0


@dataclass
class _Slot:
    actor: Any
    placement: Placement
    state: str = "placing"  # placing | starting | idle | busy
    ref: Any = None  # the one outstanding call
    deadline: float = float("inf")
    limit: float = 0.0  # seconds allowed for the current call
    shard: Shard | None = None
    pos: int = -1  # -1 open_shard, 0..n-1 next_video of that item, n close_shard
    results: list[VideoResult] = field(default_factory=list)
    results_units: int = 0  # sum of `results`' units, kept as they come (a shard may hold thousands)
    poll_ref: Any = None
    polled_at: float = 0.0
    units: int = 0
    total: int | None = None
    call_started: float = 0.0


class RayPool:
    def __init__(self, stage: Stage, writer: StoreWriter, options: RunOptions, progress: Progress, summary: RunSummary):
        import ray

        self.ray = ray
        self.stage, self.writer, self.options, self.progress, self.summary = stage, writer, options, progress, summary
        res = stage.resources()
        self.cpus = res.get("num_cpus", 1)
        self.gpus = float(res.get("num_gpus") or 0.0)
        self.actor_cls = ray.remote(max_restarts=0, max_task_retries=0, concurrency_groups={"poll": 1})(ShardWorker)
        self.slots: list[_Slot] = []
        self.plan: ShardPlan | None = None
        self.skips: dict[str, str] = {}
        self.deaths: Counter[str] = Counter()
        self.attempts: Counter[int] = Counter()
        self.target = 0
        self.noted: set[str] = set()
        self.start_failures = 0

    # -- nodes and actors ------------------------------------------------------------------------------------
    def live_nodes(self) -> list[Node]:
        return [
            Node(n["NodeID"], n.get("NodeManagerAddress", "?"), float(n["Resources"].get("CPU", 0)),
                 float(n["Resources"].get("GPU", 0)))
            for n in self.ray.nodes() if n.get("Alive")
        ]  # fmt: skip

    def spawn(self, placement: Placement) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = self.actor_cls.options(
            **placement.resources(), scheduling_strategy=NodeAffinitySchedulingStrategy(placement.node_id, soft=False)
        ).remote(self.stage, self.writer.url)
        slot = _Slot(actor, placement)
        self._call(slot, actor.__ray_ready__.remote(), self.options.placement_timeout)
        self.slots.append(slot)

    def replace(self, slot: _Slot, why: str) -> None:
        """Kill `slot`'s actor; start another on its node if that node lives, else wherever one still fits."""
        self._kill(slot)
        self.slots.remove(slot)
        nodes = self.live_nodes()
        if any(n.node_id == slot.placement.node_id for n in nodes):
            self.spawn(slot.placement)
            return
        taken = Counter(s.placement.node_id for s in self.slots)
        try:
            fits = fit_workers(nodes, self.cpus, self.gpus, self.target, dict(taken)) if nodes else []
        except UsageError:
            fits = []
        if fits:
            self.spawn(fits[0])
        say(f"note: node {slot.placement.address} is gone ({why}); "
            f"going on with {len(self.slots)} worker{'s' if len(self.slots) != 1 else ''}")  # fmt: skip

    def _kill(self, slot: _Slot) -> None:
        try:
            self.ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone with its node
            pass

    def _call(self, slot: _Slot, ref, limit: float) -> None:
        slot.ref, slot.limit = ref, limit
        slot.call_started = time.monotonic()
        slot.deadline = slot.call_started + limit

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self, plan: ShardPlan) -> None:
        nodes = self.live_nodes()
        placements = fit_workers(nodes, self.cpus, self.gpus, self.options.workers)
        placements = placements[: plan.videos_left]  # a worker more than videos would only start and stop
        self.target = len(placements)
        plan.workers = len(placements)  # cuts sized so that every worker gets several shards
        self.plan = plan
        on = {p.node_id for p in placements}
        say(f"starting Ray: {len(placements)} worker{'s' if len(placements) != 1 else ''}"
            + (f" on {len(on)} nodes" if len(on) > 1 else ""))  # fmt: skip
        try:
            for placement in placements:
                self.spawn(placement)
            # Every first worker says whether it sees the store before any video is processed.
            while any(s.state in ("placing", "starting") for s in self.slots):
                self.step(assign=False)
            while self.plan or any(s.shard is not None for s in self.slots):
                self.step(assign=True)
        finally:
            for slot in self.slots:
                self._kill(slot)

    def step(self, assign: bool) -> None:
        if not self.slots:
            raise VfxError("no Ray worker is left to run the remaining shards (see the notes above)")
        if assign:
            for slot in self.slots:
                if slot.state == "idle" and self.plan:
                    self.assign(slot, self.plan.next())
        waiting = {s.ref: s for s in self.slots if s.ref is not None}
        # Wake at least every POLL_SEC, so a busy worker's progress inside its video is asked for and shown.
        ready, _ = self.ray.wait(list(waiting), num_returns=1, timeout=min(0.5, POLL_SEC))
        for ref in ready:
            self.handle(waiting[ref], ref)
        now = time.monotonic()
        for slot in list(self.slots):
            if slot.ref is not None and now > slot.deadline:
                self.overran(slot)
        self.poll(now)

    def assign(self, slot: _Slot, shard: Shard) -> None:
        slot.state, slot.shard, slot.pos, slot.results, slot.results_units = "busy", shard, -1, [], 0
        skip = {i.video_id: self.skips[i.video_id] for i in shard.items if i.video_id in self.skips}
        self._call(slot, slot.actor.open_shard.remote(shard, skip), self.options.timeout_for(None))

    def handle(self, slot: _Slot, ref) -> None:
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError, WorkerCrashedError

        slot.ref = None
        try:
            value = self.ray.get(ref)
        except (RayActorError, WorkerCrashedError) as exc:
            self.worker_died(slot, exc)
            return
        except RayTaskError as exc:
            if slot.state == "starting":
                cause = getattr(exc, "cause", None)
                raise cause if isinstance(cause, VfxError) else VfxError(f"worker setup failed: {_one_line(exc)}")
            self.retry(slot, _one_line(exc), count_attempt=True)
            return
        except GetTimeoutError:  # pragma: no cover - ray.wait said it was ready
            return
        if slot.state == "placing":
            slot.state = "starting"
            threads = slot.placement.threads if self.cpus is None else None
            self._call(slot, slot.actor.start.remote(threads, self.writer.token), self.options.timeout_for(None))
        elif slot.state == "starting":
            self.started(slot, value)
        else:
            self.advance(slot, value)

    def started(self, slot: _Slot, info: dict) -> None:
        slot.state = "idle"
        if info["sees_store"]:
            return
        node = f"{info['ip']} ({info['host']})"
        if not self.writer.location.is_local:
            raise UsageError(f"node {node} cannot reach the store {self.writer.url}: give every node the store's "
                             "credentials and network access")  # fmt: skip
        if node not in self.noted:
            self.noted.add(node)
            say(f"note: node {node} does not see {self.writer.url}: its shards travel to the driver through "
                "Ray's object store (an object-store URL for -o spares the driver that traffic)")  # fmt: skip

    def advance(self, slot: _Slot, value) -> None:
        shard = slot.shard
        assert shard is not None
        n = len(shard.items)
        if 0 <= slot.pos < n:
            slot.results.append(value)
            slot.results_units += value.units
        elif slot.pos == n:
            try:
                self.writer.commit(value)
            except StoreError as exc:
                self.retry(slot, str(exc), count_attempt=True)
                return
            self.plan.committed_receipt(value)
            self.progress.committed(slot.results, self.summary)
            slot.state, slot.shard, slot.results = "idle", None, []
            if self.plan:
                self.assign(slot, self.plan.next())
            return
        slot.pos += 1
        slot.units, slot.total = 0, None
        if slot.pos < n:
            item = shard.items[slot.pos]
            limit = self.options.timeout_for(_duration(item))
            self._call(slot, slot.actor.next_video.remote(), limit)
        else:
            self._call(slot, slot.actor.close_shard.remote(), self.options.timeout_for(None))

    def worker_died(self, slot: _Slot, exc: BaseException) -> None:
        node_alive = any(n.node_id == slot.placement.node_id for n in self.live_nodes())
        if slot.state in ("placing", "starting"):
            self.start_failures += 1
            if self.start_failures > MAX_SHARD_ATTEMPTS:  # the worker cannot even start: not a passing fault
                raise VfxError(f"Ray workers die while starting ({self.start_failures} times): {_one_line(exc)}")
            self.replace(slot, _one_line(exc)) if node_alive else self._drop(slot, "its node was lost")
            return
        shard = slot.shard
        if shard is not None and 0 <= slot.pos < len(shard.items) and node_alive:
            item = shard.items[slot.pos]
            self.deaths[item.video_id] += 1
            if self.deaths[item.video_id] >= MAX_WORKER_DEATHS:
                self.skips[item.video_id] = f"{item.path}: {WORKER_DIED} ({self.deaths[item.video_id]} times)"
        say(f"note: the worker on node {slot.placement.address} died ({_one_line(exc)}); "
            "its shard goes to the next free worker")
        self.requeue(slot)
        self.replace(slot, "worker died" if node_alive else "node lost")

    def overran(self, slot: _Slot) -> None:
        """A call past its deadline: a placement reported and dropped; a video recorded as timed out."""
        if slot.state == "placing":
            self._drop(slot, f"Ray could not place it within {slot.limit:g} s (asked for {slot.placement.resources()}; "
                             f"Ray's pending demand: {_pending_demand(self.ray)})")  # fmt: skip
            if not self.slots:
                raise UsageError("no Ray worker could be placed (see the note above)")
            return
        shard = slot.shard
        if shard is not None and 0 <= slot.pos < len(shard.items):
            item = shard.items[slot.pos]
            self.skips[item.video_id] = f"{item.path}: timed out after {slot.limit:g} s"
        elif shard is not None:
            self.attempts[shard.shard_id] += 1
        self.requeue(slot)
        self.replace(slot, f"a call ran past its {slot.limit:g} s deadline")

    def _drop(self, slot: _Slot, why: str) -> None:
        self._kill(slot)
        self.slots.remove(slot)
        self.requeue(slot)
        say(f"note: no worker on node {slot.placement.address}: {why}; going on with {len(self.slots)}")

    def requeue(self, slot: _Slot) -> None:
        """Put the slot's shard first in line for whichever live worker is free first (its results are dropped:
        nothing of it was committed)."""
        if slot.shard is not None:
            self.plan.put_back(slot.shard)
        slot.shard, slot.results, slot.results_units, slot.ref = None, [], 0, None

    def retry(self, slot: _Slot, reason: str, count_attempt: bool) -> None:
        shard = slot.shard
        assert shard is not None
        if count_attempt:
            self.attempts[shard.shard_id] += 1
            if self.attempts[shard.shard_id] >= MAX_SHARD_ATTEMPTS:
                raise VfxError(f"shard {shard.shard_id} failed {self.attempts[shard.shard_id]} times; last error: {reason}")
        self.requeue(slot)
        slot.state = "idle"

    # -- progress inside videos -----------------------------------------------------------------------------
    def poll(self, now: float) -> None:
        for slot in self.slots:
            if slot.poll_ref is not None:
                ready, _ = self.ray.wait([slot.poll_ref], timeout=0)
                if ready:
                    try:
                        slot.units, slot.total = self.ray.get(slot.poll_ref)
                    except Exception:  # noqa: BLE001 - a dead worker's poll; its death is handled by the main call
                        pass
                    slot.poll_ref = None
            elif slot.state == "busy" and now - slot.polled_at >= POLL_SEC:
                slot.polled_at = now
                slot.poll_ref = slot.actor.poll.options(concurrency_group="poll").remote()
        busy = [s for s in self.slots if s.state == "busy"]
        inflight = sum(s.units + s.results_units for s in busy)
        etas = []
        for s in busy:
            rate = s.units / max(1e-9, now - s.call_started)
            if s.total and rate > 0:
                etas.append((s.total - s.units) / rate)
        self.progress.show(self.summary, inflight_units=inflight, eta_sec=max(etas) if etas else None)


def _pending_demand(ray) -> str:
    """What Ray's autoscaler reports as waiting for resources, e.g. "2 x {'CPU': 2.0, 'GPU': 0.5}"."""
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        demands = [f"{b.count} x {dict(b.bundle)}" for d in status.resource_demands.ray_task_actor_demand
                   for b in d.bundles_by_count]  # fmt: skip
        found = "; ".join(demands) or "none reported yet"
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        found = f"unavailable ({type(exc).__name__})"
    free = ray.available_resources()
    return f"{found}; free now: {free.get('CPU', 0):g} CPU, {free.get('GPU', 0):g} GPU"


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__
