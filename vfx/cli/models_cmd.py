"""`vfx models`: the registered backbones with parameters, GFLOPs, feature dimension and input spec."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from vfx.cli.app import app, handle_errors


def format_table(rows) -> str:
    from vfx.models.summary import PAPER

    header = f"{'model':<12} {'params':>8} {'GFLOPs':>7} {'D':>5}  {'input':<58} paper"
    lines = [header]
    for r in rows:
        paper = ""
        if r.name in PAPER:
            g, p, source = PAPER[r.name]
            bits = []
            if source.startswith("~"):
                bits.append(f"~{p:g}M (rounded)")
            else:
                if g is not None:
                    bits.append(f"{g:g} GFLOPs ({(r.gflops / g - 1) * 100:+.1f}%)")
                if p is not None:
                    bits.append(f"{p:g}M ({(r.params / 1e6 / p - 1) * 100:+.1f}%)")
            paper = ", ".join(bits)
        lines.append(
            f"{r.name:<12} {r.params / 1e6:>7.2f}M {r.gflops:>7.1f} {r.feature_dim:>5}  {r.spec.describe():<58} {paper}".rstrip()
        )
    lines.append("GFLOPs: multiply-adds of one clip at the default input (torch.utils.flop_counter / 2), as the papers count.")
    return "\n".join(lines)


@app.command("models")
@handle_errors
def models(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to show (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the backbones: parameters, GFLOPs at the default input, feature dimension D, input spec."""
    # torch is imported here, not at module level: `vfx --help` and the other commands start faster.
    from vfx.models import list_models
    from vfx.models.summary import summarise

    rows = [summarise(n) for n in (names or list_models())]
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        typer.echo(format_table(rows))
