"""The Typer application every command module registers on, and the exit-code conventions.

Exit codes: 0 all videos done; 1 the run finished but some videos failed (a summary line says how
many, or an earlier run left failed videos); 2 usage error (bad flag, missing or unreadable input, parameter clash with an existing store, no Ray worker can be placed); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

import typer

from vfx.errors import VfxError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

app = typer.Typer(
    name="vfx",
    help="Video datasets to HDF5 stores of RGB frames, TV-L1 flow and motion features; two-stream fusion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn VfxError into a one-line message and exit code 2 instead of a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from vfx.engine.driver import Interrupted

        try:
            return fn(*args, **kwargs)
        except Interrupted as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except VfxError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def main() -> None:
    import vfx.cli  # noqa: F401 - registers every command on `app`

    app(prog_name="vfx")

