"""`vfx store ...`: store maintenance (`vfx store upgrade STORE`)."""

from __future__ import annotations

from typing import Annotated

import typer

from vfx.cli.app import app, handle_errors

store_app = typer.Typer(help="Store maintenance: convert old stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("upgrade")
@handle_errors
def upgrade(
    store: Annotated[str, typer.Argument(help="A store made by an older vfx: a directory, or a URL.")],
) -> None:
    """Convert a schema-1 store (one ledger per shard) to schema 2 in place; safe to run again if interrupted."""
    from vfx.store.upgrade import upgrade_store

    typer.echo(str(upgrade_store(store)))
