"""Read-only store handles kept open by a process that reads many videos (a stage worker, a DataLoader worker)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from vfx.store.reader import open_store


class StoreHandles:
    """Handles by path, opened on first use. They belong to the process that opened them: after a fork, or
    once pickled into another process, the set starts empty (an HDF5 handle must never cross processes)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._stores: dict[str, Any] = {}

    def get(self, path: str, opener: Callable[[str], Any] = open_store):
        if self._pid != os.getpid():
            self._stores = {}  # inherited through fork: the parent's, never reused
            self._pid = os.getpid()
        if path not in self._stores:
            self._stores[path] = opener(path)
        return self._stores[path]

    @property
    def opened(self) -> bool:
        return self._pid == os.getpid() and bool(self._stores)

    def close(self) -> None:
        if self._pid == os.getpid():
            for store in self._stores.values():
                store.close()
        self._stores = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()
