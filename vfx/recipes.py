"""Recipes: TOML files in `recipes/` that fill a command's parameters (`--recipe tsn-ucf101`).

A recipe has one table per command (`[extract-frames]`, `[extract-flow]`, `[features]`; `[train-fusion]` sets only `flip_label_map`) whose
keys are the command's option names with underscores (`short_side = 256`). Options given on the command line
override the recipe; the recipe overrides the built-in defaults. TOML is parsed as data, never evaluated.
"""

from __future__ import annotations

import tomllib
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


def merge_options(cli: dict[str, Any], recipe: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Command line (values that are not None) over recipe over defaults. Unknown recipe keys are an error."""
    unknown = sorted(set(recipe) - set(defaults))
    if unknown:
        raise UsageError(f"recipe sets unknown options: {', '.join(unknown)} (known: {', '.join(sorted(defaults))})")
    merged = dict(defaults)
    merged.update(recipe)
    merged.update({k: v for k, v in cli.items() if v is not None})
    return merged
