"""Recipes: TOML files in `recipes/` that fill a command's parameters (`--recipe tsn-ucf101`).

A recipe has one table per command (`[extract-frames]`, `[extract-flow]`, `[features]`, `[train-fusion]`) whose
keys are the command's option names with underscores (`short_side = 256`). Options given explicitly (on the
command line, or as keyword arguments of `vfx.extract_frames(...)` and friends) override the recipe; the recipe
overrides the built-in defaults (`resolve_options`, used by every `*Params.from_options`). TOML is parsed as
data, never evaluated.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vfx.errors import UsageError

#: Where named recipes are looked up: the project's `recipes/` folder, then `./recipes`.
RECIPE_DIRS = (Path(__file__).resolve().parents[1] / "recipes", Path("recipes"))


def list_recipes() -> list[str]:
    names = set()
    for folder in RECIPE_DIRS:
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def load_recipe(name_or_path: str, command: str) -> dict[str, Any]:
    """The `[command]` table of a recipe given by name (`tsn-ucf101`) or by path (`my.toml`)."""
    candidates = [Path(name_or_path)] if name_or_path.endswith(".toml") else []
    candidates += [folder / f"{name_or_path}.toml" for folder in RECIPE_DIRS]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        known = ", ".join(list_recipes()) or "none found"
        raise UsageError(f"unknown recipe {name_or_path!r} (known: {known})")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: unreadable recipe ({exc})") from None
    section = data.get(command)
    if section is None:
        raise UsageError(f"{path}: recipe has no [{command}] table (it has: {', '.join(data) or 'nothing'})")
    return dict(section)


def resolve_options(
    command: str,
    recipe: str | Mapping[str, Any] | None,
    explicit: Mapping[str, Any],
    defaults: Mapping[str, Any],
    replaces: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Explicit options (values that are not None nor empty lists) over the recipe's `[command]` table over `defaults`.

    `recipe` is a recipe name or path, or a table already read. `replaces[name]`: the recipe options that an
    explicit `name` replaces instead of clashing with (`one_choice("size", "short_side")` for options that are
    one choice made in several ways; `{"model": ["weights"]}`: other models, so not the recipe's weights).
    Unknown names are an error, explicit or in the recipe.
    """
    unknown = sorted(set(explicit) - set(defaults))
    if unknown:
        raise UsageError(f"unknown options: {', '.join(unknown)} (known: {', '.join(sorted(defaults))})")
    table = dict(load_recipe(recipe, command) if isinstance(recipe, str) else recipe or {})
    unknown = sorted(set(table) - set(defaults))
    if unknown:
        raise UsageError(f"recipe sets unknown options: {', '.join(unknown)} (known: {', '.join(sorted(defaults))})")
    given = {k: v for k, v in explicit.items() if v is not None and not (isinstance(v, (list, tuple)) and not v)}
    for name, replaced in (replaces or {}).items():
        if given.get(name) not in (None, False):  # a flag left off (False) chooses nothing
            table = {k: v for k, v in table.items() if k not in replaced}
    return {**defaults, **table, **given}


def one_choice(*names: str) -> dict[str, tuple[str, ...]]:
    """`replaces` for options that choose the same thing in several ways: each one replaces all of them."""
    return {name: names for name in names}
