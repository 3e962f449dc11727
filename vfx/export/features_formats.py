"""Exports of features stores: ActionFormer/TriDet `.npy` + timing JSON, BMN/BSN `csv_mean_100`, video_features `.npy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vfx.errors import UsageError, VideoError
from vfx.export.base import ExportFormat, model_names, register, write_bytes, write_json, write_npy
from vfx.export.timing import clip_grid, row_times_sec

#: Rows of a BSN/BMN feature file: ActivityNet features are rescaled to 100 temporal positions
#: (`csv_mean_100`, the input of BSN's TEM and of BMN with temporal_dim=100: mmaction2 bmn_400x100).
BMN_ROWS = 100


@register
class ActionFormer(ExportFormat):
    """`{video_id}.npy` float32 [T, C] (models concatenated in the store's order: RGB then flow for
    i3d_rgb + i3d_flow) and `actionformer_meta.json` {video_id: {fps, duration, feat_stride, num_frames,
    first_frame}}. ActionFormer's THUMOS14 loader (libs/datasets/thumos14.py) reads `feat_folder/<id>.npy`
    with `np.load`, takes rows as time, and maps a segment at s seconds to row
    `(s * fps - 0.5 * num_frames) / feat_stride`, which is right when `first_frame` is 0."""

    name = "actionformer"
    kinds = ("features",)

    def write_video(self, store, video_id: str, out: Path) -> dict[str, Any]:
        grid = clip_grid(store, video_id)
        feats = np.ascontiguousarray(store.read_features(video_id), dtype=np.float32)
        if feats.ndim != 2:
            raise VideoError(f"{store.path}: features of {video_id!r} have shape {feats.shape}, expected [T, C]")
        write_npy(out / f"{video_id}.npy", feats)
        return {**grid.to_json(), "rows": int(feats.shape[0]), "dim": int(feats.shape[1])}

    def finish(self, store, records, out: Path) -> list[str]:
        meta = {v: {k: r[k] for k in ("fps", "duration", "feat_stride", "num_frames", "first_frame")}
                for v, r in sorted(records.items())}
        write_json(out / "actionformer_meta.json", meta)
        notes = []
        if records:
            strides = sorted({r["feat_stride"] for r in records.values()})
            frames = sorted({r["num_frames"] for r in records.values()})
            dims = sorted({r["dim"] for r in records.values()})
            notes.append(
                f"ActionFormer config: feat_folder {out}, file_ext .npy, input_dim {'/'.join(map(str, dims))}, "
                f"feat_stride {'/'.join(map(str, strides))}, num_frames {'/'.join(map(str, frames))}, "
                "default_fps null (fps per video: actionformer_meta.json)"
            )
            late = sorted(v for v, r in records.items() if r["first_frame"] != 0)
            if late:
                notes.append(
                    f"{len(late)} videos' first clip starts after frame 0 (e.g. {late[0]}): subtract first_frame / "
                    "fps from segment times before ActionFormer's mapping"
                )
        return notes


@register
class BMN(ExportFormat):
    """`{video_id}.csv`: a header row `f0,...,f{C-1}`, then `rows` (default 100) rows of features linearly
    interpolated in time (the ActivityNet `csv_mean_100` files BSN and BMN read; mmaction2's
    LoadLocalizationFeature skips the header and transposes to [C, 100]). Row i stands for the centre of
    the i-th of `rows` equal bins over the video (or its annotated segment); each clip's feature sits at its
    clip's centre time, and bins outside the first/last clip centre take the first/last feature."""

    name = "bmn"
    kinds = ("features",)

    def __init__(self, rows: int = BMN_ROWS, **options: Any):
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise UsageError(f"--rows must be a whole number >= 1, got {rows!r}")
        super().__init__(rows=rows, **options)

    def write_video(self, store, video_id: str, out: Path) -> dict[str, Any]:
        rows = self.options["rows"]
        feats = np.asarray(store.read_features(video_id), np.float64)
        times = row_times_sec(store, video_id)
        start, end = bmn_span(store, video_id)
        resampled = interpolate_rows(feats, times, bin_centres(start, end, rows))
        header = ",".join(f"f{i}" for i in range(feats.shape[1]))
        body = "\n".join(",".join(f"{v:.9g}" for v in row) for row in resampled.astype(np.float32))
        write_bytes(out / f"{video_id}.csv", (header + "\n" + body + "\n").encode())
        return {"start_sec": start, "end_sec": end}


def bmn_span(store, video_id: str) -> tuple[float, float]:
    """(start, end) seconds the BMN rows cover: the annotated segment, else the whole video."""
    attrs = store.attrs(video_id)
    start = float(attrs.get("start_sec") or 0.0)
    end = attrs.get("end_sec")
    if end is None:
        end = attrs.get("duration_sec")
    if end is None:
        raise VideoError(f"{store.path}: video {video_id!r} has no duration recorded")
    return start, float(end)


def bin_centres(start: float, end: float, n: int) -> np.ndarray:
    return start + (np.arange(n, dtype=np.float64) + 0.5) * (end - start) / n


def interpolate_rows(feats_td: np.ndarray, times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[len(targets), D]: each column linearly interpolated at `targets` (held constant past the ends)."""
    order = np.argsort(times, kind="stable")
    t, f = times[order], feats_td[order]
    return np.stack([np.interp(targets, t, f[:, d]) for d in range(f.shape[1])], axis=1)


@register
class VideoFeaturesNpy(ExportFormat):
    """v-iashin/video_features' layout: `{video_id}_{model}.npy` float32 [T, D] per model,
    `{video_id}_timestamps_ms.npy` float64 [T] (start of each row's clip, ms) and `{video_id}_fps.npy`
    (the video's frame rate), as its `--on_extraction save_numpy` writes `<name>_<key>.npy` per output key."""

    name = "npy"
    kinds = ("features",)

    def write_video(self, store, video_id: str, out: Path) -> dict[str, Any]:
        feats = np.asarray(store.read_features(video_id), np.float32)
        attrs = store.attrs(video_id)
        models = model_names(store) or ["features"]
        dims = [int(d) for d in attrs.get("feature_dims", [feats.shape[1]])]
        if sum(dims) != feats.shape[1] or len(dims) != len(models):
            raise VideoError(f"{store.path}: {video_id!r}: feature dims {dims} do not add up to {feats.shape[1]}")
        edges = np.cumsum([0] + dims)
        for name, lo, hi in zip(models, edges[:-1], edges[1:]):
            write_npy(out / f"{video_id}_{name}.npy", np.ascontiguousarray(feats[:, lo:hi]))
        ts = np.asarray(store.clip_timestamps(video_id), np.float64)[:, 0]
        write_npy(out / f"{video_id}_timestamps_ms.npy", ts * 1000.0)
        write_npy(out / f"{video_id}_fps.npy", np.array(float(attrs.get("fps") or np.nan)))
        return {"rows": int(feats.shape[0])}
