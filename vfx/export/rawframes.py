"""mmaction2's rawframe layout, as denseflow writes it and `RawframeDataset` reads it.

    DIR/{video_id}/img_00001.jpg ...            frames store: one JPEG per stored frame, from 1, contiguous
    DIR/{video_id}/flow_x_00001.jpg, flow_y_... flow store: one grayscale JPEG per component and field
    DIR/frames_{split}.txt, DIR/flow_{split}.txt   `{frame_dir} {total_frames} {label}` per line
    DIR/classInd.txt                             `{n} {class}` from 1, as UCF101's own file

`frame_dir` is relative to DIR; `total_frames` counts the `img_` files (frames list) or the `flow_x_` files
(flow list); `label` is 0-based (line n of classInd.txt is label n - 1), as mmaction2's UCF101 list builder
(tools/data/build_file_list.py, parse_ucf101_splits) writes it. Videos without a split go to `*_all.txt`;
the label column is left out when the store has no labels. JPEG frames and JPEG flow are copied byte for
byte; raw frames, uint8 and float16 flow are encoded once (JPEG quality 95, denseflow's default; float16
quantised with the store's bound: q = round(255 (f + B) / 2B)).

mmaction2 settings that read it: RGB `dict(type='RawframeDataset', ann_file='DIR/frames_train.txt',
data_prefix=dict(img='DIR'), filename_tmpl='img_{:05}.jpg', start_index=1)`; flow the same with
`ann_file='DIR/flow_train.txt'`, `modality='Flow'`, `filename_tmpl='flow_{}_{:05d}.jpg'`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfx.errors import VideoError
from vfx.export.base import ExportFormat, register, remove_leftovers, write_bytes, write_text

JPEG_QUALITY = 95  # denseflow writes with OpenCV's imwrite default (95)
DEFAULT_BOUND = 20.0


@register
class Rawframes(ExportFormat):
    name = "rawframes"
    kinds = ("frames", "flow")

    def write_video(self, store, video_id: str, out: Path) -> dict[str, Any]:
        folder = out / video_id
        folder.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder)
        if store.kind == "frames":
            files = self._frame_files(store, video_id)
            names = [f"img_{i + 1:05d}.jpg" for i in range(len(files))]
        else:
            files = self._flow_files(store, video_id)
            n = len(files) // 2
            names = [f"flow_{axis}_{i + 1:05d}.jpg" for i in range(n) for axis in ("x", "y")]
        for name, data in zip(names, files):
            write_bytes(folder / name, data)
        attrs = store.attrs(video_id)
        count = len(files) if store.kind == "frames" else len(files) // 2
        return {"count": count, "label": attrs.get("label"), "split": attrs.get("split")}

    def _frame_files(self, store, video_id: str) -> list[bytes]:
        stored = store.stored_jpegs(video_id)
        if stored is not None:
            return _split(*stored)
        frames = store.read_frames(video_id)  # raw RGB frames: encode once
        return [_jpeg(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), f"{store.path}: {video_id}") for f in frames]

    def _flow_files(self, store, video_id: str) -> list[bytes]:
        stored = store.stored_jpegs(video_id)
        if stored is not None:
            return _split(*stored)  # x0, y0, x1, y1, ...: already denseflow's bytes
        flow = store.read_flow(video_id, dequantize=False)
        if flow.dtype != np.uint8:
            bound = float(store.attrs(video_id).get("bound", DEFAULT_BOUND))
            q = np.round((flow.astype(np.float32) + bound) * (255.0 / (2 * bound)))
            flow = np.clip(q, 0, 255).astype(np.uint8)
        where = f"{store.path}: {video_id}"
        return [_jpeg(np.ascontiguousarray(field[..., c]), where) for field in flow for c in (0, 1)]

    def finish(self, store, records, out: Path) -> list[str]:
        classes = sorted({str(r["label"]) for r in records.values() if r.get("label") not in (None, "")})
        if classes:
            write_text(out / "classInd.txt", "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
        index = {c: i for i, c in enumerate(classes)}
        prefix = "frames" if store.kind == "frames" else "flow"
        by_split: dict[str, list[str]] = {}
        unlabelled = 0
        for video_id, r in sorted(records.items()):
            line = f"{video_id} {r['count']}"
            if classes:
                if r.get("label") in (None, ""):
                    unlabelled += 1
                    continue
                line += f" {index[str(r['label'])]}"
            by_split.setdefault(str(r.get("split") or "all"), []).append(line)
        lists = []
        for split, lines in sorted(by_split.items()):
            path = out / f"{prefix}_{split}.txt"
            write_text(path, "\n".join(lines) + "\n")
            lists.append(path.name)
        notes = [f"mmaction2 lists: {', '.join(lists)}" + (", classInd.txt" if classes else " (no labels)")]
        if unlabelled:
            notes.append(f"{unlabelled} videos without a label were left out of the lists")
        return notes


def _split(buffer: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    return [buffer[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]


def _jpeg(image: np.ndarray, where: str) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise VideoError(f"{where}: JPEG encoding failed for an image of shape {image.shape}")
    return buf.tobytes()
