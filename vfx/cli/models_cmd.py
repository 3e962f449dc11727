"""`vfx models`: the registered backbones with parameters, GFLOPs, feature dimension and input spec, the
papers' figures beside ours, and where each model's official weights are published."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors


def _paper(r) -> str:
    c = r.card
    if c is None or (c.paper_gflops is None and c.paper_params_m is None):
        return ""
    if c.paper_source.startswith("~"):
        bits = [f"~{c.paper_params_m:g}M (rounded)"] if c.paper_params_m is not None else []
        bits += [f"~{c.paper_gflops:g} GFLOPs (rounded)"] if c.paper_gflops is not None else []
        return ", ".join(bits)
    dg, dp = r.paper_delta()
    bits = []
    if c.paper_gflops is not None:
        bits.append(f"{c.paper_gflops:g} GFLOPs ({dg * 100:+.1f}%)")
    if c.paper_params_m is not None:
        bits.append(f"{c.paper_params_m:g}M ({dp * 100:+.1f}%)")
    return ", ".join(bits)


def format_table(rows) -> str:
    width = max(len(r.spec.describe()) for r in rows)
    lines = [f"{'model':<15} {'params':>8} {'GFLOPs':>7} {'D':>5}  {'input':<{width}} paper"]
    for r in rows:
        lines.append(
            f"{r.name:<15} {r.params / 1e6:>7.2f}M {r.gflops:>7.1f} {r.feature_dim:>5}  {r.spec.describe():<{width}} {_paper(r)}".rstrip()
        )
    lines.append("GFLOPs: multiply-adds of one clip at the default input (torch.utils.flop_counter / 2), as the papers count.")
    lines.append("Paper figures and their sources: `vfx models NAME --json`.")
    lines.append("")
    lines.append("Official weights (give the file with --weights; none is downloaded):")
    for r in rows:
        if r.card is not None:
            lines.append(f"  {r.name}: {r.card.weights}")
            lines.append(f"  {'':<{len(r.name)}}  --weights takes {r.card.weights_format}")
    return "\n".join(lines)


@app.command("models")
@handle_errors
def models(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to show (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the backbones: parameters, GFLOPs at the default input, feature dimension D, input spec, the papers'
    figures, and where the official weights are published with the file format --weights takes."""
    # torch is imported here, not at module level: `vfx --help` and the other commands start faster.
    from vfx.models import list_models
    from vfx.models.summary import summarise

    rows = [summarise(n) for n in (names or list_models())]
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        typer.echo(format_table(rows))
