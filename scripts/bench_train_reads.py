"""Benchmark `vfx train-fusion`'s training reads from stores against mmaction2-style JPEG trees, same run.

Data: copies of the sample videos in class folders (one class per sample), `vfx extract-frames` at short side
256 (JPEG q95), and a flow store of quantised uint8 fields (bound 20, what `vfx extract-flow` stores by
default) holding OpenCV Farneback flow of consecutive stored frames (TV-L1 would take minutes here; the
reads do not care which flow it is). The same frames and flow are then written as an mmaction2 rawframes
tree: `<video>/img_00001.jpg` (the stored JPEG bytes themselves) and `flow_x_00001.jpg` / `flow_y_00001.jpg`
(the quantised planes as grey JPEGs, q95, as denseflow writes them).

Loaders, 2 DataLoader workers each, batch 8, the training set of one epoch; every loader is timed up to the
float network input of a batch in the training process (what train-fusion feeds its model):
  vfx      train-fusion's dataset (vfx.train.data.build_video_datasets) reading the stores; RGB leaves the
           workers as uint8 and the consumer normalises each batch (`normalize_rgb`, the first step of train-fusion's
           network on its device; here on the CPU, and timed)
  tree     the baseline: a plain PyTorch loader over the JPEG files (cv2.imread per file, as mmcv's default
           backend does), normalising in its workers as tsn-pytorch's and temporal-shift-module's loaders
           do (float32 out of the workers). It is vfx's own dataset class with its reads replaced, so the
           records, TSN sampling, crops, flips and arithmetic are the same
  tree u8  the same JPEG files read by vfx's dataset as it is (uint8 out, normalised by the consumer): the
           difference to `vfx` is the reads alone
  in RAM   vfx's dataset with its reads served from the stored bytes held in memory (RGB: the JPEG files,
           decoded by vfx's decoder; flow: the uint8 fields): no file system, no HDF5. It bounds what any
           store of these bytes can reach, since decoding and the shared pipeline are left.
Flow is float32 out of the workers in every loader (its vectors scale with the crop), so its `tree` and
`tree u8` are the same loader.
Streams: RGB (3 segments, one frame each) and flow (3 segments, stacks of 5 fields).
Targets (issue 13): >= 1.2x the tree's samples/s for RGB, >= 1.0x for flow stacks.

Usage: python scripts/bench_train_reads.py [--copies 4] [--epochs 3] [--workdir /tmp/vfx-bench-train-reads]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_frames import SAMPLES, sample_dir  # noqa: E402

import vfx  # noqa: E402
from vfx.codec import decode_jpegs, dequantize_flow  # noqa: E402
from vfx.engine import RunOptions, run_stage  # noqa: E402
from vfx.engine.stage import Stage  # noqa: E402
from vfx.train.data import DataConfig, VideoSegmentDataset, build_video_datasets  # noqa: E402
from vfx.train.model import normalize_rgb  # noqa: E402
from vfx.types import VideoItem, VideoOutput  # noqa: E402

BOUND = 20.0


class FarnebackFlowStage(Stage):
    """uint8 flow fields of consecutive stored frames, laid out as `vfx extract-flow --from-frames` stores them."""

    kind = "flow"

    def __init__(self, frames_path: str):
        self.frames_path = frames_path
        self._cache: dict[str, tuple] = {}

    def provenance(self):
        return {"stage": "bench-farneback-flow", "bound": BOUND}

    def process(self, item: VideoItem) -> VideoOutput:
        import cv2

        source = os.path.realpath(item.path)  # copies are links to one sample: compute its flow once
        if source not in self._cache:
            store = vfx.open_store(self.frames_path)
            fi = store.frame_index(item.video_id)
            grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in store.read_frames(item.video_id)]
            store.close()
            flow = np.stack([cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
                             for a, b in zip(grey[:-1], grey[1:])])
            q = np.round((np.clip(flow, -BOUND, BOUND) + BOUND) * 255.0 / (2 * BOUND)).astype(np.uint8)
            self._cache[source] = (q, np.stack([fi[:-1], fi[1:]], 1).astype(np.int32))
        q, pairs = self._cache[source]
        return VideoOutput(datasets={"flow": q, "flow_pairs": pairs},
                           attrs={"flow_format": "uint8", "bound": BOUND, "step": 1})


def make_data(workdir: Path, copies: int) -> tuple[Path, Path, Path]:
    videos = workdir / "videos"
    shutil.rmtree(workdir, ignore_errors=True)
    for name in SAMPLES:
        label = Path(name).stem
        (videos / label).mkdir(parents=True)
        for c in range(copies):
            os.symlink(sample_dir() / name, videos / label / f"{label}_{c}.mp4")
    frames, flow, tree = workdir / "frames", workdir / "flow", workdir / "tree"
    subprocess.run([sys.executable, "-m", "vfx", "extract-frames", str(videos), "-o", str(frames), "--short-side",
                    "256", "--quality", "95", "--engine", "serial", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    store = vfx.open_store(frames)
    items = [VideoItem(v, store.attrs(v)["source_path"], store.attrs(v).get("label")) for v in store.video_ids()]
    store.close()
    summary = run_stage(FarnebackFlowStage(str(frames)), items, flow, RunOptions(engine="serial", progress=False))
    assert summary.failed == 0, summary.failures
    write_tree(frames, flow, tree)
    return frames, flow, tree


def write_tree(frames_path: Path, flow_path: Path, tree: Path) -> None:
    import cv2

    frames, flow = vfx.open_store(frames_path), vfx.open_store(flow_path)
    for v in frames.video_ids():
        out = tree / v
        out.mkdir(parents=True)
        for k, data in enumerate(_jpegs(frames, v)):
            (out / f"img_{k + 1:05d}.jpg").write_bytes(bytes(data))
        q = flow.read_flow(v, dequantize=False)
        for k, field in enumerate(q):
            for axis, name in ((0, "x"), (1, "y")):
                cv2.imwrite(str(out / f"flow_{name}_{k + 1:05d}.jpg"), np.ascontiguousarray(field[..., axis]),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
    frames.close()
    flow.close()


def _jpegs(store, video_id):
    group = store.group(video_id)
    offsets, data = group["jpeg_offsets"][()], group["jpeg"][()]
    return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


class TreeDataset(VideoSegmentDataset):
    """train-fusion's dataset with its reads replaced by JPEG files: same records, sampling and augmentation."""

    def __init__(self, base: VideoSegmentDataset, tree: Path):
        super().__init__(base.records, base.stores, base.cfg, base.train, base.seed, base.streams)
        self.tree = tree

    def read_rgb(self, video_id, positions):
        import cv2

        return np.stack([cv2.cvtColor(cv2.imread(str(self.tree / video_id / f"img_{p + 1:05d}.jpg")),
                                      cv2.COLOR_BGR2RGB) for p in positions])

    def read_flow(self, video_id, fields):
        import cv2

        folder = self.tree / video_id
        q = np.stack([np.stack([cv2.imread(str(folder / f"flow_{a}_{f + 1:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
                                for a in "xy"], -1) for f in fields])
        return q.astype(np.float32) * np.float32(2 * BOUND / 255.0) - np.float32(BOUND)


class PlainTreeDataset(TreeDataset):
    """The JPEG tree loader normalising RGB in its workers, float32 out: a plain PyTorch loader."""

    def __getitem__(self, index):
        sample = super().__getitem__(index)
        if "rgb" in sample:
            sample["rgb"] = normalize_rgb(sample["rgb"])
        return sample


class InMemoryDataset(VideoSegmentDataset):
    """train-fusion's dataset with its reads served from the stores' bytes copied into RAM (the ceiling row)."""

    def __init__(self, base: VideoSegmentDataset, frames_path: Path, flow_path: Path):
        super().__init__(base.records, base.stores, base.cfg, base.train, base.seed, base.streams)
        self.jpegs, self.flow = {}, {}
        ids = [r.video_id for r in base.records]
        if "rgb" in base.streams:
            frames = vfx.open_store(frames_path)
            self.jpegs = {v: frames.stored_jpegs(v) for v in ids}
            frames.close()
        if "flow" in base.streams:
            flow = vfx.open_store(flow_path)
            self.flow = {v: flow.read_flow(v, dequantize=False) for v in ids}
            flow.close()

    def read_rgb(self, video_id, positions):
        buffer, offsets = self.jpegs[video_id]
        return decode_jpegs(buffer, offsets, positions)

    def read_flow(self, video_id, fields):
        return dequantize_flow(self.flow[video_id][fields], BOUND)


def warm_loader(dataset):
    """A DataLoader whose workers have started and read the data once (page cache warm, stores open)."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=8, num_workers=2, shuffle=True, persistent_workers=True,
                        generator=torch.Generator().manual_seed(0))
    for _ in loader:
        pass
    return loader


def samples_per_sec(loader, epochs: int) -> float:
    import torch

    n = 0
    start = time.perf_counter()
    # The workers are persistent and keep the dataset they copied at start, so every epoch replays the same
    # samples (set_epoch would not reach them); the reads and decodes are what is timed, not the augmentation.
    for _ in range(epochs):
        for batch in loader:
            if "rgb" in batch and batch["rgb"].dtype == torch.uint8:
                batch["rgb"] = normalize_rgb(batch["rgb"])  # the network's first step, on its device
            n += len(batch["label"])
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4, help="copies of each sample video")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per loader (after one warm-up epoch)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per loader (median kept)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vfx-bench-train-reads"))
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    frames, flow, tree = make_data(args.workdir, args.copies)
    cfg = DataConfig(num_segments=3, flow_length=5, crop_size=224, val_fraction=0.25)
    rows = []
    for stream in ("rgb", "flow"):
        data = build_video_datasets(frames, flow, (stream,), cfg)
        base = data.train
        base.repeats = 8  # more samples per epoch than videos: steadier numbers
        datasets = {"vfx": base, "tree": PlainTreeDataset(base, tree), "tree u8": TreeDataset(base, tree),
                    "in RAM": InMemoryDataset(base, frames, flow)}
        if stream == "flow":
            del datasets["tree u8"]  # flow is float32 out of the workers either way: the same loader as `tree`
        for dataset in datasets.values():
            dataset.repeats = base.repeats
        loaders = {name: warm_loader(dataset) for name, dataset in datasets.items()}
        # Rounds alternate between the loaders and the median is kept: on a noisy machine a slow second
        # hits all sides alike instead of one.
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                rates[name].append(samples_per_sec(loader, args.epochs))
        rows.append((stream, {name: float(np.median(r)) for name, r in rates.items()}))
        del loaders
    load = os.getloadavg()
    print(f"{len(base.records)} training videos x {base.repeats}; 3 segments, flow stacks of 5, crop 224, batch 8,"
          f" 2 DataLoader workers, median of {args.rounds} alternating rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    names = ("vfx", "tree", "tree u8", "in RAM")
    print("samples/s (ratio against the tree); vfx/tree u8 compares the reads alone")
    print(f"{'stream':8}" + "".join(f"{n:>18}" for n in names) + f"{'vfx/tree u8':>13}")
    for stream, rate in rows:
        cells = "".join(f"{rate[n]:9.1f} ({rate[n] / rate['tree']:4.2f}x)" if n in rate else f"{'-':>18}" for n in names)
        reads = rate["vfx"] / rate.get("tree u8", rate["tree"])
        print(f"{stream:8}{cells}{reads:12.2f}x")


if __name__ == "__main__":
    main()
