"""HMDB51's official split files `<class>_test_split<N>.txt`, lines "<video>.avi <0|1|2>".

Marker 1 is train, 2 test, 0 not used in this split (the official readme). A folder gives split N's files
(`--split N`, default 1); a single file gives its own class.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import default_root, lines, numbered_split_files
from vfx.sources.ids import base_name
from vfx.sources.registry import register_dataset
from vfx.sources.rows import Row
from vfx.sources.walk import VideoIndex

_SPLIT = re.compile(r"(.+)_test_split([1-3])\.txt", re.IGNORECASE)
_MARKERS = {"0": None, "1": "train", "2": "test"}


@register_dataset("hmdb51", aliases=("hmdb",), numbered_splits=True)
def rows_hmdb51(input_path: Path, root: Path | None, split: int | None) -> list[Row]:
    files = numbered_split_files(input_path, _SPLIT, split, "hmdb51", "HMDB51 split files '<class>_test_split{number}.txt'",
                                 "not an HMDB51 split file (named '<class>_test_split<N>.txt')")
    index = VideoIndex(default_root(input_path, root))
    rows = []
    for split_file in files:
        label = _SPLIT.fullmatch(split_file.name).group(1)
        for number, line in lines(split_file):
            where = f"{split_file} line {number}"
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _MARKERS:
                raise UsageError(f"{where}: expected '<video>.avi <0|1|2>', got {line!r}")
            subset = _MARKERS[parts[1]]
            if subset is None:
                continue
            name = parts[0]
            found = index.find([base_name(name)], prefer_parent=label)
            path = found[0] if found else index.nominal(label, name)
            rows.append(Row(rel=f"{label}/{name}", path=path, where=where, label=label, split=subset))
    return rows
