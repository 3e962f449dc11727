"""Imports point one way (README, "How a run works"): read from every module's source with `ast`, nothing imported.

Each module belongs to a component (the first name under `vfx.`: `vfx.flow.stage` is `flow`), and every component
to a layer. A module may import its own component and any component of a lower layer; the leaves may also import
each other (`decode` uses `sampling`). Imports inside functions count as well: a lazy import is still a
dependency. Nothing below the library entry points imports the `vfx` package itself (it is the public facade,
which imports the layers: that import would run in a circle).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vfx"

#: Bottom first. "vfx" stands for the package facade `vfx/__init__.py`.
LAYERS: list[tuple[str, ...]] = [
    ("types", "version", "errors"),
    ("decode", "sampling", "image", "codec", "models", "sources", "recipes", "device", "filesystems"),  # leaves
    ("store",),
    ("engine",),
    ("frames", "flow", "features"),  # stages
    ("export", "show", "train"),
    ("api", "vfx"),  # library entry points (vfx.extract_frames, ...) and the facade that names them
    ("cli",),
    ("__main__",),
]
LEAVES = 1
RANK = {component: rank for rank, layer in enumerate(LAYERS) for component in layer}

#: Known violations, each with the engineer whose change removes it. Empty this list, never grow it.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vfx"


def imported_modules(path: Path, module: str, *, top_level_only: bool = False) -> set[str]:
    """`vfx...` modules that `path` imports (`from vfx.a import b` counts as `vfx.a` and, if it exists, `vfx.a.b`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES)
    return {m for m in found if m == "vfx" or m.startswith("vfx.")}


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_component_has_a_layer():
    unknown = sorted({component(m) for m in MODULES} - set(RANK))
    assert not unknown, f"place these in LAYERS (and in the README's import rule): {unknown}"


def violations(modules: dict[str, Path] = MODULES) -> set[tuple[str, str]]:
    found = set()
    for module, path in modules.items():
        src = component(module)
        for target in imported_modules(path, module):
            dst = component(target)
            if dst == src or RANK[dst] < RANK[src] or RANK[dst] == RANK[src] == LEAVES:
                continue
            found.add((module, target))
    return found


def test_imports_point_down():
    found = violations()
    new = sorted(found - ALLOWED)
    assert not new, "imports against the layer order (README, 'How a run works'):\n" + "\n".join(
        f"  {a} imports {b}" for a, b in new
    )
    fixed = sorted(ALLOWED - found)
    assert not fixed, f"fixed, remove from ALLOWED: {fixed}"


def test_no_import_cycles_at_module_level():
    graph = defaultdict(set)
    for module, path in MODULES.items():
        for target in imported_modules(path, module, top_level_only=True):
            # Importing vfx.a.b first runs vfx/__init__ and vfx/a/__init__: those edges are real too.
            parts = target.split(".")
            for n in range(1, len(parts) + 1):
                name = ".".join(parts[:n])
                if name in MODULES and name != module and not module.startswith(name + "."):
                    graph[module].add(name)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


@pytest.mark.parametrize(
    "source, allowed",
    [
        ("from vfx.store.reader import open_store\n", True),  # a stage importing the store: down
        ("from vfx.flow.params import FlowParams\n", True),  # its own component
        ("import vfx\n", False),  # the facade, from below the entry points
        ("def f():\n    from vfx.cli.app import app\n", False),  # lazy imports count
        ("from vfx.features import params\n", False),  # another stage
    ],
)
def test_the_checker_sees_what_it_should(tmp_path, source, allowed):
    """The rule on a made-up stage module `vfx.flow.probe`, so that the test above cannot pass by reading nothing."""
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    found = violations({"vfx.flow.probe": probe})
    assert (not found) is allowed, found
