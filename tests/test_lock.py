"""One writer per store (vfx/store/lock.py): a live holder refuses a second run at once and names itself; the lock
of a run that died (a dead pid on this machine, a lease not renewed elsewhere) is taken over with a note; readers
never wait for it. Runs are real `vfx` processes; object storage is a moto server on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import vfx
from vfx.errors import UsageError
from vfx.store import lock as lockmod
from vfx.store.location import Location
from vfx.store.lock import LockLost, StoreLock, beat_name, claim_name, holds
from vfx.store.writer import StoreWriter

VFX = str(Path(sys.executable).with_name("vfx"))

#: Opens a store for writing (the real StoreWriter, so the real lock), leaves a worker's scratch file in it,
#: says READY and then holds the store until killed: a run in the middle of its work.
HOLDER = textwrap.dedent('''
    import os, sys, time
    from vfx.store.writer import StoreWriter
    writer = StoreWriter.open(sys.argv[1], "frames", {"held": True})
    os.makedirs(os.path.join(sys.argv[1], "tmp"), exist_ok=True)
    open(os.path.join(sys.argv[1], "tmp", "shard-00000.123.h5.tmp"), "wb").write(b"in flight")
    print("READY", os.getpid(), flush=True)
    time.sleep(600)
''')


def _frames(dataset, out, *extra):
    return subprocess.run([VFX, "extract-frames", str(dataset), "-o", str(out), "--engine", "serial",
                           "--short-side", "32", "--no-progress", *extra], capture_output=True, text=True, timeout=300)  # fmt: skip


def _hold(store: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


def test_a_second_run_on_a_store_being_written_exits_2_naming_the_holder_and_touches_nothing(tiny_dataset, tmp_path):
    store = tmp_path / "s"
    holder = _hold(store)
    try:
        second = _frames(tiny_dataset, store)
        assert second.returncode == 2, second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: {store}: another run is writing this store (host {os.uname().nodename}, "
                               f"pid {holder.pid}, since 20"), line  # fmt: skip
        assert (store / "tmp" / "shard-00000.123.h5.tmp").read_bytes() == b"in flight"  # nothing deleted
        assert not list((store / "shards").glob("*")) if (store / "shards").exists() else True
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_note(tiny_dataset, tmp_path):
    store = tmp_path / "s"
    first = _frames(tiny_dataset, store)  # a real store, then a run that dies holding it
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace('"frames", {"held": True}', f'"frames", {_params(store)!r}'),
                               str(store)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline().startswith("READY")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    again = _frames(tiny_dataset, store)
    assert again.returncode == 0, again.stderr
    assert (f"note: {store}: taking over the lock of a run that died (host {os.uname().nodename}, pid {holder.pid}, "
            "since ") in again.stderr and f"pid {holder.pid} is not running" in again.stderr  # fmt: skip
    assert "resuming: 6 of 6 done, 0 to go" in again.stderr
    assert not list(store.rglob("*.tmp"))  # the dead run's scratch file went with its lock
    assert not (store / "lock").exists()  # and this run released its own (the empty folder too)


def _params(store: Path) -> dict:
    return json.loads((store / "vfx-store.json").read_text())["params"]


def test_readers_never_wait_for_the_lock(tiny_dataset, tmp_path):
    store = tmp_path / "s"
    assert _frames(tiny_dataset, store).returncode == 0
    with StoreWriter.open(store, "frames", _params(store)):
        assert len(vfx.open_store(store)) == 6
        info = subprocess.run([VFX, "info", str(store)], capture_output=True, text=True, timeout=120)
        assert info.returncode == 0 and "6" in info.stdout, info.stderr


def test_runs_started_together_never_both_hold_the_store(tmp_path):
    location = Location.parse(tmp_path / "s")
    for round_ in range(6):
        held, refused = [], []
        barrier = threading.Barrier(3)

        def contend():
            barrier.wait()
            try:
                held.append(StoreLock.acquire(location))
            except UsageError as exc:
                refused.append(str(exc))

        threads = [threading.Thread(target=contend) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(held) <= 1, f"round {round_}: {len(held)} holders"
        assert len(held) + len(refused) == 3
        assert all("another run is writing this store (host " in r for r in refused)
        for lock in held:
            lock.release()
    assert not (tmp_path / "s" / "lock").exists()


def test_a_lease_is_kept_alive_by_the_heartbeat_and_taken_over_when_it_stops(tmp_path, monkeypatch, capsys):
    location = Location.parse(tmp_path / "s")
    holder = StoreLock.acquire(location, lease_sec=0.6)
    # The contender runs on another machine: only the lease tells whether the holder is alive.
    monkeypatch.setattr(lockmod.socket, "gethostname", lambda: "another-node")
    time.sleep(1.0)  # longer than the lease: only the heartbeats (every 0.1 s) keep it
    with pytest.raises(UsageError, match=f"pid {os.getpid()}, since "):
        StoreLock.acquire(location)
    holder._stop.set()  # the holder stalls (suspended, cut off): its beats stop, its claim stays
    holder._thread.join()
    time.sleep(0.8)
    taker = StoreLock.acquire(location)
    err = capsys.readouterr().err
    assert "taking over the lock of a run that died" in err and "lease 0.6 s" in err
    assert not holds(location, holder.token) and holds(location, taker.token)
    with pytest.raises(LockLost, match="no longer holds the store's lock"):
        holder.check()
    taker.release()


def test_a_holder_whose_claim_was_taken_over_stops_recording(tmp_path):
    location = Location.parse(tmp_path / "s")
    holder = StoreLock.acquire(location, lease_sec=0.6)
    holder.check()
    os.unlink(location.path(claim_name(holder.token)))  # what a run that judged it dead does first
    time.sleep(0.5)
    with pytest.raises(LockLost, match="took the store over"):
        holder.check()
    holder.release()


def _stale_claim(location: Location, host: str, age_sec: float, lease_sec: float = 30.0) -> str:
    token = "0" * 32
    since = time.time() - age_sec
    claim = {"token": token, "host": host, "boot_id": "b", "pid": 4242, "pid_start": "1", "lease_sec": lease_sec,
             "since": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(since)), "since_epoch": since}  # fmt: skip
    location.write_bytes(claim_name(token), json.dumps(claim).encode())
    location.write_bytes(beat_name(token), json.dumps({"renewed": since + 5, "n": 1}).encode())
    return token


def test_on_object_storage_a_fresh_lease_refuses_and_an_expired_one_is_taken_over(s3, capsys):
    location = Location.parse(s3.url("stores/frames.vfx"))
    fresh = _stale_claim(location, "worker-7", age_sec=10)  # renewed 5 s ago: alive
    with pytest.raises(UsageError, match=r"another run is writing this store \(host worker-7, pid 4242, since "):
        StoreLock.acquire(location)
    location.remove(claim_name(fresh))
    location.remove(beat_name(fresh))
    expired = _stale_claim(location, "worker-7", age_sec=120)  # renewed 115 s ago, lease 30 s
    lock = StoreLock.acquire(location, lease_sec=1.2)
    err = capsys.readouterr().err
    assert f"note: {location.url}: taking over the lock of a run that died (host worker-7, pid 4242" in err
    assert "its lease was last renewed 115 s ago (lease 30 s)" in err
    claims = [k for k in s3.keys("stores/frames.vfx/lock/") if k.endswith(".json")]
    assert claims == [f"stores/frames.vfx/lock/{lock.token}.json"] and expired != lock.token  # the dead claim is gone
    time.sleep(0.6)  # two heartbeats on S3
    assert f"stores/frames.vfx/lock/{lock.token}.beat" in s3.keys("stores/frames.vfx/lock/")
    lock.check()
    lock.release()
    assert s3.keys("stores/frames.vfx/lock/") == []
