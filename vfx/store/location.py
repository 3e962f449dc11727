"""Where a store lives: a local folder, or a prefix on any filesystem fsspec knows (`s3://`, `gs://`, ...).

The rule that keeps a path from being taken for a URL and back: a `str` that starts with `scheme://` is a
URL; anything else (every `os.PathLike`, every other string) is a local path. `file://` URLs are local
paths. A string such as `s3:/bucket/x` (a URL whose `//` a Path object collapsed) is refused, rather than
becoming a local folder named `s3:`.

Object stores are reached through fsspec (`pip install 'vfx[s3]'` for s3fs); credentials and the endpoint
come from the filesystem's own standard configuration (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, ~/.aws), never from vfx options, and are never logged.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Any

from vfx.errors import UsageError
from vfx.filesystems import filesystem

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")
_COLLAPSED_RE = re.compile(r"^(s3|s3a|gs|gcs|az|abfs|abfss|adl|hdfs|http|https|file|memory|oss|r2):/(?!/)")


@dataclass(frozen=True)
class Location:
    """A store's root: `root` is a local path (is_local) or an fsspec path without its protocol."""

    url: str
    protocol: str  # "" for local
    root: str
    _fs: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, target: str | os.PathLike) -> Location:
        if isinstance(target, Location):
            return target
        if not isinstance(target, str):
            path = os.path.abspath(os.fspath(target))
            return cls(path, "", path)
        m = _URL_RE.match(target)
        if m is None:
            if _COLLAPSED_RE.match(target):
                raise UsageError(f"{target}: looks like a URL missing a slash (write {target.replace(':/', '://', 1)})")
            path = os.path.abspath(target)
            return cls(path, "", path)
        protocol, rest = m.group(1).lower(), m.group(2)
        if protocol == "file":
            path = os.path.abspath("/" + rest.lstrip("/"))
            return cls(path, "", path)
        return cls(f"{protocol}://{rest.rstrip('/')}", protocol, rest.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return self.protocol == ""

    @property
    def fs(self):
        """The fsspec filesystem of a URL location (created on first use, not pickled)."""
        if self.is_local:
            raise AttributeError("a local location has no fsspec filesystem")
        if self._fs is None:
            object.__setattr__(self, "_fs", filesystem(self.protocol, self.url))
        return self._fs

    def __getstate__(self):
        return {"url": self.url, "protocol": self.protocol, "root": self.root, "_fs": None}

    def __setstate__(self, state):
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def __str__(self) -> str:
        return self.url

    # -- paths ------------------------------------------------------------------------------------------
    def path(self, rel: str = "") -> str:
        """The full path of `rel` (a '/'-separated name inside the store) for this location's filesystem."""
        if not rel:
            return self.root
        return os.path.join(self.root, *rel.split("/")) if self.is_local else f"{self.root}/{rel}"

    def join_local(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def url_of(self, rel: str) -> str:
        return self.path(rel) if self.is_local else f"{self.protocol}://{self.path(rel)}"

    # -- queries ----------------------------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        return os.path.exists(self.path(rel)) if self.is_local else self.fs.exists(self.path(rel))

    def is_dir(self, rel: str = "") -> bool:
        return os.path.isdir(self.path(rel)) if self.is_local else self.fs.isdir(self.path(rel))

    def size(self, rel: str) -> int | None:
        """Size in bytes, None when the file does not exist."""
        try:
            if self.is_local:
                return os.stat(self.path(rel)).st_size
            return int(self.fs.info(self.path(rel))["size"])
        except FileNotFoundError:
            return None

    def listdir(self, rel: str = "") -> list[str]:
        """Names (not paths) directly under `rel`; [] when it does not exist."""
        try:
            if self.is_local:
                return os.listdir(self.path(rel))
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path(rel), detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def is_empty_dir(self) -> bool:
        return not self.listdir("")

    # -- bytes ------------------------------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        if self.is_local:
            with open(self.path(rel), "rb") as f:
                return f.read()
        return self.fs.cat_file(self.path(rel))

    def open(self, rel: str, mode: str = "rb"):
        return open(self.path(rel), mode) if self.is_local else self.fs.open(self.path(rel), mode)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a whole file so that a reader sees the old one or the complete new one, never a part."""
        if self.is_local:
            final = self.path(rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            tmp = f"{final}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            _fsync_dir(os.path.dirname(final))
        else:
            self.fs.pipe_file(self.path(rel), data)  # one PUT: an object appears whole or not at all

    def put_file(self, local_path: str, rel: str) -> None:
        """Copy a local file into the store under `rel`, appearing complete or not at all."""
        if not self.is_local:
            self.fs.put_file(local_path, self.path(rel))
            return
        final = self.path(rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = f"{final}.{os.getpid()}.tmp"
        try:
            os.replace(local_path, tmp)  # same filesystem: a rename
        except OSError:
            shutil.copyfile(local_path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(final))

    def remove(self, rel: str) -> None:
        try:
            if self.is_local:
                os.unlink(self.path(rel))
            else:
                self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass

    def move(self, rel: str, new_rel: str) -> None:
        """Rename a file inside the store (a rename on posix; a copy then a delete on object storage)."""
        if self.is_local:
            final = self.path(new_rel)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(self.path(rel), final)
            _fsync_dir(os.path.dirname(final))
        else:
            self.fs.mv(self.path(rel), self.path(new_rel))

    def remove_dir(self, rel: str) -> None:
        """Remove an empty folder (object stores have none)."""
        if self.is_local:
            try:
                os.rmdir(self.path(rel))
            except FileNotFoundError:
                pass

    def remove_tree(self, rel: str = "") -> None:
        """Remove `rel` (a file or a folder with everything under it; the whole store by default)."""
        target = self.path(rel)
        if self.is_local:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.unlink(target)
        elif self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def makedirs(self, rel: str = "") -> None:
        if self.is_local:
            os.makedirs(self.path(rel), exist_ok=True)
        # object stores have no folders

    def total_bytes(self) -> int:
        if self.is_local:
            return sum(
                os.stat(os.path.join(d, f)).st_size for d, _, files in os.walk(self.root) for f in files
            )
        return int(self.fs.du(self.root, total=True))


def _fsync_dir(path: str) -> None:
    """Make a rename durable: on posix the directory entry is data of the directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
