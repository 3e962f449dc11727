"""The table of two-stream fusion variants on the synthetic motion dataset, end to end on CPU.

    python scripts/bench_fusion.py [--workdir /tmp/vfx_bench_fusion] [--seeds 0,1,2] [--jobs 2]

Protocol (the paper's, Feichtenhofer et al. 2016, Sec. 4): train the spatial (RGB) and the temporal (flow)
network separately, then build each fused network from those two (`--init-from`) and fine-tune it.

1. Phase 1, the real commands, timed: make the synthetic dataset (`scripts/make_synthetic_dataset.py`: the
   classes differ only by motion), `vfx extract-frames`, `vfx extract-flow --from-frames` (OpenCV TV-L1), then
   `vfx train-fusion` for the spatial stream, the temporal stream, and conv + 3D-conv fusion initialised
   from the two (the issue's "must show": spatial near chance, temporal and fused >= 90 % top-1).
2. Phase 2, every variant (fusion function x temporal fusion, late fusion) for each seed, through the library
   call behind `vfx train-fusion`; one table: held-out top-1 per seed, mean and standard deviation, parameter
   count, seconds per epoch, and epoch time relative to the temporal stream measured in the same run. Then the
   ranking of the fusion functions, to compare with the paper's (Table 1: conv ~ late sum > sum ~ bilinear >
   concat > max; Table 4: 3D conv + 3D pooling best).

Runs already finished in the work directory are read back, not retrained (delete the folder to start over).
Epoch times are wall-clock on a shared machine: compare them within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

FUSIONS = ("sum", "max", "concat", "conv", "bilinear", "late")
TEMPORAL = ("avg", "pool3d", "conv3d")
PAPER_ORDER = "conv ~ late > sum ~ bilinear > concat > max"


def fusion_variants() -> list[tuple[str, str]]:
    """(fusion, temporal fusion) of every fused row; bilinear + conv3d does not exist (no spatial maps)."""
    return [(f, t) for t in TEMPORAL for f in FUSIONS if not (f == "bilinear" and t == "conv3d")]


def run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))
    return elapsed


def settings(args, fused: bool) -> dict:
    """Training settings of a single stream (from scratch) or of a fused network (fine-tuning)."""
    return {
        "width": args.width, "crop": args.crop, "segments": args.segments, "flow_length": args.flow_length,
        "epochs": args.fuse_epochs if fused else args.epochs, "repeats": args.repeats,
        "lr": args.fuse_lr if fused else args.lr, "loader_workers": args.loader_workers,
    }


def cli_args(s: dict) -> list[str]:
    return [
        "--arch", "resnet18", "--width", str(s["width"]), "--crop-size", str(s["crop"]),
        "--segments", str(s["segments"]), "--flow-length", str(s["flow_length"]),
        "--epochs", str(s["epochs"]), "--epoch-repeats", str(s["repeats"]), "--batch-size", "8",
        "--optimizer", "adamw", "--lr", str(s["lr"]), "--weight-decay", "0.01", "--dropout", "0.2",
        "--val-fraction", "0.2", "--threads", "1", "--eval-every", "0", "--no-progress",
    ]


def one_run(job: dict) -> dict:
    """Train one (variant, seed) in this process with the library call behind `vfx train-fusion`."""
    import torch

    from vfx.train.data import DataConfig
    from vfx.train.loop import train_fusion
    from vfx.train.model import ModelConfig
    from vfx.train.params import TrainParams

    torch.set_num_threads(1)
    out = Path(job["out"])
    done = out / "metrics.json"
    if not done.exists():
        if out.exists():
            shutil.rmtree(out)  # an unfinished run from an interrupted bench: start it again
        s = job["settings"]
        streams = tuple(job["streams"].split(","))
        params = TrainParams(
            model=ModelConfig(streams=streams, fusion=job["fusion"], temporal_fusion=job["temporal"], width=s["width"],
                              num_segments=s["segments"], flow_length=s["flow_length"], dropout=0.2),
            data=DataConfig(num_segments=s["segments"], flow_length=s["flow_length"], crop_size=s["crop"],
                            val_fraction=0.2),
            frames=job["frames"] if "rgb" in streams else None,
            flow=job["flow"] if "flow" in streams else None,
            init_from=tuple(job["init_from"]),
            epochs=s["epochs"], epoch_repeats=s["repeats"], batch_size=8, optimizer="adamw", lr=s["lr"],
            weight_decay=0.01, seed=job["seed"], threads=1, num_workers=s["loader_workers"], eval_every=0,
        )
        train_fusion(params, out, progress=False, log=lambda s: None)
    summary = json.loads(done.read_text())
    return {
        "name": job["name"],
        "seed": job["seed"],
        "top1": summary["final"]["top1"],
        "num_parameters": summary["num_parameters"],
        "epoch_sec": float(np.mean([h["epoch_sec"] for h in summary["history"]])),
    }


def extract(args, vfx_cmd, videos: Path, frames: Path, flow: Path, logs: Path, timings: dict) -> None:
    timings["vfx extract-frames"] = run(
        vfx_cmd + ["extract-frames", str(videos), "-o", str(frames), "--size", f"{args.size}x{args.size}",
                   "--engine", args.engine, "--no-progress"],
        logs / "extract_frames.log",
    )
    timings["vfx extract-flow"] = run(
        vfx_cmd + ["extract-flow", "-o", str(flow), "--from-frames", str(frames), "--engine", args.engine,
                   "--no-progress", *args.flow_args.split()],
        logs / "extract_flow.log",
    )


def phase1(args, work: Path, vfx_cmd, frames: Path, flow: Path, logs: Path, timings: dict) -> dict:
    e2e = {}
    runs = work / "e2e"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir()
    steps = [
        ("spatial only", "rgb", "conv", "avg", [], False),
        ("temporal only", "flow", "conv", "avg", [], False),
        ("fused, conv + conv3d", "rgb,flow", "conv", "conv3d", ["rgb", "flow"], True),
    ]
    for label, streams, fusion, temporal, init, fused in steps:
        key = label.split()[0].rstrip(",")
        out, mj = runs / key, runs / f"{key}.json"
        init_args = [a for s in init for a in ("--init-from", str(runs / s / "last.pt"))]
        cmd = vfx_cmd + ["train-fusion", "--frames", str(frames), "--flow", str(flow), "-o", str(out),
                         "--streams", streams, "--fusion", fusion, "--temporal-fusion", temporal, "--seed", "0",
                         "--metrics-json", str(mj), *init_args, *cli_args(settings(args, fused))]
        timings[f"vfx train-fusion: {label}"] = run(cmd, logs / f"e2e_{key}.log")
        if key in ("spatial", "temporal"):
            (runs / ("rgb" if key == "spatial" else "flow")).symlink_to(out.name)
        e2e[label] = json.loads(mj.read_text())["top1"]
    return e2e


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/vfx_bench_fusion")
    ap.add_argument("--videos-per-class", type=int, default=40)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=64, help="side of the written videos and of the stores")
    ap.add_argument("--crop", type=int, default=48, help="network input side")
    ap.add_argument("--width", type=int, default=8, help="ResNet-18 base width")
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--flow-length", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the single streams (from scratch)")
    ap.add_argument("--fuse-epochs", type=int, default=4, help="epochs of the fused networks (fine-tuning)")
    ap.add_argument("--repeats", type=int, default=2, help="--epoch-repeats")
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--fuse-lr", type=float, default=0.001)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained in parallel (one torch thread each)")
    ap.add_argument("--loader-workers", type=int, default=0)
    ap.add_argument("--flow-args", default="", help="extra arguments for vfx extract-flow, e.g. '--backend torch'")
    ap.add_argument("--engine", default="ray", help="engine of the extract commands")
    ap.add_argument("--reuse-stores", action="store_true", help="use existing stores in --workdir as they are")
    ap.add_argument("--phase", choices=("all", "e2e", "table"), default="all",
                    help="e2e: only phase 1; table: only phase 2 (stores made or reused as needed)")
    args = ap.parse_args(argv)

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    videos, frames, flow = work / "videos", work / "frames", work / "flow"
    vfx_cmd = [sys.executable, "-c", "import sys; from vfx.cli import main; sys.argv[0] = 'vfx'; main()"]
    timings: dict[str, float] = {}

    # ---- phase 1: the real pipeline ---------------------------------------------------------------
    if not (videos / "manifest.json").exists():
        timings["make dataset"] = run(
            [sys.executable, str(Path(__file__).with_name("make_synthetic_dataset.py")), str(videos),
             "--videos-per-class", str(args.videos_per_class), "--frames", str(args.frames),
             "--size", f"{args.size}x{args.size}"],
            logs / "make_dataset.log",
        )
    if args.reuse_stores and (frames / "vfx-store.json").exists() and (flow / "vfx-store.json").exists():
        print(f"reusing the stores in {work} (extraction not timed)")
    else:
        extract(args, vfx_cmd, videos, frames, flow, logs, timings)
    e2e = phase1(args, work, vfx_cmd, frames, flow, logs, timings) if args.phase in ("all", "e2e") else {}
    n_videos = len(json.loads((videos / "manifest.json").read_text())["videos"])
    print(f"\nphase 1: end to end ({n_videos} videos, {args.frames} frames, {args.size}x{args.size}; crop {args.crop}, "
          f"ResNet-18 width {args.width}, K={args.segments}, L={args.flow_length}; streams {args.epochs} epochs, "
          f"fused {args.fuse_epochs} epochs, x{args.repeats} passes)")
    for step, sec in timings.items():
        print(f"  {step:<42} {sec:8.1f} s")
    for label, top1 in e2e.items():
        print(f"  held-out top-1, {label:<26} {100 * top1:6.1f} %")
    if args.phase == "e2e":
        (work / "results_e2e.json").write_text(json.dumps({"timings": timings, "e2e": e2e, "settings": vars(args)}, indent=1))
        return 0

    # ---- phase 2: every variant x seeds ---------------------------------------------------------------
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = work / "runs"
    common = {"frames": str(frames), "flow": str(flow)}
    singles = [
        {**common, "name": f"{s}-only/avg", "streams": s, "fusion": "conv", "temporal": "avg", "seed": seed,
         "init_from": [], "settings": settings(args, False), "out": str(runs / f"{s}-only_s{seed}")}
        for seed in seeds for s in ("rgb", "flow")
    ]
    fused = [
        {**common, "name": f"{f}/{t}", "streams": "rgb,flow", "fusion": f, "temporal": t, "seed": seed,
         "init_from": [str(runs / f"rgb-only_s{seed}" / "last.pt"), str(runs / f"flow-only_s{seed}" / "last.pt")],
         "settings": settings(args, True), "out": str(runs / f"{f}_{t}_s{seed}")}
        for seed in seeds for f, t in fusion_variants()
    ]
    t0 = time.perf_counter()
    results = []
    for batch in (singles, fused):  # the fused runs start from the single-stream checkpoints
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                results += list(pool.map(one_run, batch))
        else:
            results += [one_run(j) for j in batch]
    table_sec = time.perf_counter() - t0

    by_name: dict[str, list[dict]] = {}
    for r in results:
        by_name.setdefault(r["name"], []).append(r)
    baseline = np.mean([r["epoch_sec"] for r in by_name["flow-only/avg"]])
    print(f"\nphase 2: every variant, seeds {seeds} ({table_sec / 60:.1f} min, {args.jobs} parallel jobs); fused "
          f"networks start from the same seed's single-stream runs")
    header = f"{'variant':<16} {'params':>9} {'s/epoch':>8} {'vs flow':>8}  " + " ".join(
        f"{'s' + str(s):>6}" for s in seeds) + f"  {'mean':>6} {'std':>5}"
    print(header)
    print("-" * len(header))
    summary = {}
    for name, rows in by_name.items():
        accs = np.array([r["top1"] for r in sorted(rows, key=lambda r: r["seed"])])
        sec = float(np.mean([r["epoch_sec"] for r in rows]))
        std = float(accs.std(ddof=1)) if len(accs) > 1 else 0.0
        summary[name] = {"mean": float(accs.mean()), "std": std, "top1": accs.tolist(),
                         "params": rows[0]["num_parameters"], "epoch_sec": sec}
        print(f"{name:<16} {rows[0]['num_parameters']:>9,} {sec:>8.2f} {sec / baseline:>7.2f}x  "
              + " ".join(f"{100 * a:>6.1f}" for a in accs) + f"  {100 * accs.mean():>6.1f} {100 * std:>5.1f}")

    print("\nranking of the fusion functions (mean top-1 over seeds)")
    for temporal in TEMPORAL:
        ranked = sorted((f for f in FUSIONS if f"{f}/{temporal}" in summary),
                        key=lambda f: -summary[f"{f}/{temporal}"]["mean"])
        print(f"  {temporal:<7} " + " > ".join(f"{f} {100 * summary[f'{f}/{temporal}']['mean']:.1f}" for f in ranked))
    print(f"  paper (Table 1, VGG-16 on UCF101): {PAPER_ORDER}")
    print("temporal fusions (mean over the fusion functions that have all three)")
    both = [f for f in FUSIONS if all(f"{f}/{t}" in summary for t in TEMPORAL)]
    for temporal in TEMPORAL:
        print(f"  {temporal:<7} {100 * np.mean([summary[f'{f}/{temporal}']['mean'] for f in both]):.1f}")
    print("  paper (Table 4): 3D conv + 3D pooling > 3D pooling > 2D pooling")
    seed_std = np.mean([v["std"] for v in summary.values()])
    print(f"mean standard deviation over seeds: {100 * seed_std:.1f} points "
          f"(one held-out video = {100 / max(1, round(0.2 * n_videos)):.1f} points)")
    (work / "results.json").write_text(json.dumps({"timings": timings, "e2e": e2e, "variants": summary,
                                                    "settings": vars(args)}, indent=1))
    print(f"\nresults: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
