"""Loop parameters are data: one table types every parameter of every notebook, a params file is plain YAML
(scalars, lists and maps of scalars: no tags), every value is checked against its type, and the notebooks'
parameters cells are written from ``repr`` of the checked values, so no value can become code.

Order of precedence: DEFAULTS, then BY_TYPE for the dataset type (its sample, model and augmentation), then
QUICK for the dataset type (when asked; the file's ``dataset_type`` picks both), then the YAML file
(``--quick`` never overrides a value the file sets), then the caller's ``overrides``. The training settings
(``epochs``, ``batch_size``, ``lr``, ``schedule``, ``image_size``) default to 0 / '': "the default", which is
``--quick``'s value when asked (also where the file says 0 / ''), else the defaults table's
(:mod:`workbench.train.defaults`, by dataset type and training-set size, the same table as ``workbench
train``), filled in by the train notebook once the data is there; a value set in the file (or by
``--quick``) is taken as given. Paths a file may name (``run``) resolve inside the loop's output folder or its
workspace, or are refused.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnsafePathError, ValidationError
from ..text import check_text, is_surrogate, name_problem
from ..train.defaults import SETTINGS
from .assets import asset_dir

__all__ = [
    "DEFAULTS",
    "BY_TYPE",
    "QUICK",
    "TABLE_SETTINGS",
    "PARAMS",
    "Param",
    "STEPS",
    "check_value",
    "describe_settings",
    "load_params",
    "notebooks_dir",
    "parameters_cell",
    "read_params_file",
    "resolve_run",
    "resolve_weights",
]

STEPS = ("01_annotate", "02_train", "03_evaluate")

# The whole loop on the built-in sample data. Seconds-to-minutes on a 2-core CPU.
DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "dataset_type": "classification",
    "sample": "digits",
    "sample_count": 0,  # 0: the sample's own size (all 1,797 digits)
    "seed": 0,
    "model": "small-cnn",
    # 0 / '': the defaults table's (workbench.train.defaults: by dataset type and training-set size)
    "epochs": 0,
    "batch_size": 0,
    "lr": 0.0,
    "schedule": "",
    "image_size": 0,  # the table's, else the model's default
    "augment_preset": "no-flip",  # digits: a mirrored 2 is no 2 ("": the dataset type's default preset)
    "mine_count": 40,
}

# The training settings the defaults table fills when they are 0 / '' (stdlib-only module: no torch)
TABLE_SETTINGS = SETTINGS

# What a loop of each dataset type starts from when the file names only the type: the type's built-in sample
# (all of it) into a dataset of that name, the type's default model and augmentation.
BY_TYPE: dict[str, dict[str, Any]] = {
    "classification": {"dataset": "digits", "sample": "digits", "model": "small-cnn", "augment_preset": "no-flip"},
    "detection": {"dataset": "shapes-detection", "sample": "shapes-detection", "model": "", "augment_preset": ""},
    "segmentation": {"dataset": "shapes-segmentation", "sample": "shapes-segmentation", "model": "",
                     "augment_preset": ""},
    "anomaly": {"dataset": "shapes-anomaly", "sample": "shapes-anomaly", "model": "", "augment_preset": ""},
}

# Small and fast, per dataset type: for tests and first contact (about a minute of training on one CPU core),
# and clearly better than chance: smaller images (the shapes stay large enough to find), enough optimizer
# steps (small batches) and a one-cycle schedule that ends low in a fixed number of epochs.
QUICK: dict[str, dict[str, Any]] = {
    "classification": {"sample_count": 500, "epochs": 5, "batch_size": 32, "schedule": "onecycle"},
    "detection": {"sample": "shapes-detection", "model": "", "sample_count": 240, "epochs": 6, "batch_size": 4,
                  "lr": 0.001, "schedule": "onecycle", "image_size": 96, "augment_preset": ""},
    "segmentation": {"sample": "shapes-segmentation", "model": "", "sample_count": 150, "epochs": 6,
                     "batch_size": 4, "lr": 0.001, "schedule": "onecycle", "image_size": 96, "augment_preset": ""},
    "anomaly": {"sample": "shapes-anomaly", "model": "", "sample_count": 80, "epochs": 2, "batch_size": 16,
                "lr": 0.001, "schedule": "plateau", "augment_preset": ""},
}

MAX_FILE_BYTES = 1 << 20
MAX_PATH_CHARS = 1000
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:-]{0,99}")
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its Python type, a check of its value (the problem, or None) and whether a
    params file may set it (``workspace`` and ``out_dir`` belong to the runner)."""

    type: type
    doc: str
    check: Callable[[Any], str | None] | None = None
    from_file: bool = True


def _ints(lo: int, hi: int) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}, got {v}"


def _positive(v: float) -> str | None:
    return None if math.isfinite(v) and 0 < v <= 1e3 else f"must be a finite number above 0, got {v}"


def _name(empty_ok: bool = False) -> Callable[[Any], str | None]:
    return lambda v: None if (empty_ok and v == "") else name_problem(v)


def _token(empty_ok: bool = True) -> Callable[[Any], str | None]:
    def check(v: str) -> str | None:
        if (empty_ok and v == "") or _TOKEN.fullmatch(v):
            return None
        return f"must be a name of letters, digits and . _ + : - (at most 100), got {v[:120]!r}"
    return check


def _choice(*valid: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in valid else f"must be one of {', '.join(valid)}, got {v[:120]!r}"


def _rate(v: float) -> str | None:
    return None if v == 0 else _positive(v)


def _schedule(v: str) -> str | None:
    from ..train.config import SCHEDULES  # stdlib-only module: no torch

    return None if v == "" else _choice(*SCHEDULES)(v)


def _path(v: str) -> str | None:
    try:
        check_text(v, what="path", field="path", max_chars=MAX_PATH_CHARS)
    except ValidationError as e:
        return e.detail
    return "holds a line break or tab" if any(c in v for c in "\n\t") else None


# THE table: every parameter of every notebook (notebooks/, templates/*/, dashboards/) and its type. A test
# holds every notebook's parameters cell to it.
PARAMS: dict[str, Param] = {
    "workspace": Param(str, "the workspace folder ('' = the default)", _path, from_file=False),
    "out_dir": Param(str, "the loop's output folder", _path, from_file=False),
    "dataset": Param(str, "dataset name", _name(empty_ok=True)),
    "dataset_type": Param(str, "classification, detection, segmentation or anomaly",
                          _choice("classification", "detection", "segmentation", "anomaly")),
    "sample": Param(str, "built-in sample to start from", _token(empty_ok=False)),
    "sample_count": Param(int, "examples taken from the sample (0 = all)", _ints(0, 10_000_000)),
    "seed": Param(int, "random seed", _ints(0, 2**32 - 1)),
    "model": Param(str, "model name ('' = the type's default)", _token()),
    "epochs": Param(int, "training epochs (0 = the defaults table's)", _ints(0, 100_000)),
    "batch_size": Param(int, "batch size (0 = the defaults table's)", _ints(0, 65_536)),
    "lr": Param(float, "learning rate (0 = the defaults table's)", _rate),
    "schedule": Param(str, "learning-rate schedule (plateau, cosine, onecycle, warmup-cosine, none; '' = the "
                      "defaults table's)", _schedule),
    "image_size": Param(int, "input size (0 = the defaults table's, else the model's)", _ints(0, 16_384)),
    "augment_preset": Param(str, "augmentation preset ('' = the type's default)", _token()),
    "snapshot": Param(str, "snapshot id to train on ('' = the annotate step's)", _token()),
    "run": Param(str, "run folder or id inside the workspace ('' = the train step's)", _path),
    "mine_count": Param(int, "examples mined for review", _ints(0, 100_000)),
    "weights": Param(str, "local state_dict file to start from, inside the workspace or output folder ('' = none)",
                     _path),
    "freeze_backbone": Param(int, "epochs the backbone stays frozen (0 = never)", _ints(0, 100_000)),
    "backbone_lr_scale": Param(float, "the backbone's learning rate as a multiple of lr", _positive),
    "user": Param(str, "who annotates (dashboards; empty: $WORKBENCH_USER, else a name field)", _name(empty_ok=True)),
}


def notebooks_dir() -> Path:
    """The project's own notebooks (``workbench/notebooks`` inside the package)."""
    return asset_dir("notebooks")


def check_value(name: str, value: Any, *, file: str | None = None) -> Any:
    """``value`` checked against the table (an int is taken for a float); a ValidationError naming the file
    and the key otherwise."""
    spec = PARAMS.get(name)
    if spec is None:
        raise ValidationError(f"no declared type; typed parameters: {', '.join(sorted(PARAMS))}", file=file,
                              field=name)
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not spec.type:  # exact: True is no integer here, a date no string
        hint = " (quote it to make it a string)" if spec.type is str and isinstance(value, (bool, int, float)) else ""
        raise ValidationError(f"expected {_TYPE_NAMES[spec.type]}, got {_brief(value)}{hint}", file=file,
                              field=name)
    problem = spec.check(value) if spec.check is not None else None
    if problem:
        raise ValidationError(problem, file=file, field=name)
    return value


def _brief(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"


# ------------------------------------------------------------------------------------------ the YAML file
_PLAIN_SCALARS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null")}
_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


def _plain_loader() -> type:
    import yaml

    class PlainLoader(yaml.SafeLoader):
        """SafeLoader without the implicit timestamp (a date stays the text it is)."""

    PlainLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return PlainLoader


def _check_node(node: Any, file: str, key: str | None, depth: int) -> None:
    """Scalars, and (as values) lists / maps of scalars; any other tag or any deeper nesting is refused."""
    import yaml

    where = f"line {node.start_mark.line + 1}"
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _PLAIN_SCALARS:
            raise ValidationError(f"{where}: the tag {node.tag} is not allowed (plain values only)", file=file,
                                  field=key)
        if any(is_surrogate(ch) for ch in node.value):
            raise ValidationError(f"{where}: holds a lone surrogate (U+D800-U+DFFF), which is not text", file=file,
                                  field=key)
        return
    if depth >= 2:
        raise ValidationError(f"{where}: nested too deep (values are scalars, lists or maps of scalars)",
                              file=file, field=key)
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        for item in node.value:
            _check_node(item, file, key, depth + 1)
        return
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        seen: set[str] = set()
        for k, v in node.value:
            _check_node(k, file, key, 2)
            if not (isinstance(k, yaml.ScalarNode) and k.tag == "tag:yaml.org,2002:str"):
                raise ValidationError(f"line {k.start_mark.line + 1}: keys must be names, got {k.value[:80]!r}",
                                      file=file, field=key)
            if k.value in seen:
                raise ValidationError(f"line {k.start_mark.line + 1}: the key {k.value[:80]!r} is given twice",
                                      file=file, field=key if depth else k.value)
            seen.add(k.value)
            _check_node(v, file, k.value if depth == 0 else key, depth + 1)
        return
    raise ValidationError(f"{where}: the tag {node.tag} is not allowed (plain values only)", file=file, field=key)


def read_params_file(path: str | Path) -> dict[str, Any]:
    """A params file as a dict of plain values: a YAML mapping whose values are scalars, or lists / maps of
    scalars, with no tags (``!!omap``, ``!!pairs``, ``!!set``, ``!!binary``, ``!!python/...``, ``!foo``) and no
    merge keys; dates stay text. Nothing is constructed before the whole document passed the check."""
    import yaml

    p = Path(path)
    file = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ValidationError("parameter file not found", file=file) from None
    except OSError as e:
        raise ValidationError(f"cannot read the parameter file: {e.strerror or e}", file=file) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationError(f"parameter file is {len(raw)} bytes; at most {MAX_FILE_BYTES}", file=file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError(f"not UTF-8 text (byte {e.start})", file=file) from None
    loader = _plain_loader()
    try:
        node = yaml.compose(text, Loader=loader)
        if node is None:
            return {}
        if not (isinstance(node, yaml.MappingNode) and node.tag == _MAP):
            raise ValidationError("a parameter file must be a mapping of name: value", file=file)
        _check_node(node, file, None, 0)
        data = yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader subclass over a checked document
    except yaml.YAMLError as e:
        raise ValidationError(f"not valid YAML: {' '.join(str(e).split())}", file=file) from None
    except ValidationError:
        raise
    except (ValueError, TypeError, OverflowError) as e:  # "!!int digits": the tag's constructor refused it
        raise ValidationError(f"a value does not read as its tag: {' '.join(str(e).split())}", file=file) from None
    if not isinstance(data, dict):
        raise ValidationError("a parameter file must be a mapping of name: value", file=file)
    return data


def load_params(path: str | Path | None = None, *, quick: bool = False,
                overrides: Mapping[str, Any] | None = None, valid: set[str] | None = None,
                origins: dict[str, str] | None = None) -> dict[str, Any]:
    """DEFAULTS, then BY_TYPE and QUICK (when asked) for the dataset type, then the YAML file, then
    ``overrides``; every value checked against :data:`PARAMS`. ``valid`` narrows the keys a file may set (the
    parameters the notebooks declare). ``origins``, when given, is filled with where each value came from:
    ``default``, ``dataset type``, ``--quick``, ``params file`` or ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        file = str(path)
        allowed = {k for k, spec in PARAMS.items() if spec.from_file}
        allowed &= valid if valid is not None else set(DEFAULTS) | {"snapshot", "run"}
        for k, v in read_params_file(path).items():
            if k not in allowed:
                raise ValidationError(f"unknown parameter; valid: {', '.join(sorted(allowed))}", file=file,
                                      field=str(k))
            data[k] = check_value(k, v, file=file)
    extra = {k: check_value(k, v, file="overrides") for k, v in (overrides or {}).items()}
    dtype = str(extra.get("dataset_type", data.get("dataset_type", DEFAULTS["dataset_type"])))
    # a training setting at 0 / '' in the file says "the default": --quick's when asked, else the table's
    unset = {k: v for k, v in data.items() if k in TABLE_SETTINGS and v in (0, "")}
    layers: list[tuple[str, Mapping[str, Any]]] = [("default", DEFAULTS), ("dataset type", BY_TYPE.get(dtype, {})),
                                                   ("params file", unset)]
    if quick:  # under the file: --quick never overrides a value the file sets (the file is what the user wrote)
        layers.append(("--quick", QUICK.get(dtype, QUICK["classification"])))
    layers += [("params file", {k: v for k, v in data.items() if k not in unset}), ("overrides", extra)]
    params: dict[str, Any] = {}
    for origin, values in layers:
        params.update(values)
        if origins is not None:
            origins.update(dict.fromkeys(values, origin))
    return params


def describe_settings(params: Mapping[str, Any], origins: Mapping[str, str]) -> str:
    """One line: where each training setting of the loop comes from (the params file, ``--quick``, or the
    defaults table, which the train step fills by dataset type and size and then prints)."""
    parts, table = [], []
    for k in TABLE_SETTINGS:
        if k not in params:
            continue
        if params[k] in (0, ""):  # 0 / '': the table's, whoever wrote it
            table.append(k)
        else:
            parts.append(f"{k} {params[k]} ({origins.get(k, 'default')})")
    if table:
        parts.append(f"{', '.join(table)} from the defaults table by dataset type and training-set size "
                     "(chosen in the train step)")
    return "training settings: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------ into notebooks
def parameters_cell(values: Mapping[str, Any]) -> str:
    """The source of the injected parameters cell: one ``name = repr(value)`` line per checked value, and
    proof (by parsing it back) that it assigns exactly these literals and does nothing else."""
    lines = ["# Parameters (checked by workbench.loop.params, written with repr)"]
    for name, value in values.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValidationError("not a parameter name", field=name)
        check_value(name, value)
        lines.append(f"{name} = {value!r}")
    source = "\n".join(lines) + "\n"
    tree = ast.parse(source)
    assigned = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant)):
            raise ValidationError(f"the parameters cell would run code: {ast.dump(stmt)[:200]}")
        assigned[stmt.targets[0].id] = stmt.value.value
    if assigned != dict(values):
        raise ValidationError("the parameters cell does not read back as the given values")
    return source


def inject_parameters(nb: Any, values: Mapping[str, Any]) -> Any:
    """Put the parameters cell (tagged ``injected-parameters``, as papermill does) after the notebook's
    ``parameters`` cell, replacing an earlier injected one; record the values in papermill's metadata."""
    import nbformat

    cell = nbformat.v4.new_code_cell(source=parameters_cell(values))
    cell.metadata["tags"] = ["injected-parameters"]
    tags = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    if injected:
        nb.cells[injected[0]] = cell
    else:
        at = next((i + 1 for i, t in enumerate(tags) if "parameters" in t), 0)
        nb.cells.insert(at, cell)
    nb.metadata.setdefault("papermill", {})["parameters"] = dict(values)
    return nb


def resolve_run(value: str, *, out: Path, workspace: Path, file: str | None = None) -> str:
    """``run`` as an absolute folder inside ``out`` or ``workspace`` ('' stays ''): a run id or a relative
    path is looked up in the workspace's runs folder, then in ``out``. Anything that lands elsewhere (an
    absolute path outside, ``..``, a symlink out) is refused."""
    if value == "":
        return ""
    roots = [out.resolve(), workspace.resolve()]
    given = Path(value)
    cands = [given] if given.is_absolute() else [workspace / "runs" / given, out / given]
    target = next((c for c in cands if c.exists()), cands[0]).resolve()
    if not any(target == r or target.is_relative_to(r) for r in roots):
        raise UnsafePathError(f"{value[:200]!r} resolves to {target}, outside the loop's output folder {roots[0]} "
                              f"and its workspace", file=file, field="run")
    return str(target)


def resolve_weights(value: str, *, out: Path, workspace: Path, file: str | None = None) -> str:
    """``weights`` as an absolute file inside ``out`` or ``workspace`` ('' stays ''): a relative path is
    looked up in the workspace, then in ``out``; anything that lands elsewhere is refused, as for ``run``."""
    if value == "":
        return ""
    roots = [out.resolve(), workspace.resolve()]
    given = Path(value)
    cands = [given] if given.is_absolute() else [workspace / given, out / given]
    target = next((c for c in cands if c.exists()), cands[0]).resolve()
    if not any(target.is_relative_to(r) for r in roots):
        raise UnsafePathError(f"{value[:200]!r} resolves to {target}, outside the loop's output folder {roots[0]} "
                              f"and its workspace", file=file, field="weights")
    return str(target)
