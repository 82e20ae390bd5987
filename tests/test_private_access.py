"""No module touches another's private members (issue 16 item 7): every module of ``workbench`` is walked
with ``ast``, and it fails on

* ``obj._name`` (read, written or deleted) on anything but ``self`` / ``cls`` / ``super()``, and
  ``getattr(obj, "_name")`` and friends on the same terms;
* ``from module import _name``: a private name of another module;
* an import of a private module (``_fit.py``: a path part starting with ``_``) from outside the package that
  holds it.

Dunder names (``__version__``, ``__wrapped__``...) are public. ``tests/private_allowlist.txt`` lists today's
exceptions, each with its reason, and can only shrink; the data layer has none and may get none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_layers import is_package, modules

ALLOWLIST = Path(__file__).with_name("private_allowlist.txt")
OWN = {"self", "cls", "mcs"}  # the object's own members
REFLECTION = {"getattr", "setattr", "hasattr", "delattr"}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own(node: ast.expr) -> bool:
    """``self`` / ``cls`` / ``super()``: the object's own members, inherited ones included."""
    if isinstance(node, ast.Name):
        return node.id in OWN
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _private_module(importer: str, target: str) -> bool:
    """Whether importing module ``target`` reaches into a private module from outside its package."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if private(part):
            package = ".".join(parts[:i])
            return not (package and (importer == package or importer.startswith(package + ".")))
    return False


def findings(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every private access in module ``mod`` (file ``path``), each as ``module: what``."""
    out: set[str] = set()
    base = mod.split(".") if is_package(mod, known) else mod.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and private(node.attr) and not _own(node.value):
            out.add(f"{mod}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in REFLECTION
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and private(node.args[1].value)
              and not _own(node.args[0])):
            out.add(f"{mod}: {node.func.id}({ast.unparse(node.args[0])}, {node.args[1].value!r})")
        elif isinstance(node, ast.Import):
            out.update(f"{mod}: import {a.name}" for a in node.names if _private_module(mod, a.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if _private_module(mod, target):
                out.add(f"{mod}: from {target} import ...")
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in known:  # `from . import _fit` names a module
                    if _private_module(mod, sub):
                        out.add(f"{mod}: import {sub}")
                elif private(a.name):
                    out.add(f"{mod}: from {target} import {a.name}")
    return out


def violations() -> set[str]:
    known = modules()
    return set().union(*(findings(mod, path, known) for mod, path in known.items()))


def read_allowlist() -> dict[str, str]:
    entries = {}
    for n, line in enumerate(ALLOWLIST.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        what, sep, reason = line.partition("#")
        assert sep and reason.strip(), f"{ALLOWLIST.name}:{n}: an entry needs a reason after '#'"
        entries[what.strip()] = reason.strip()
    return entries


def test_no_module_touches_another_modules_private_members():
    new = sorted(violations() - set(read_allowlist()))
    assert not new, ("private members used from outside (give them a public entry point; see "
                     "tests/test_private_access.py):\n" + "\n".join(f"  {v}" for v in new))


def test_allowlist_only_shrinks():
    stale = sorted(set(read_allowlist()) - violations())
    assert not stale, "no longer happen, delete from tests/private_allowlist.txt:\n" + "\n".join(stale)


def test_the_data_layer_has_no_exception():
    assert not [e for e in read_allowlist() if e.startswith("workbench.data")]


@pytest.mark.parametrize("source, expected", [
    ("ds._tx()", {"M: ds._tx"}),
    ("x = self.state._clear", {"M: self.state._clear"}),
    ("obj._cache = {}", {"M: obj._cache"}),
    ("getattr(ds, '_row')()", {"M: getattr(ds, '_row')"}),
    ("from ..data.dataset import _json_or_null", {"M: from workbench.data.dataset import _json_or_null"}),
    ("from .mining import _probabilities", {"M: from workbench.evaluate.mining import _probabilities"}),
    ("from ..data.formats._fit import fit_box", {"M: from workbench.data.formats._fit import ..."}),
    ("import workbench.data.formats._fit", {"M: import workbench.data.formats._fit"}),
    ("from ..data.formats import _fit", {"M: import workbench.data.formats._fit"}),
    ("from torch.nn.modules.batchnorm import _BatchNorm", {"M: from torch.nn.modules.batchnorm import _BatchNorm"}),
    # allowed: the object's own members, dunders, public names
    ("self._x = cls._y + super()._z()", set()),
    ("v = workbench.__version__; f = g.__wrapped__", set()),
    ("from ..data.store import INSERT_CLASS\nds.directory_id('a')", set()),
])
def test_the_checker_sees_private_access(tmp_path, source, expected):
    f = tmp_path / "m.py"
    f.write_text(source)
    got = findings("workbench.evaluate.m", f, modules())
    assert got == {e.replace("M:", "workbench.evaluate.m:") for e in expected}


def test_a_private_module_is_private_to_its_package(tmp_path):
    """``formats/_fit.py`` may be imported by the modules of ``data.formats``, not from anywhere else."""
    inside, outside = tmp_path / "inside.py", tmp_path / "outside.py"
    inside.write_text("from ._fit import fit_box\nfrom . import _common")
    outside.write_text("from .formats._fit import fit_box\nfrom .formats import _common")
    assert findings("workbench.data.formats.coco", inside, modules()) == set()
    assert findings("workbench.data.stats", outside, modules()) == {
        "workbench.data.stats: from workbench.data.formats._fit import ...",
        "workbench.data.stats: import workbench.data.formats._common"}
