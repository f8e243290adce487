"""The layers of docs/design.md, checked from the import graph.

core <- voter (the board) <- hil (fault model, simulator, checker, rig) <- firmware_sim (a face).
A module may import its own layer and the ones below it, never above; no
production module imports test helpers (`voter.testing`, `tests`). Lazy imports
inside functions count: a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("voter.core", "voter", "hil", "firmware_sim")
TEST_HELPERS = ("voter.testing", "tests")


def layer(module: str) -> int | None:
    """The rank of `module`'s layer (the longest matching prefix), None outside the project."""
    best: int | None = None
    best_len = -1
    for rank, name in enumerate(LAYERS):
        if (module == name or module.startswith(name + ".")) and len(name) > best_len:
            best, best_len = rank, len(name)
    return best


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at any depth of the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def production_modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in ("voter", "hil", "firmware_sim"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            if name == "voter.testing":
                continue  # shipped test tooling, itself allowed to use anything below it
            mods[name] = path
    return mods


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer or into test helpers."""
    found = []
    for mod, deps in sorted(graph.items()):
        own = layer(mod)
        for dep in sorted(deps):
            if any(dep == t or dep.startswith(t + ".") for t in TEST_HELPERS):
                found.append(f"{mod} imports test helper {dep}")
                continue
            rank = layer(dep)
            if own is not None and rank is not None and rank > own:
                found.append(f"{mod} ({LAYERS[own]}) imports {dep} ({LAYERS[rank]}), a layer above")
    return found


def test_no_import_goes_up_a_layer_or_into_test_helpers() -> None:
    graph = {m: imports_of(p, m) for m, p in production_modules().items()}
    assert len(graph) > 40  # the walk found the project
    assert violations(graph) == []


def test_the_check_finds_a_cycle_and_a_test_helper() -> None:
    """The check is not vacuous: the cycle issue 11 removed, and a production test import."""
    graph = {
        "hil.serial_run": {"firmware_sim.fabric"},  # hil -> firmware_sim: up a layer
        "firmware_sim.run": {"hil.checks"},  # fine on its own; with the above, a cycle
        "voter.budget": {"voter.testing"},
        "voter.core.frame": {"voter.control"},  # the core reaching into the board
        "hil.sim": {"voter.core.driver", "voter.faults"},  # fine
    }
    found = violations(graph)
    assert len(found) == 3
    assert any("hil.serial_run" in v for v in found)
    assert any("voter.testing" in v for v in found)
    assert any("voter.core.frame" in v for v in found)


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from . import sibling\nfrom ..core import frame\n", encoding="utf-8")
    got = imports_of(f, "voter.x.m")
    assert "voter.x.sibling" in got
    assert "voter.core.frame" in got
