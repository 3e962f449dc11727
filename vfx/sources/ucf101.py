"""UCF101's official split lists (ucfTrainTestlist/): `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt`.

`trainlist0N.txt` lines are "Class/v_Class_gGG_cCC.avi K" with K the 1-based class index of classInd.txt,
`testlist0N.txt` lines "Class/v_Class_gGG_cCC.avi". A folder gives split N's train and test lists
(`--split N`, default 1); a single list file gives its own videos.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vfx.errors import UsageError
from vfx.sources.files import default_root, lines, numbered_split_files, usage
from vfx.sources.ids import base_name
from vfx.sources.registry import register_dataset
from vfx.sources.rows import Row
from vfx.sources.walk import VideoIndex

_LIST = re.compile(r"(train|test)list0?([1-3])\.txt", re.IGNORECASE)
_NOT_UCF = "not a UCF101 annotation file (classInd.txt, trainlist0N.txt, testlist0N.txt)"


def _class_index(folder: Path) -> dict[int, str]:
    """classInd.txt: `<1-based index> <ClassName>` per line."""
    path = folder / "classInd.txt"
    if not path.is_file():
        return {}
    classes: dict[int, str] = {}
    for number, line in lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UsageError(f"{path} line {number}: expected '<index> <ClassName>', got {line!r}")
        classes[int(parts[0])] = parts[1]
    return classes


def _label_from_name(rel: str) -> str | None:
    match = re.match(r"v_(.+)_g\d+_c\d+", base_name(rel))
    return match.group(1) if match else None


@register_dataset("ucf101", aliases=("ucf-101",), numbered_splits=True)
def rows_ucf101(input_path: Path, root: Path | None, split: int | None) -> list[Row]:
    if input_path.is_file() and not _LIST.fullmatch(input_path.name):
        if input_path.name.lower() != "classind.txt":
            raise usage(input_path, _NOT_UCF)
        input_path = input_path.parent
    folder = input_path if input_path.is_dir() else input_path.parent
    classes = _class_index(folder)
    lists = numbered_split_files(input_path, _LIST, split, "ucf101", "trainlist0{number}.txt or testlist0{number}.txt",
                                 _NOT_UCF, noun="list")
    video_root = default_root(folder, root)
    index = VideoIndex(video_root)
    rows = []
    for list_file in lists:
        subset = _LIST.fullmatch(list_file.name).group(1).lower()
        for number, line in lines(list_file):
            where = f"{list_file} line {number}"
            parts = line.split()
            if subset == "train" and len(parts) != 2 or subset == "test" and len(parts) not in (1, 2):
                expected = "'<Class>/<video>.avi <class index>'" if subset == "train" else "'<Class>/<video>.avi'"
                raise UsageError(f"{where}: expected {expected}, got {line!r}")
            rel = parts[0].replace("\\", "/")
            folder_label = rel.rsplit("/", 1)[0] if "/" in rel else None
            label = folder_label
            if subset == "train":
                if not parts[1].isdigit():
                    raise UsageError(f"{where}: class index must be a positive integer, got {parts[1]!r}")
                index_label = classes.get(int(parts[1]))
                if classes and index_label is None:
                    raise UsageError(f"{where}: class index {parts[1]} is not in classInd.txt")
                if index_label and folder_label and index_label != folder_label:
                    raise UsageError(
                        f"{where}: class index {parts[1]} is {index_label} in classInd.txt, "
                        f"but the video is in folder {folder_label}"
                    )
                label = label or index_label
            label = label or _label_from_name(rel)
            path = os.path.join(str(video_root), rel)
            if not os.path.exists(path):
                found = index.find([base_name(rel)], prefer_parent=label)
                path = found[0] if found else path
            rows.append(Row(rel=rel, path=path, where=where, label=label, split=subset))
    return rows
