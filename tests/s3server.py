"""A real S3-compatible server for the tests: moto's server mode, a separate process on 127.0.0.1.

`moto_server()` starts `python -m moto.server` on a free port and stops it at the end. The `s3` fixture
(tests/conftest.py) gives each test its own bucket and sets the standard AWS variables (endpoint, dummy
credentials, region) for the test process and, through `S3.env`, for subprocesses: vfx itself reads
nothing else, exactly as on real S3.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str
    env: dict[str, str]  # the AWS variables to give a subprocess (on top of os.environ)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server():
    """Yield the endpoint URL of a moto server process; it is stopped (and waited for) on exit."""
    pytest.importorskip("moto.server", reason="moto[server] is part of the test extra: pip install -e '.[test]'")
    pytest.importorskip("s3fs", reason="s3fs is part of the test extra: pip install -e '.[test]'")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"moto server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aws_env(endpoint: str) -> dict[str, str]:
    """The standard variables boto/s3fs read; dummy credentials (moto accepts any)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def new_bucket(endpoint: str, monkeypatch) -> S3:
    env = aws_env(endpoint)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # A session token or profile from the developer's shell would be sent to moto; the test owns these.
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    s3 = S3(endpoint, f"vfx-test-{uuid.uuid4().hex[:12]}", env)
    s3.client().create_bucket(Bucket=s3.bucket)
    return s3


def delete_bucket(s3: S3) -> None:
    client = s3.client()
    for key in s3.keys():
        client.delete_object(Bucket=s3.bucket, Key=key)
    client.delete_bucket(Bucket=s3.bucket)
