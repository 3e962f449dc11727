"""One writer per store: `StoreLock`, held by the run that writes a store, on any filesystem `Location` knows.

    STORE/lock/<token>.json   the holder's claim: token, host, boot id, pid (and its start time), since, lease
    STORE/lock/<token>.beat   its heartbeat: rewritten every `lease_sec / 6` seconds by a thread of the holder

Taking the lock needs nothing but whole-file writes, deletes and a consistent listing, so the same code works
on a local disk, NFS and object stores (S3 and GCS list what was written: strong read-after-write
consistency), which have no atomic create-if-absent that fsspec exposes everywhere:

1. look at the claims present: a live one means another run writes this store (`UsageError`, exit 2, naming
   its host, pid and start); a dead one is removed, with a note;
2. write our own claim;
3. list again: if any other claim is there, a second run started at the same moment; withdraw ours, wait a
   random moment, go back to 1.

Of two runs, the one whose claim was written second always sees the first one's claim in step 3, so both can
withdraw but never both hold (and the random wait makes the retry settle on one). A claim is dead when its
run cannot be writing any more: on the same machine (same host name and boot id) when its pid no longer runs
(or is another process now: the start time differs); elsewhere when its heartbeat was not renewed for
`lease_sec` seconds (the host clocks must agree to within a fraction of that, as NTP gives).

The holder never rewrites its claim, only its heartbeat: a run that takes over deletes the dead claim first,
so a holder that was only stalled (suspended, cut off) finds its claim gone at its next beat, marks the lock
lost, and `check` stops it before it records anything more. Readers never look at the lock. Workers of a run
check that they see the holder's claim (`holds`): a node that does not see it does not see the store.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass

from vfx.errors import UsageError, VfxError
from vfx.store.location import Location

LOCK_DIR = "lock"
#: Seconds a holder on another machine may go without renewing its heartbeat before its lock counts as dead.
#: The heartbeat is written every LEASE_SEC / 6 s; a few missed writes (a slow object store) are tolerated.
LEASE_SEC = 30.0
#: Rounds of step 3 (two runs started together) before the second run gives up.
_CONTENDED_ROUNDS = 5


class LockLost(VfxError):
    """This run's lock was taken over (its heartbeat could not be renewed in time): it must not record more."""


@dataclass(frozen=True)
class Claim:
    token: str
    host: str
    boot_id: str
    pid: int
    pid_start: str  # the process's start time in clock ticks since boot (/proc/PID/stat), "" where unknown
    since: str  # local time the lock was taken, for people
    since_epoch: float
    lease_sec: float

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"


def claim_name(token: str) -> str:
    return f"{LOCK_DIR}/{token}.json"


def beat_name(token: str) -> str:
    return f"{LOCK_DIR}/{token}.beat"


def holds(location: Location, token: str) -> bool:
    """Whether the claim of the run with `token` is visible at `location` (a worker's "do I see the store")."""
    _fresh(location)
    return location.exists(claim_name(token))


class StoreLock:
    """The lock of one store, held from `acquire` until `release` (a heartbeat thread renews it meanwhile)."""

    def __init__(self, location: Location, claim: Claim):
        self.location = location
        self.claim = claim
        self.lost: str | None = None  # why the lock is no longer ours, once it is not
        self._last_beat = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_loop, name="vfx-store-lock", daemon=True)
        self._thread.start()

    @property
    def token(self) -> str:
        return self.claim.token

    @classmethod
    def acquire(cls, location: Location, *, lease_sec: float = LEASE_SEC) -> StoreLock:
        """Take the store's lock, or raise `UsageError` naming the live run that holds it."""
        import uuid

        location.makedirs(LOCK_DIR)
        for round_ in range(_CONTENDED_ROUNDS):
            _clear_dead(location)  # step 1: raises if a live run holds the store
            claim = _new_claim(uuid.uuid4().hex, lease_sec)
            location.write_bytes(claim_name(claim.token), json.dumps(asdict(claim)).encode())  # step 2
            others = [c for c in _claims(location) if c is None or c.token != claim.token]  # step 3
            if not others:
                return cls(location, claim)
            location.remove(claim_name(claim.token))
            time.sleep(random.uniform(0.05, 0.5) * (round_ + 1))
        live = [c for c in _claims(location) if c is not None]
        holder = live[0].describe() if live else "host ?, pid ?, since ?"
        raise UsageError(f"{location.url}: another run is writing this store ({holder})")

    def check(self) -> None:
        """Raise `LockLost` if another run took the store over (call before recording anything)."""
        if self.lost is None and time.time() - self._last_beat > self.claim.lease_sec:
            self.lost = f"its heartbeat could not be renewed for {self.claim.lease_sec:g} s"
        if self.lost is not None:
            raise LockLost(f"{self.location.url}: this run no longer holds the store's lock ({self.lost}); "
                           "another run may be writing it")  # fmt: skip

    def release(self) -> None:
        """Stop the heartbeat and remove our claim (never another run's). Safe to call twice."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for name in (claim_name(self.token), beat_name(self.token)):
            try:
                self.location.remove(name)
            except OSError:  # an unreachable store: the claim dies by its lease, or by its pid on this host
                pass
        if self.location.is_local:
            try:
                os.rmdir(self.location.path(LOCK_DIR))  # leave the store as readers expect it, when no claim is left
            except OSError:
                pass

    def _beat_loop(self) -> None:
        interval = self.claim.lease_sec / 6
        count = 0
        while not self._stop.wait(interval):
            try:
                if not holds(self.location, self.token):
                    self.lost = "another run found its lease expired and took the store over"
                    return
                count += 1
                self.location.write_bytes(beat_name(self.token), json.dumps({"renewed": time.time(), "n": count}).encode())
                self._last_beat = time.time()
            except OSError:  # a transient store error: the next beat retries; `check` notices a long outage
                continue


# -- judging claims ------------------------------------------------------------------------------------------


def _fresh(location: Location) -> None:
    """Forget fsspec's cached listings: other processes write the lock folder."""
    if not location.is_local:
        location.fs.invalidate_cache(location.path(LOCK_DIR))


def _claims(location: Location) -> list[Claim | None]:
    """Every claim in the lock folder (None for one that cannot be parsed)."""
    _fresh(location)
    found: list[Claim | None] = []
    for name in sorted(location.listdir(LOCK_DIR)):
        if not name.endswith(".json"):
            continue
        try:
            found.append(Claim(**json.loads(location.read_bytes(f"{LOCK_DIR}/{name}"))))
        except FileNotFoundError:  # released meanwhile
            continue
        except (OSError, ValueError, TypeError):
            found.append(None)
    return found


def _clear_dead(location: Location) -> None:
    """Remove the claims of runs that died (with a note); raise `UsageError` if a live run holds the store."""
    _fresh(location)
    for name in sorted(location.listdir(LOCK_DIR)):
        rel = f"{LOCK_DIR}/{name}"
        token, _, ext = name.rpartition(".")
        if ext == "beat":
            if not location.exists(claim_name(token)):
                location.remove(rel)  # the heartbeat of a claim already removed
            continue
        if ext != "json":
            continue
        try:
            claim = Claim(**json.loads(location.read_bytes(rel)))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError) as exc:
            location.remove(rel)
            _note(f"note: {location.url}: removed an unreadable lock file {name} ({type(exc).__name__})")
            continue
        why_dead = _why_dead(location, claim)
        if why_dead is None:
            raise UsageError(f"{location.url}: another run is writing this store ({claim.describe()})")
        location.remove(rel)
        location.remove(beat_name(claim.token))
        _note(f"note: {location.url}: taking over the lock of a run that died ({claim.describe()}): {why_dead}")


def _why_dead(location: Location, claim: Claim) -> str | None:
    """None while the claim's run may still be writing, else why it cannot be."""
    if claim.host == socket.gethostname() and claim.boot_id and claim.boot_id == _boot_id():
        if not _pid_runs(claim.pid, claim.pid_start):
            return f"pid {claim.pid} is not running"
        return None
    renewed = claim.since_epoch
    try:
        renewed = max(renewed, float(json.loads(location.read_bytes(beat_name(claim.token)))["renewed"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    age = time.time() - renewed
    if age > claim.lease_sec:
        return f"its lease was last renewed {age:.0f} s ago (lease {claim.lease_sec:g} s)"
    return None


def _new_claim(token: str, lease_sec: float) -> Claim:
    now = time.time()
    return Claim(token, socket.gethostname(), _boot_id(), os.getpid(), _pid_start(os.getpid()),
                 time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)), now, float(lease_sec))  # fmt: skip


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def _pid_start(pid: int) -> str:
    try:
        fields = _proc_stat(pid)
    except OSError:
        return ""
    return fields[19] if fields and len(fields) > 19 else ""  # field 22 of proc(5): starttime


def _pid_runs(pid: int, start: str) -> bool:
    """Whether `pid` is the process that took the lock and has not exited (a zombie has exited)."""
    try:
        fields = _proc_stat(pid)
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return not start or len(fields) <= 19 or fields[19] == start


def _note(message: str) -> None:
    # The store is opened before the run's progress bar exists: a plain line on stderr does not break it.
    print(message, file=sys.stderr, flush=True)
