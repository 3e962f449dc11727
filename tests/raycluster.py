"""A real multi-node Ray cluster on this machine for tests: one `ray start --block` process group per node.

Each node has its own ports; the head its own --temp-dir. Killing a node's process group kills its raylet and
its workers (what a lost machine looks like to the driver). A node can be started inside a private mount
namespace (`unshare -m`) with a tmpfs over a directory, so that it sees its own, empty disk there: a node
without the shared filesystem.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_private_mount() -> str | None:
    """None if `unshare -m` + a tmpfs works here, else the reason it does not."""
    if os.geteuid() != 0:
        return "needs root for unshare -m and mount"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"kernel refused a private mount: {probe.stderr.strip()}"


class Cluster:
    def __init__(self, tmp: Path, env: dict[str, str] | None = None):
        self.tmp = Path(tmp)
        # A loaded machine starts a node's Python agents slowly: Ray's default 15-30 s waits kill the raylet.
        slow_start = {"RAY_agent_register_timeout_ms": "180000", "RAY_raylet_start_wait_time_s": "180",
                      "RAY_worker_register_timeout_seconds": "180"}
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **slow_start,
                    **(env or {})}
        self.nodes: list[subprocess.Popen] = []
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def _ports(self) -> list[str]:
        low = free_port()
        return [
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
            f"--min-worker-port={low}", f"--max-worker-port={low + 40}",
        ]  # fmt: skip

    def start_head(self, cpus: int = 1, gpus: int = 0) -> subprocess.Popen:
        args = [RAY, "start", "--head", "--block", f"--port={self.port}", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                "--include-dashboard=false", "--node-ip-address=127.0.0.1",
                f"--temp-dir={self.tmp / 'ray'}", "--disable-usage-stats", *self._ports()]  # fmt: skip
        return self._start(args)

    def add_node(self, cpus: int = 1, gpus: int = 0, private_dir: Path | None = None) -> subprocess.Popen:
        args = [RAY, "start", "--block", f"--address={self.address}", f"--num-cpus={cpus}", f"--num-gpus={gpus}",
                "--node-ip-address=127.0.0.1", "--disable-usage-stats", *self._ports()]  # fmt: skip
        if private_dir is not None:
            Path(private_dir).mkdir(parents=True, exist_ok=True)
            command = f"mount -t tmpfs tmpfs {shlex.quote(str(private_dir))} && exec {shlex.join(args)}"
            args = ["unshare", "-m", "sh", "-c", command]
        return self._start(args)

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"node{len(self.nodes)}.log", "w")
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(proc)
        return proc

    def wait_for_nodes(self, count: int, timeout: float = 300.0) -> None:
        code = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.nodes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a ray node exited with {proc.returncode}: {self.logs()}")
            try:
                out = subprocess.run([sys.executable, "-c", code, self.address], env=self.env, capture_output=True,
                                     text=True, timeout=60)  # fmt: skip
            except subprocess.TimeoutExpired:  # the head not answering yet on a loaded machine
                continue
            if out.returncode == 0 and out.stdout.strip() and int(out.stdout.split()[-1]) >= count:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{count} ray nodes not up in {timeout:.0f} s: {self.logs()}")

    def kill(self, proc: subprocess.Popen) -> None:
        """The node's raylet, its workers and its `ray start` at once (SIGKILL to its process group)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def logs(self) -> str:
        return " | ".join((self.tmp / f"node{i}.log").read_text()[-600:] for i in range(len(self.nodes)))

    def shutdown(self) -> None:
        for proc in reversed(self.nodes):
            self.kill(proc)
