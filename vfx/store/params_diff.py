"""What differs between the parameters a store was made with and the ones a run asks for.

The message a user reads when a rerun meets a store made otherwise: the keys whose values changed come
first (they are what the user just typed), then keys only one side has. Parameters are compared as the
manifest stores them (JSON), so a tuple in a run's parameters and the list the manifest read back are the
same value, at any depth (features' `models[*].input_spec.mean` is a tuple in memory, a list on disk).
"""

from __future__ import annotations

import json
from typing import Any

# How many differing keys the one-line message names before it says how many more there are.
SHOWN_KEYS = 4


def describe_difference(manifest: dict[str, Any], kind: str, params: dict[str, Any], limit: int = SHOWN_KEYS) -> str:
    """`motion_maps: False -> True, added models[1].name='i3d_flow', ...` for a store's manifest and a run's params."""
    if manifest["kind"] != kind:
        return f"it is a {manifest['kind']} store, not {kind}"
    old, new = flatten(manifest["params"]), flatten(params)
    changed = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    added = [f"added {k}={new[k]!r}" for k in sorted(new.keys() - old.keys())]
    removed = [f"removed {k}={old[k]!r}" for k in sorted(old.keys() - new.keys())]
    parts = changed + added + removed
    if not parts:
        return "parameters differ"
    more = len(parts) - limit
    return ", ".join(parts[:limit]) + (f", and {more} more" if more > 0 else "")


def flatten(params: Any) -> dict[str, Any]:
    """Dotted keys to leaf values (`clips.stride`, `models[0].name`), after the same JSON round trip the
    manifest went through; lists of plain values stay one value."""
    return _flatten(json.loads(json.dumps(params, sort_keys=True, default=str)))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}
