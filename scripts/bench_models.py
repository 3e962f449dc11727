"""Forward speed of every backbone on CPU at its default input, and where MSNet / CorrNet spend it.

    python scripts/bench_models.py                       # all models, 1 warm-up + 3 timed clips each
    python scripts/bench_models.py --models tsm_r50 msnet_r50 --repeats 5 --threads 2

Prints clips/s with the ratio to the baseline (`tsm_r50`, measured in the same run), the share of forward
time spent inside the Motion Squeeze module (MSNet) or the correlation blocks (CorrNet), and the same
share in FLOPs (flop_counter on the meta device; the MSNet paper claims +2.5 % FLOPs for the MS module).
Random weights: speed does not depend on the values. Beside our GFLOPs and parameters stand the figures
of the model's paper or reference model zoo (its `vfx models` card; `~` marks a rounded figure).

    python scripts/bench_models.py --precision bf16      # plus a table: bf16 autocast against fp32
    python scripts/bench_models.py --precision bf16 --only-precision --per-family   # one model per family

`--precision bf16` (or fp16) adds, per model, clips/s under `torch.autocast` as `vfx features --precision`
runs it (vfx.features.runner.autocast), its ratio to fp32 timed round-robin in the same run, and the drift
of the pooled features (`forward_features`, what the store holds) against fp32 on the same clip:
max |f - f32| / max |f32| and mean |f - f32| / mean |f32|. The CPU's native bf16 support is printed with it:
without avx512_bf16 / AMX (or Arm bf16) autocast emulates bf16 and runs slower than fp32.
`--per-family` keeps one model per family (a family is a model file of vfx/models, DESIGN.md's "one model
family per file"): the one with the fewest GFLOPs at its default input, so that a CPU without native bf16,
where emulated bf16 runs 20-40x slower than fp32, still covers every family in reasonable time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

import vfx.models as M
from vfx.models.corrnet import CorrelationBlock
from vfx.models.msnet import MotionSqueeze
from vfx.models.registry import get_card
from vfx.models.summary import count_gflops

BASELINE = "tsm_r50"


def parts_of_interest(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (MotionSqueeze, CorrelationBlock))]


class Stopwatch:
    """Accumulates wall time spent inside the given modules via forward pre/post hooks."""

    def __init__(self, modules: list[nn.Module]):
        self.seconds = 0.0
        self._start = 0.0
        for m in modules:
            m.register_forward_pre_hook(self._enter)
            m.register_forward_hook(self._leave)

    def _enter(self, module, args):
        self._start = time.perf_counter()

    def _leave(self, module, args, output):
        self.seconds += time.perf_counter() - self._start


def flop_share(name: str) -> tuple[float, float]:
    """(total GFLOPs, GFLOPs inside the parts of interest) at the default input, meta device."""
    with torch.device("meta"):
        model = M.create_model(name)
        spec = model.input_spec
        x = torch.empty(1, spec.channels, spec.num_frames, spec.size, spec.size)
        total = count_gflops(model, x)
        parts = parts_of_interest(model)
        if not parts:
            return total, 0.0
        # Count the parts alone by swapping them for their own cost: run once more with the parts replaced
        # by identity-shaped pass-throughs and take the difference.
        originals = [(m, m.forward) for m in parts]
        for m in parts:
            m.forward = _passthrough
        try:
            without = count_gflops(model, x)
        finally:
            for m, fwd in originals:
                m.forward = fwd
    return total, total - without


def _passthrough(x, *args):
    return x


def bench(names: list[str], repeats: int) -> list[dict]:
    """Time every model `repeats` times, round-robin, so that load changes on the machine hit all alike."""
    setups = []
    for name in names:
        torch.manual_seed(0)
        model = M.create_model(name)
        spec = model.input_spec
        x = torch.randn(1, spec.channels, spec.num_frames, spec.size, spec.size)
        setups.append((name, model, x, Stopwatch(parts_of_interest(model))))
    times = {name: [] for name in names}
    part_times = {name: [] for name in names}
    with torch.inference_mode():
        for _, model, x, _ in setups:
            model(x)  # warm-up
        for _ in range(repeats):
            for name, model, x, watch in setups:
                watch.seconds = 0.0
                t0 = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - t0)
                part_times[name].append(watch.seconds)
    rows = []
    for name, model, _, _ in setups:
        sec = statistics.median(times[name])
        total_gf, part_gf = flop_share(name)
        rows.append({
            "name": name,
            "clips_per_s": 1.0 / sec,
            "sec_per_clip": sec,
            "part_time_share": sum(part_times[name]) / sum(times[name]),
            "gflops": total_gf,
            "part_flop_share": part_gf / total_gf,
            "has_part": bool(parts_of_interest(model)),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "paper": paper_figures(name),
            "input": model.input_spec.describe(),
        })
    return rows


def bench_precision(names: list[str], precision: str, repeats: int, on_row=None) -> list[dict]:
    """Per model: fp32 and `precision` clips/s and the drift of the features.

    Model by model (each row is final when its model is done, `on_row` gets it: emulated bf16 can take
    minutes per clip): one call of each precision on the same clip gives the drift and is the warm-up, then
    `repeats` timed calls alternating fp32 and `precision`, so that load drift hits both alike.
    """
    from vfx.features.runner import autocast

    rows = []
    with torch.inference_mode():
        for name in names:
            torch.manual_seed(0)
            model = M.create_model(name).eval()
            spec = model.input_spec
            x = torch.randn(1, spec.channels, spec.num_frames, spec.size, spec.size)
            f32 = model.forward_features(x).float()
            with autocast(precision, "cpu"):
                low = model.forward_features(x).float()
            diff = (low - f32).abs()
            drift = (float(diff.max() / f32.abs().max()), float(diff.mean() / f32.abs().mean()))
            print(f"  {name}: drift max {drift[0]:.4f}, mean {drift[1]:.4f}", file=sys.stderr, flush=True)
            times: dict[str, list[float]] = {"fp32": [], precision: []}
            for _ in range(repeats):
                for prec in ("fp32", precision):
                    with autocast(prec, "cpu"):
                        t0 = time.perf_counter()
                        model.forward_features(x)
                        times[prec].append(time.perf_counter() - t0)
                    print(f"  {name} {prec}: {times[prec][-1]:.2f} s/clip (load {os.getloadavg()[0]:.1f})",
                          file=sys.stderr, flush=True)
            fp32, lowp = (1.0 / statistics.median(times[prec]) for prec in ("fp32", precision))
            row = {"name": name, "fp32": fp32, "low": lowp, "drift_max": drift[0], "drift_mean": drift[1]}
            rows.append(row)
            if on_row is not None:
                on_row(row)
            del model
    return rows


def family_of(name: str) -> str:
    """The model's family: the vfx/models file its builder lives in (tsm, msnet, i3d, slowfast, ...)."""
    from vfx.models.registry import get_builder

    return get_builder(name).__module__.rsplit(".", 1)[-1]


def one_per_family(names: list[str]) -> list[str]:
    """Per family, the model of `names` with the fewest GFLOPs at its default input (meta device, no memory),
    among those named after the family where there are some (corrnet.py also holds r2plus1d_26, CorrNet's
    baseline without correlation: corrnet_26 stands for the family)."""
    best: dict[str, tuple[bool, float, str]] = {}
    for name in names:
        with torch.device("meta"):
            model = M.create_model(name)
            spec = model.input_spec
            gflops = count_gflops(model, torch.empty(1, spec.channels, spec.num_frames, spec.size, spec.size))
        family = family_of(name)
        key = (not name.startswith(family), gflops, name)
        if family not in best or key < best[family]:
            best[family] = key
    return [name for _, _, name in sorted(best.values(), key=lambda k: k[1])]  # cheapest first


def paper_figures(name: str) -> str:
    """The paper's (or reference model zoo's) GFLOPs / params from the model's card, as `G / M`."""
    card = get_card(name)
    if card is None or (card.paper_gflops is None and card.paper_params_m is None):
        return "-"
    g = "?" if card.paper_gflops is None else f"{card.paper_gflops:g}"
    p = "?" if card.paper_params_m is None else f"{card.paper_params_m:g}"
    return f"{'~' if card.paper_source.startswith('~') else ''}{g} / {p}M"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=M.list_models())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: with 2 threads on a shared 2-core machine the timings swing 3x)")
    ap.add_argument("--precision", choices=["bf16", "fp16"], default=None,
                    help="also time this autocast precision against fp32 and measure the feature drift")
    ap.add_argument("--only-precision", action="store_true", help="only the precision table")
    ap.add_argument("--per-family", action="store_true",
                    help="one model per family of --models (the cheapest in GFLOPs), baseline included")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = one_per_family(args.models) if args.per_family else args.models
    names = [BASELINE] + [n for n in models if n != BASELINE]
    if args.precision:
        print_precision(names, args.precision, args.repeats)
        if args.only_precision:
            return
    rows = bench(names, args.repeats)
    base = rows[0]["clips_per_s"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, median of {args.repeats} "
          "round-robin timed clips after 1 warm-up")
    print(f"{'model':<16} {'clips/s':>8} {'s/clip':>7} {'vs ' + BASELINE:>10} {'GFLOPs':>7} {'params':>8} {'paper G / params':>17} "
          f"{'MS/corr time':>12} {'MS/corr FLOPs':>13}  input")
    for r in rows:
        part_t = f"{r['part_time_share'] * 100:.1f}%" if r["has_part"] else "-"
        part_f = f"{r['part_flop_share'] * 100:.1f}%" if r["has_part"] else "-"
        print(f"{r['name']:<16} {r['clips_per_s']:>8.3f} {r['sec_per_clip']:>7.2f} {r['clips_per_s'] / base:>9.2f}x "
              f"{r['gflops']:>7.1f} {r['params_m']:>7.2f}M {r['paper']:>17} {part_t:>12} {part_f:>13}  {r['input']}")


def print_precision(names: list[str], precision: str, repeats: int) -> None:
    from vfx.features.runner import cpu_has_native_bf16

    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, forward_features, median of "
          f"{repeats} timed clips per precision (alternating, after one call of each); cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}; load average {load:.1f}")
    width = max(len(n) for n in names)
    print(f"{'model':<{width}} {'family':<12} {'fp32 clips/s':>12} {precision + ' clips/s':>12} {precision + '/fp32':>9} "
          f"{'drift max':>10} {'drift mean':>10}", flush=True)

    def show(r: dict) -> None:
        print(f"{r['name']:<{width}} {family_of(r['name']):<12} {r['fp32']:>12.3f} {r['low']:>12.3f} "
              f"{r['low'] / r['fp32']:>8.2f}x {r['drift_max']:>10.4f} {r['drift_mean']:>10.4f}", flush=True)

    bench_precision(names, precision, repeats, on_row=show)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print()


if __name__ == "__main__":
    main()
