"""Explicit registry of dataset formats: `--dataset NAME` (or an alias) -> the parser of its annotations.

Each format module registers its parser with `@register_dataset("name", aliases=...)`. A name or alias
registered twice is a programming error and raises at import time, as in `vfx.models.registry`.
A parser takes (annotation file or folder, root of the videos or None, split number or None) and returns
`Row`s; `numbered_splits` formats (UCF101, HMDB51) are the only ones that accept a split number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.rows import Row

Parser = Callable[[Path, "Path | None", "int | None"], list[Row]]


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    parse: Parser
    numbered_splits: bool = False


_FORMATS: dict[str, DatasetFormat] = {}
_NAMES: dict[str, str] = {}  # every spelling (name and aliases) -> name


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_dataset(name: str, *, aliases: tuple[str, ...] = (), numbered_splits: bool = False) -> Callable[[Parser], Parser]:
    def deco(parse: Parser) -> Parser:
        for spelling in (name, *aliases):
            if _key(spelling) in _NAMES:
                raise ValueError(f"dataset name {spelling!r} is registered twice")
        _FORMATS[name] = DatasetFormat(name, parse, numbered_splits)
        _NAMES.update({_key(s): name for s in (name, *aliases)})
        return parse

    return deco


def dataset_names() -> tuple[str, ...]:
    """Canonical names, in registration order."""
    return tuple(_FORMATS)


def canonical_dataset(name: str) -> str:
    """The canonical dataset name for `name` (case-insensitive, common aliases), or UsageError."""
    try:
        return _NAMES[_key(name)]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}: choose one of {', '.join(_FORMATS)}") from None


def dataset_format(name: str) -> DatasetFormat:
    return _FORMATS[canonical_dataset(name)]
