"""PyTorch datasets over frames, flow and features stores, with TSN segment sampling.

One item is one video: K segments, from each one RGB frame `rgb [K, 3, S, S]` (uint8, cropped and flipped;
`TwoStreamNet` normalises it on its own device) and/or a stack of L consecutive flow fields
starting at that frame `flow [K, 2L, S, S]` (float32 network input, channels x0, y0, x1, y1, ...), or in
feature mode one stored feature per segment `[K, D, h, w]` (vectors as 1x1 maps).

RGB leaves the DataLoader workers as uint8: float32 input is four times the bytes to collate and pass through
shared memory (collating a batch of 8 took 0.9 ms as float32, 0.11 ms as uint8), and the network normalises
on its own device, a GPU where there is one. Decoding the JPEGs stays most of a sample's cost
(scripts/bench_train_reads.py). Flow stays float32: its vectors are rescaled with the crop, which uint8
cannot hold.

Alignment: the RGB frame of a segment and its flow stack are matched by *source frame number*: the stack
starts with the flow field whose pair begins at that frame (`flow_pairs[:, 0]`), so stores sampled or
stepped differently still line up. Only frames that start a flow field are sampled; a stack that would run
past the last field repeats the last one (TSN pads the same way at the end of a video).

HDF5 files are opened lazily by the process that reads (each DataLoader worker opens its own handles on
first use; `__init__` only reads the metadata and closes the files again).

Randomness (segment offsets, crops, flips) comes from a generator seeded with (seed, epoch, video index), so
an epoch yields the same samples whatever the number of workers, and a resumed run replays it exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from vfx.errors import UsageError
from vfx.train.labels import flip_label_index
from vfx.store.handles import StoreHandles
from vfx.store.reader import open_store
from vfx.train.params import FEATURE_KEYS, TSN_SCALES, DataConfig  # noqa: F401 - DataConfig is public here too

# TSN feeds flow as its uint8 image q = 255 (f + 20) / 40, scaled to [0, 1], minus 0.5, over the mean ImageNet
# std 0.226 (tsn-pytorch models.py), i.e. f / (40 * 0.226) = f / 9.04 for flow f in pixels.
FLOW_INPUT_DIVISOR = 40.0 * 0.226
HELD_OUT_SPLITS = ("test", "val", "validation", "testing")


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    label: int
    # Stored positions of the candidate frames (video mode) or clips (feature mode), one per sampling slot.
    positions: np.ndarray
    # Per candidate: index of the flow field that starts at that frame (video mode with flow), else empty.
    flow_starts: np.ndarray
    num_flow: int
    # Per flow field: the field that starts where it ends (itself at the end of the video), so a stack
    # follows the motion whatever the flow step: fields (k, k+s), (k+s, k+2s), ...
    next_field: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


# --------------------------------------------------------------------------------------- sampling


def segment_offsets(n: int, k: int, rng: np.random.Generator | None) -> np.ndarray:
    """TSN segment sampling over n candidates: K equal segments, a random offset in each when training
    (`rng` given), the segment centre at test time (yjxiong/tsn-pytorch dataset.py `_sample_indices`,
    `_get_test_indices`). With fewer candidates than segments, candidates repeat in order."""
    if n <= 0:
        raise ValueError("no candidates to sample from")
    if rng is None:
        tick = n / k
        return np.array([int(tick / 2.0 + tick * x) for x in range(k)], np.int64)
    average = n // k
    if average > 0:
        return np.arange(k, dtype=np.int64) * average + rng.integers(0, average, size=k)
    return np.floor(np.arange(k) * n / k).astype(np.int64)


def sample_crop_box(
    rng: np.random.Generator, height: int, width: int, crop_size: int, scales=TSN_SCALES, max_distort: int = 1
) -> tuple[float, float, float, float]:
    """TSN's multi-scale corner crop (GroupMultiScaleCrop with more_fix_crop): returns (x0, y0, w, h) as
    fractions of the frame, so the same box applies to frames and flow of any resolution."""
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    # A size within 3 px of the crop is snapped to it (TSN does this to avoid useless rescaling).
    crop_h = [crop_size if abs(s - crop_size) < 3 else s for s in sizes]
    crop_w = [crop_size if abs(s - crop_size) < 3 else s for s in sizes]
    pairs = [(w, h) for i, h in enumerate(crop_h) for j, w in enumerate(crop_w) if abs(i - j) <= max_distort]
    cw, ch = pairs[int(rng.integers(len(pairs)))]
    sw, sh = (width - cw) // 4, (height - ch) // 4
    # The 13 fixed positions: 4 corners, centre, 4 edge middles, 4 quarter points.
    offsets = [
        (0, 0), (4 * sw, 0), (0, 4 * sh), (4 * sw, 4 * sh), (2 * sw, 2 * sh),
        (0, 2 * sh), (4 * sw, 2 * sh), (2 * sw, 4 * sh), (2 * sw, 0),
        (sw, sh), (3 * sw, sh), (sw, 3 * sh), (3 * sw, 3 * sh),
    ]
    x0, y0 = offsets[int(rng.integers(len(offsets)))]
    return x0 / width, y0 / height, cw / width, ch / height


def center_crop_box(height: int, width: int, crop_size: int) -> tuple[float, float, float, float]:
    """TSN's test view: scale the short side to crop * 256/224, take the centre crop (as fractions)."""
    scaled_short = crop_size * 256.0 / 224.0
    side = crop_size / scaled_short  # crop side as a fraction of the short side
    cw = side * min(height, width) / width
    ch = side * min(height, width) / height
    return (1.0 - cw) / 2.0, (1.0 - ch) / 2.0, cw, ch


def _crop_resize(images_nhwc: np.ndarray, box, size: int) -> tuple[np.ndarray, float, float]:
    """Crop the fractional box from every image and resize to size x size; also the (x, y) scale factors."""
    n, h, w, c = images_nhwc.shape
    fx0, fy0, fw, fh = box
    x0, y0 = int(round(fx0 * w)), int(round(fy0 * h))
    cw, ch = max(1, int(round(fw * w))), max(1, int(round(fh * h)))
    cw, ch = min(cw, w - x0), min(ch, h - y0)
    out = np.empty((n, size, size, c), images_nhwc.dtype)
    for i in range(n):
        patch = images_nhwc[i, y0 : y0 + ch, x0 : x0 + cw]
        if (cw, ch) != (size, size):
            patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)
        out[i] = patch.reshape(size, size, c)
    return out, size / cw, size / ch


def rgb_to_tensor(frames_khwc: np.ndarray) -> torch.Tensor:
    """uint8 RGB [K, S, S, 3] -> uint8 [K, 3, S, S] (the network normalises it: `vfx.train.model.normalize_rgb`)."""
    return torch.from_numpy(np.ascontiguousarray(frames_khwc.transpose(0, 3, 1, 2)))


def flow_to_input(flow_klhw2: np.ndarray) -> torch.Tensor:
    """Flow in pixels [K, L, S, S, 2] -> [K, 2L, S, S] with channels x0, y0, x1, y1, ..."""
    k, l, s1, s2, _ = flow_klhw2.shape
    x = flow_klhw2.transpose(0, 1, 4, 2, 3).reshape(k, 2 * l, s1, s2) / np.float32(FLOW_INPUT_DIVISOR)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


# --------------------------------------------------------------------------------------- splits


def split_ids(
    video_ids: list[str], labels: dict[str, str], splits: dict[str, str | None], cfg: DataConfig, source: str
) -> tuple[list[str], list[str], str]:
    """(train ids, held-out ids, how): the stores' split attribute, or a stratified random fraction."""
    if cfg.val_fraction is None:
        named = {v: (splits.get(v) or "").lower() for v in video_ids}
        train = [v for v in video_ids if named[v] == "train"]
        held = [v for v in video_ids if named[v] in HELD_OUT_SPLITS]
        if train and held:
            return train, held, "split attribute"
        if any(named.values()):
            raise UsageError(
                f"{source}: the split attribute gives {len(train)} train and {len(held)} test/val videos; "
                "pass --val-fraction to hold out a random part of each class instead"
            )
        fraction = 0.2
        how = "no split attribute: 20 % of each class held out (--val-fraction to change)"
    else:
        fraction = cfg.val_fraction
        how = f"--val-fraction {fraction:g}"
    rng = np.random.default_rng(cfg.split_seed)
    by_class: dict[str, list[str]] = {}
    for v in video_ids:
        by_class.setdefault(labels[v], []).append(v)
    train, held = [], []
    for label in sorted(by_class):
        members = sorted(by_class[label])
        order = rng.permutation(len(members))
        n_held = int(round(len(members) * fraction))
        if len(members) >= 2:
            n_held = min(max(n_held, 1), len(members) - 1)
        else:
            n_held = 0
        held += [members[i] for i in order[:n_held]]
        train += [members[i] for i in order[n_held:]]
    return sorted(train), sorted(held), how


# --------------------------------------------------------------------------------------- stores


def _open(path: str | os.PathLike, kind: str):
    store = open_store(path)
    if store.kind != kind:
        raise UsageError(f"{path}: is a {store.kind} store, expected a {kind} store")
    return store


class _LazyStores:
    """The datasets' stores by stream name, opened per process on first use (`StoreHandles`)."""

    def __init__(self, paths: dict[str, str], kinds: dict[str, str]):
        self.paths = paths
        self.kinds = kinds
        self._handles = StoreHandles()

    def get(self, name: str):
        return self._handles.get(self.paths[name], lambda path: _open(path, self.kinds[name]))

    @property
    def opened(self) -> bool:
        return self._handles.opened

    def close(self) -> None:
        self._handles.close()


@dataclass(frozen=True)
class Catalog:
    """What the stores hold, read once: class names, every usable video and its label and split."""

    classes: tuple[str, ...]
    labels: dict[str, str]
    splits: dict[str, str | None]
    video_ids: list[str]
    dropped: dict[str, str]  # video_id -> why it cannot be used (missing in a store, failed)
    overlap: str = ""  # how many videos the stores hold and have in common, for messages


def read_catalog(primary, others: list) -> Catalog:
    """Videos done in every store; labels and splits from the primary store (frames, or first features)."""
    ids = set(primary.video_ids())
    held = [f"{len(ids)} in {primary.path}"]
    dropped = {}
    for store in others:
        have = set(store.video_ids())
        held.append(f"{len(have)} in {store.path}")
        for v in sorted(ids - have):
            dropped[v] = f"not done in {store.path}"
        ids &= have
    overlap = f"{len(ids)} videos done in every store ({', '.join(held)})" if others else f"{len(ids)} videos done"
    labels, splits = {}, {}
    for v in sorted(ids):
        attrs = primary.attrs(v)
        label = attrs.get("label")
        if label is None or label == "":
            dropped[v] = f"no label in {primary.path}"
            continue
        labels[v] = str(label)
        splits[v] = attrs.get("split")
    if not labels:
        raise UsageError(f"{primary.path}: no labelled videos common to all stores: {overlap}")
    return Catalog(tuple(sorted(set(labels.values()))), labels, splits, sorted(labels), dropped, overlap)


# --------------------------------------------------------------------------------------- datasets


class _SegmentDataset(Dataset):
    """Shared logic: records, per-item generator, lazy stores."""

    def __init__(self, records: list[VideoRecord], stores: _LazyStores, cfg: DataConfig, train: bool, seed: int):
        self.records = records
        self.stores = stores
        self.cfg = cfg
        self.train = train
        self.seed = seed
        self.epoch = 0
        # Each video appears this many times per epoch, with independent segments and augmentation (the
        # release repeats its training set 10 times per epoch: `epochFactor`, `cnn_ucf101_fusion.m`).
        self.repeats = 1

    def set_epoch(self, epoch: int) -> None:
        """Call before iterating each epoch (DataLoader workers copy the dataset when an iterator starts)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records) * self.repeats

    def _rng(self, index: int) -> np.random.Generator | None:
        return np.random.default_rng([self.seed, self.epoch, index]) if self.train else None

    def record(self, index: int) -> VideoRecord:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.records[index % len(self.records)]

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], np.int64)


class VideoSegmentDataset(_SegmentDataset):
    """RGB frames and/or stacked flow from frames/flow stores. Build with `build_video_datasets`."""

    def __init__(self, records, stores, cfg, train, seed, streams: tuple[str, ...]):
        super().__init__(records, stores, cfg, train, seed)
        self.streams = streams
        self.flip_labels: dict[int, int] = {}  # label index -> label index of its mirror image

    def __getitem__(self, index: int) -> dict:
        rec = self.record(index)
        rng = self._rng(index)
        cfg = self.cfg
        slots = segment_offsets(len(rec.positions), cfg.num_segments, rng)
        sample: dict = {"label": rec.label, "index": index}
        flip = bool(self.train and cfg.flip and rng.random() < 0.5)
        if flip:
            sample["label"] = self.flip_labels.get(rec.label, rec.label)
        box = None
        if "rgb" in self.streams:
            frames = self.read_rgb(rec.video_id, rec.positions[slots])
            box = self._box(rng, frames.shape[1], frames.shape[2])
            frames, _, _ = _crop_resize(frames, box, cfg.crop_size)
            if flip:
                frames = frames[:, :, ::-1]
            sample["rgb"] = rgb_to_tensor(frames)
        if "flow" in self.streams:
            cur = rec.flow_starts[slots]
            columns = [cur]
            for _ in range(cfg.flow_length - 1):
                cur = rec.next_field[cur]
                columns.append(cur)
            idx = np.stack(columns, axis=1)  # [K, L] flow field indices
            unique, inverse = np.unique(idx.ravel(), return_inverse=True)
            fields = self.read_flow(rec.video_id, unique)[inverse]  # [K*L, H, W, 2] px
            if box is None:
                box = self._box(rng, fields.shape[1], fields.shape[2])
            fields, sx, sy = _crop_resize(fields, box, cfg.crop_size)
            # Resizing a flow field scales its vectors too.
            fields = fields * np.array([sx, sy], np.float32)
            if flip:
                fields = fields[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)  # mirror: x motion reverses
            k = cfg.num_segments
            sample["flow"] = flow_to_input(fields.reshape(k, cfg.flow_length, *fields.shape[1:]))
        return sample

    def read_rgb(self, video_id: str, positions: np.ndarray) -> np.ndarray:
        """uint8 RGB [N, H, W, 3] of stored frames `positions` (any order, repeats allowed)."""
        return self.stores.get("frames").read_frames(video_id, positions)

    def read_flow(self, video_id: str, fields: np.ndarray) -> np.ndarray:
        """float32 pixels [N, H, W, 2] of flow fields `fields`."""
        return self.stores.get("flow").read_flow(video_id, fields)

    def _box(self, rng, height: int, width: int):
        if self.train:
            return sample_crop_box(rng, height, width, self.cfg.crop_size, self.cfg.scales, self.cfg.max_distort)
        return center_crop_box(height, width, self.cfg.crop_size)


class FeatureSegmentDataset(_SegmentDataset):
    """Stored per-clip features of one or two feature stores, K clips per video (TSN sampling over clips)."""

    def __init__(self, records, stores, cfg, train, seed, streams: tuple[str, ...], clip_rows: dict):
        super().__init__(records, stores, cfg, train, seed)
        self.streams = streams
        # video_id -> stream -> stored row of each aligned clip
        self.clip_rows = clip_rows

    def __getitem__(self, index: int) -> dict:
        rec = self.record(index)
        slots = segment_offsets(len(rec.positions), self.cfg.num_segments, self._rng(index))
        sample: dict = {"label": rec.label, "index": index}
        for s in self.streams:
            rows = self.clip_rows[rec.video_id][s][rec.positions[slots]]
            x = read_feature_rows(self.stores.get(s), rec.video_id, self.cfg.feature_key, rows)
            sample[s] = torch.from_numpy(np.ascontiguousarray(x))
        return sample


def read_feature_rows(store, video_id: str, key: str, rows: np.ndarray) -> np.ndarray:
    """Stored features of the given clips as float32 maps `[len(rows), D, h, w]` (vectors as 1x1 maps)."""
    if key == "features":
        feats = np.asarray(store.read_features(video_id))
    else:
        group = store.group(video_id)
        if key not in group:
            raise UsageError(f"{store.path}: video {video_id} has no '{key}' dataset (made without --keep-spatial?)")
        feats = group[key]
    unique, inverse = np.unique(rows, return_inverse=True)
    x = np.asarray(feats[unique], np.float32)[inverse]
    if x.ndim == 2:
        return x[:, :, None, None]
    if x.ndim == 5:
        return x.mean(axis=2)  # [clips, D, T', h, w] -> average over the clip's time steps
    if x.ndim == 4:
        return x
    raise UsageError(f"{store.path}: {key} of {video_id} has an unexpected shape {feats.shape}")


@dataclass
class Datasets:
    train: _SegmentDataset
    val: _SegmentDataset
    classes: tuple[str, ...]
    split_how: str
    dropped: dict[str, str]
    feature_channels: dict[str, int]
    overlap: str = ""
    notes: list[str] = field(default_factory=list)  # warnings for the user (direction classes under flips)


def _flow_alignment(frame_index: np.ndarray | None, pairs: np.ndarray):
    """(candidate frame positions, flow start per candidate, next field per field) for one video; None when
    no flow field starts at a stored frame."""
    starts = {int(a): i for i, a in enumerate(pairs[:, 0])}
    next_field = np.array([starts.get(int(b), i) for i, b in enumerate(pairs[:, 1])], np.int64)
    if frame_index is None:
        every = np.arange(len(pairs), dtype=np.int64)
        return every, every, next_field
    positions = [j for j, s in enumerate(frame_index) if int(s) in starts]
    if not positions:
        return None
    flow_starts = np.array([starts[int(frame_index[j])] for j in positions], np.int64)
    return np.array(positions, np.int64), flow_starts, next_field


def build_video_datasets(
    frames_path: str | os.PathLike | None,
    flow_path: str | os.PathLike | None,
    streams: tuple[str, ...],
    cfg: DataConfig,
    seed: int = 0,
) -> Datasets:
    """Train and held-out datasets over a frames store and/or a flow store."""
    paths, kinds = {}, {}
    if "rgb" in streams:
        if frames_path is None:
            raise UsageError("the rgb stream needs --frames STORE")
        paths["frames"], kinds["frames"] = str(frames_path), "frames"
    if "flow" in streams:
        if flow_path is None:
            raise UsageError("the flow stream needs --flow STORE")
        paths["flow"], kinds["flow"] = str(flow_path), "flow"
    opened = {name: _open(p, kinds[name]) for name, p in paths.items()}
    try:
        primary = opened.get("frames", opened.get("flow"))
        catalog = read_catalog(primary, [s for s in opened.values() if s is not primary])
        records_by_id: dict[str, VideoRecord] = {}
        dropped = dict(catalog.dropped)
        class_index = {c: i for i, c in enumerate(catalog.classes)}
        for v in catalog.video_ids:
            label = class_index[catalog.labels[v]]
            if "flow" in opened:
                pairs = np.asarray(opened["flow"].flow_pairs(v))
                if len(pairs) == 0:
                    dropped[v] = f"no flow fields in {paths['flow']}"
                    continue
                frame_index = opened["frames"].frame_index(v) if "frames" in opened else None
                aligned = _flow_alignment(frame_index, pairs)
                if aligned is None:
                    dropped[v] = f"no flow field in {paths['flow']} starts at a frame stored in {paths['frames']}"
                    continue
                positions, flow_starts, next_field = aligned
                records_by_id[v] = VideoRecord(v, label, positions, flow_starts, len(pairs), next_field)
            else:
                n = opened["frames"].num_frames(v)
                if n == 0:
                    dropped[v] = f"no frames in {paths['frames']}"
                    continue
                records_by_id[v] = VideoRecord(v, label, np.arange(n, dtype=np.int64), np.zeros(0, np.int64), 0)
    finally:
        for store in opened.values():
            store.close()
    usable = sorted(records_by_id)
    train_ids, val_ids, how = split_ids(usable, catalog.labels, catalog.splits, cfg, str(primary.path))
    if not train_ids or not val_ids:
        raise UsageError(f"{primary.path}: need videos in both train and held-out sets, got {len(train_ids)} and "
                         f"{len(val_ids)} ({catalog.overlap})")
    train = VideoSegmentDataset([records_by_id[v] for v in train_ids], _LazyStores(paths, kinds), cfg, True, seed, streams)
    train.flip_labels, notes = flip_label_index(catalog.classes, cfg.flip_label_map, cfg.flip)
    return Datasets(
        train=train,
        val=VideoSegmentDataset([records_by_id[v] for v in val_ids], _LazyStores(paths, kinds), cfg, False, seed, streams),
        classes=catalog.classes,
        split_how=how,
        dropped=dropped,
        feature_channels={},
        overlap=catalog.overlap,
        notes=notes,
    )


def build_feature_datasets(
    feature_paths: list[str | os.PathLike], streams: tuple[str, ...], cfg: DataConfig, seed: int = 0
) -> Datasets:
    """Train and held-out datasets over feature stores, the i-th store feeding the i-th stream."""
    if len(feature_paths) != len(streams):
        raise UsageError(
            f"{len(feature_paths)} --features stores for {len(streams)} streams ({','.join(streams)}); "
            "give one store per stream, in the order of --streams"
        )
    paths = {s: str(p) for s, p in zip(streams, feature_paths)}
    kinds = {s: "features" for s in streams}
    opened = {s: _open(p, "features") for s, p in paths.items()}
    try:
        primary = opened[streams[0]]
        catalog = read_catalog(primary, [opened[s] for s in streams[1:]])
        class_index = {c: i for i, c in enumerate(catalog.classes)}
        records_by_id, clip_rows, dropped = {}, {}, dict(catalog.dropped)
        channels: dict[str, int] = {}
        for v in catalog.video_ids:
            # Align clips of the two stores by their first source frame; keep clips present in both.
            firsts = {s: np.asarray(opened[s].clip_frames(v))[:, 0] for s in streams}
            common = sorted(set.intersection(*(set(map(int, f)) for f in firsts.values())))
            if not common:
                dropped[v] = "no clip common to all feature stores"
                continue
            rows = {}
            for s in streams:
                where = {int(a): i for i, a in enumerate(firsts[s])}
                rows[s] = np.array([where[c] for c in common], np.int64)
                if s not in channels:
                    channels[s] = int(read_feature_rows(opened[s], v, cfg.feature_key, rows[s][:1]).shape[1])
            clip_rows[v] = rows
            records_by_id[v] = VideoRecord(
                v, class_index[catalog.labels[v]], np.arange(len(common), dtype=np.int64), np.zeros(0, np.int64), 0
            )
    finally:
        for store in opened.values():
            store.close()
    usable = sorted(records_by_id)
    train_ids, val_ids, how = split_ids(usable, catalog.labels, catalog.splits, cfg, str(primary.path))
    if not train_ids or not val_ids:
        raise UsageError(f"{primary.path}: need videos in both train and held-out sets, got {len(train_ids)} and "
                         f"{len(val_ids)} ({catalog.overlap})")
    return Datasets(
        train=FeatureSegmentDataset(
            [records_by_id[v] for v in train_ids], _LazyStores(paths, kinds), cfg, True, seed, streams, clip_rows
        ),
        val=FeatureSegmentDataset(
            [records_by_id[v] for v in val_ids], _LazyStores(paths, kinds), cfg, False, seed, streams, clip_rows
        ),
        classes=catalog.classes,
        split_how=how,
        dropped=dropped,
        feature_channels=channels,
        overlap=catalog.overlap,
    )
