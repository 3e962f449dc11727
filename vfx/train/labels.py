"""Labels under horizontal flips: classes that name a direction turn into each other when mirrored.

A flip turns "Pushing something from left to right" into "... from right to left". mmaction2's
Something-Something v2 configs therefore map labels on flips (`Flip(flip_label_map={86: 87, 87: 86, 93: 94,
94: 93, 166: 167, 167: 166})`, the pulling, pushing and camera-turning pairs); here the map is by class name
(`flip_label_map` pairs, both directions), so it does not depend on a label numbering.
"""

from __future__ import annotations

import re

from vfx.errors import UsageError

_DIRECTION = re.compile(r"\b(left|right|leftwards|rightwards|clockwise|anticlockwise|counterclockwise)\b", re.IGNORECASE)


def parse_flip_label_map(text: str | None) -> tuple[tuple[str, str], ...]:
    """'A=B;C=D' -> (("A", "B"), ("C", "D")) (class names may hold spaces and commas)."""
    if not text:
        return ()
    pairs = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        a, sep, b = part.partition("=")
        if not sep or not a.strip() or not b.strip():
            raise UsageError(f"--flip-label-map: expected 'CLASS=CLASS' pairs separated by ';', got {part!r}")
        pairs.append((a.strip(), b.strip()))
    return tuple(pairs)


def flip_label_index(classes: tuple[str, ...], pairs, flip: bool) -> tuple[dict[int, int], list[str]]:
    """{label index: its index after a flip} for the pairs whose two classes the stores hold, and notes for
    the user: pairs with a class missing, and direction-named classes that a flip would turn into another."""
    index = {c: i for i, c in enumerate(classes)}
    mapping: dict[int, int] = {}
    notes = []
    for a, b in pairs:
        if a in index and b in index:
            mapping[index[a]], mapping[index[b]] = index[b], index[a]
        elif a in index or b in index:
            notes.append(f"flip label map: {a!r} <-> {b!r} has only one class in the stores; flips keep its label")
    if flip:
        unmapped = [c for c in classes if _DIRECTION.search(c) and index[c] not in mapping]
        if unmapped:
            shown = ", ".join(repr(c) for c in unmapped[:4]) + (f" and {len(unmapped) - 4} more" if len(unmapped) > 4 else "")
            notes.append(
                f"WARNING: classes {shown} name a direction, and horizontal flips (on) mirror it: pass "
                "--flip-label-map 'A=B;...' (the ssv2 recipe has Something-Something's) or --no-flip"
            )
    return mapping, notes
