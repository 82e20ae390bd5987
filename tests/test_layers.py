"""Layers point down only: an import (module-level or inside a function) from a lower layer to a higher one,
or between the independent top-level packages, fails here unless tests/layers_allowlist.txt lists it with a
reason. The allowlist can only shrink: an entry that no longer happens fails too (delete it).

    cli | loop | widgets  ->  service  ->  train  ->  evaluate  ->  augment  ->  runs  ->  data  ->  text, fsutil, progress  ->  errors

(``|``: side by side, none imports another.) Imports under ``if TYPE_CHECKING:`` count as well: a type is a
dependency too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "workbench"
ALLOWLIST = Path(__file__).with_name("layers_allowlist.txt")

# Lowest first; names on one line share a layer.
LAYERS = [
    ["errors", "_version"],  # _version: the package version, which run folders record
    ["text", "fsutil", "progress"],  # progress: the typed Progress record and its printer (stdlib only)
    ["data", "cliutil"],  # cliutil: the CLI modules' shared workspace and table (imports data lazily)
    ["runs"],
    ["augment"],
    ["evaluate"],
    ["train"],
    ["service"],
    ["cli", "loop", "widgets"],
    ["__init__", "__main__"],  # the package root: re-exports, `python -m workbench`
]
INDEPENDENT = {"cli", "loop", "widgets"}  # side by side: none imports another
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "_source" not in p.parts}


def is_package(mod: str, known: dict[str, Path]) -> bool:
    return known.get(mod, Path()).name == "__init__.py" or mod == "workbench"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (imports for annotations only: never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(mod: str, path: Path, known: dict[str, Path], *, runtime_only: bool = False) -> set[str]:
    """Every workbench module ``mod`` imports, wherever the import statement is (``runtime_only``: leave out
    the imports under ``if TYPE_CHECKING:``, which never run)."""
    out: set[str] = set()
    base = mod.split(".") if is_package(mod, known) else mod.split(".")[:-1]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_nodes(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "workbench")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "workbench":
                continue
            for a in node.names:  # `from . import serve_app` names a module
                sub = f"{target}.{a.name}"
                out.add(sub if sub in known else target)
    out.discard(mod)
    return out


def layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def violations() -> dict[str, str]:
    """``importer -> imported`` for every upward or sideways import, with what is wrong with it."""
    known = modules()
    found = {}
    for mod, path in known.items():
        for target in imports_of(mod, path, known):
            a, b = layer(mod), layer(target)
            if a == b:
                continue
            if a not in RANK or b not in RANK:
                raise AssertionError(f"{mod} or {target} is in no layer: add its package to LAYERS")
            if RANK[b] > RANK[a]:
                found[f"{mod} -> {target}"] = f"upward: {a} is below {b}"
            elif RANK[a] == RANK[b] and {a, b} <= INDEPENDENT:
                found[f"{mod} -> {target}"] = f"sideways: {a} and {b} are independent"
    return found


def cycles() -> dict[str, list[str]]:
    """The import cycles between modules (strongly connected components of the graph of imports that run:
    module-level and function-local, not ``TYPE_CHECKING``), each named by its sorted modules joined by
    ``" <-> "``, with the edges inside it."""
    known = modules()
    graph = {m: sorted(t for t in imports_of(m, p, known, runtime_only=True) if t in known and not
                       (is_package(t, known) and m.startswith(t + ".")))  # a module's own package runs first anyway
             for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: dict[str, list[str]] = {}

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                members = set(comp)
                found[" <-> ".join(sorted(comp))] = [f"{a} -> {b}" for a in sorted(comp) for b in graph[a]
                                                     if b in members]

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def read_allowlist() -> dict[str, str]:
    entries = {}
    for n, line in enumerate(ALLOWLIST.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        edge, sep, reason = line.partition("#")
        assert sep and reason.strip(), f"{ALLOWLIST.name}:{n}: an entry needs a reason after '#'"
        entries[" ".join(edge.split())] = reason.strip()
    return entries


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in modules()} <= set(RANK)


def test_imports_point_down():
    new = sorted(set(violations()) - set(read_allowlist()))
    assert not new, "imports against the layers (fix them; see docs/architecture.md):\n" + "\n".join(
        f"  {e}  ({violations()[e]})" for e in new)


def test_allowlist_only_shrinks():
    stale = sorted(set(read_allowlist()) - set(violations()))
    assert not stale, "no longer happen, delete from tests/layers_allowlist.txt:\n" + "\n".join(stale)


CYCLES_ALLOWLIST = Path(__file__).with_name("cycles_allowlist.txt")


def test_no_new_import_cycles():
    """No module imports (at import time or inside a function) a module that imports it back, directly or
    through others. tests/cycles_allowlist.txt lists today's cycles with their reasons and may only shrink: a
    new cycle, a cycle that gains a module, or a listed one that is gone (delete its line) fails."""
    allowed = {line.partition("#")[0].strip() for line in CYCLES_ALLOWLIST.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    found = cycles()
    new = sorted(set(found) - allowed)
    assert not new, "import cycles (break them: move the shared part down, or pass it in):\n" + "\n".join(
        f"  {c}\n    " + "\n    ".join(found[c]) for c in new)
    stale = sorted(allowed - set(found))
    assert not stale, "no longer a cycle, delete from tests/cycles_allowlist.txt:\n" + "\n".join(stale)


def test_the_cycle_check_sees_a_function_local_cycle(tmp_path, monkeypatch):
    import tests.test_layers as layers

    (tmp_path / "workbench").mkdir()
    (tmp_path / "workbench" / "__init__.py").write_text("")
    (tmp_path / "workbench" / "a.py").write_text("from . import b\n")
    (tmp_path / "workbench" / "b.py").write_text("def f():\n    from .a import x\n")
    (tmp_path / "workbench" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                  "    from .a import x\n")
    monkeypatch.setattr(layers, "ROOT", tmp_path)
    monkeypatch.setattr(layers, "PKG", tmp_path / "workbench")
    assert layers.cycles() == {"workbench.a <-> workbench.b": ["workbench.a -> workbench.b",
                                                               "workbench.b -> workbench.a"]}


@pytest.mark.parametrize("source, expected", [
    ("from ..train.models import build_model", {"workbench.train.models"}),
    ("def f():\n    from ..service import lazy_attribute", {"workbench.service"}),
    ("import workbench.widgets.app as a", {"workbench.widgets.app"}),
    ("from . import review", {"workbench.evaluate.review"}),
])
def test_the_checker_sees_imports(tmp_path, source, expected):
    """Relative, absolute and function-local imports all resolve to the module they name."""
    known = modules()
    f = tmp_path / "m.py"
    f.write_text(source)
    got = imports_of("workbench.evaluate.mining", f, known)
    assert got == expected
