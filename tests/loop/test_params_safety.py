"""Params are data: a params file holds plain YAML values checked against one table, the parameters cell is
``repr`` of checked values, and ``run:`` stays inside the loop's output folder. The exploit this closes: a
``!!omap`` / ``!!pairs`` value for an unchecked parameter (``snapshot``, ``run``) made papermill write
``str(tuple)`` between quotes, unescaped, into the code it ran."""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
from pathlib import Path

import nbformat
import papermill
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workbench.errors import UnsafePathError, ValidationError
from workbench.loop.params import PARAMS, STEPS, check_value, load_params, parameters_cell
from workbench.loop.runner import run_loop

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = (sorted((ROOT / "workbench" / "notebooks").glob("*.ipynb")) + sorted((ROOT / "workbench" / "templates").glob("*/*.ipynb"))
             + sorted((ROOT / "workbench" / "dashboards").glob("*.ipynb")))

# The payload of the exploit: inside papermill's "..." it closes the string, calls os.system, reopens.
PAYLOAD = '" + str(__import__("os").system("touch {marker}")) + "'


def _tiny_project(root: Path) -> Path:
    """Three notebooks named like the loop's steps, declaring the loop's parameters and writing what they
    received (repr) to received-<step>.json in the output folder. Seconds to run, no training."""
    declared = {"01_annotate": ["workspace", "out_dir", "dataset", "dataset_type", "sample", "sample_count",
                                "seed", "augment_preset"],
                "02_train": ["workspace", "out_dir", "dataset", "snapshot", "model", "epochs", "lr"],
                "03_evaluate": ["workspace", "out_dir", "dataset", "run", "mine_count"]}
    defaults = {"workspace": "", "out_dir": "", "dataset": "d", "dataset_type": "classification",
                "sample": "digits", "sample_count": 0, "seed": 0, "augment_preset": "", "snapshot": "",
                "model": "m", "epochs": 1, "lr": 0.1, "run": "", "mine_count": 1}
    root.mkdir(parents=True, exist_ok=True)
    for step, names in declared.items():
        params = nbformat.v4.new_code_cell("\n".join(f"{n} = {defaults[n]!r}" for n in names))
        params.metadata["tags"] = ["parameters"]
        body = nbformat.v4.new_code_cell(
            "import json, pathlib\nprint(dataset)\n"
            f"pathlib.Path(out_dir, 'received-{step}.json').write_text(json.dumps({{n: globals()[n] for n in "
            f"{names!r}}}))"
        )
        nb = nbformat.v4.new_notebook(cells=[params, body])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(root / f"{step}.ipynb"))
    return root


@pytest.mark.parametrize("key,tag", [("snapshot", "omap"), ("snapshot", "pairs"), ("run", "omap"),
                                     ("run", "pairs")])
def test_the_omap_and_pairs_exploit_runs_no_code(tmp_path, key, tag):
    """The exact exploit, run for real (papermill, a kernel): today it creates the marker file; now the file
    is refused, naming itself and the key, and nothing runs."""
    marker = tmp_path / "pwned"
    payload = PAYLOAD.format(marker=marker)
    p = tmp_path / "evil.yaml"
    p.write_text(f"{key}: !!{tag} [{{a: '{payload}'}}]\n")
    project = _tiny_project(tmp_path / "project")
    with pytest.raises(ValidationError) as info:
        run_loop(tmp_path / "out", params_file=p, notebooks=project, html=False)
    assert info.value.file == str(p) and info.value.field == key
    assert f"!!{tag}" in str(info.value) or f"2002:{tag}" in str(info.value)
    assert not marker.exists()
    assert not list((tmp_path / "out").glob("*.ipynb"))  # no step started


def test_hostile_strings_reach_a_real_kernel_as_the_same_strings(tmp_path):
    """Valid but hostile values (quotes, backslashes, the payload itself as a dataset name) arrive in the
    executed notebooks unchanged, and the marker never appears."""
    marker = tmp_path / "pwned"
    hostile = PAYLOAD.format(marker=marker) + "<img src=x onerror=window.__xss=8>'''\\\"\"\" #"
    p = tmp_path / "params.yaml"
    p.write_text(json.dumps({"dataset": hostile, "epochs": 3, "lr": 1, "snapshot": "0123abcd"}))
    # papermill formats output paths (braces must mean themselves); the report quotes the folder's name
    out = tmp_path / "out {x} `<img src=x onerror=window.__xss=9>`"
    run_loop(out, params_file=p, notebooks=_tiny_project(tmp_path / "project"))
    got = {s: json.loads((out / f"received-{s}.json").read_text()) for s in STEPS}
    assert {g["dataset"] for g in got.values()} == {hostile}
    assert got["02_train"]["epochs"] == 3 and got["02_train"]["lr"] == 1.0 and got["02_train"]["snapshot"] == "0123abcd"
    assert got["03_evaluate"]["run"] == "" and got["01_annotate"]["out_dir"] == str(out.resolve())
    assert not marker.exists()
    executed = nbformat.read(str(out / "02_train.ipynb"), as_version=4)
    assert executed.metadata["papermill"]["parameters"]["dataset"] == hostile
    report = (out / "report.html").read_text()
    assert "<img src=x" not in report and "onerror=window.__xss=9&gt;" in report
    assert "&lt;img src=x onerror=window.__xss=8&gt;" in report  # the notebooks' output, as text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_notebook_parameter_has_a_declared_type(path):
    """One table types every parameter of every notebook, and each notebook's own default fits it."""
    for name, spec in papermill.inspect_notebook(str(path)).items():
        assert name in PARAMS, f"{path.name}: {name} has no declared type"
        value = ast.literal_eval(spec["default"])
        assert check_value(name, value) == value


BAD_FILES = [
    ("snapshot: !!omap [{a: b}]\n", "snapshot", "omap"),
    ("run: !!pairs [{a: b}, {a: c}]\n", "run", "pairs"),
    ("dataset: !!set {a: null}\n", "dataset", "set"),
    ("dataset: !!binary aGVsbG8=\n", "dataset", "binary"),
    ("dataset: !!python/object/apply:os.system ['true']\n", "dataset", "python/object/apply"),
    ("dataset: !!python/name:os.system ''\n", "dataset", "python/name"),
    ("dataset: !!timestamp 2001-12-14\n", "dataset", "timestamp"),
    ("epochs: !!int digits\n", None, "does not read as its tag"),
    ("lr: !!float x\n", None, "does not read as its tag"),
    ("dataset: !custom x\n", "dataset", "!custom"),
    ("base: &b {epochs: 2}\n<<: *b\n", None, "merge"),
    ("model: {a: [1, 2]}\n", "model", "nested too deep"),
    ("epochs: 2\nepochs: 3\n", "epochs", "given twice"),
    ("1: 2\n", None, "keys must be names"),
    ("dataset: yes\n", "dataset", "quote it"),
    ("dataset: 12\n", "dataset", "quote it"),
    ("epochs: true\n", "epochs", "an integer"),
    ("epochs: 2.0\n", "epochs", "an integer"),
    ("epochs: -1\n", "epochs", "between 0"),
    ("lr: .nan\n", "lr", "finite"),
    ("lr: -1\n", "lr", "finite"),
    ("seed: -1\n", "seed", "between 0"),
    ("model: [a, b]\n", "model", "a string"),
    ("dataset: \"a\\x1b[31mb\"\n", "dataset", "control character"),
    ("dataset: \"a\\u202eb\"\n", "dataset", "bidi"),
    ("run: \"\\ud800\\udc00\"\n", "run", "lone surrogate"),  # JSON's escape of one astral character:
    ("user: \"a\\udfff\"\n", "user", "lone surrogate"),  # to YAML, two code points that are not text
    ("dataset: " + "a" * 201 + "\n", "dataset", "at most 200"),
    ("augment_preset: '../x'\n", "augment_preset", "letters, digits"),
    ("workspace: /\n", "workspace", "unknown parameter"),
    ("out_dir: /etc\n", "out_dir", "unknown parameter"),
]


@pytest.mark.parametrize("text,key,expected", BAD_FILES, ids=[b[2] + "-" + str(i) for i, b in enumerate(BAD_FILES)])
def test_bad_params_files_are_refused_naming_file_and_key(tmp_path, text, key, expected):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(ValidationError) as info:
        load_params(p, valid=set(PARAMS))
    msg = str(info.value)
    assert info.value.file == str(p) and "\n" not in msg
    if key is not None:
        assert info.value.field == key, msg
    assert expected in msg, msg


def test_dates_stay_text_and_plain_values_load(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("dataset: 2001-12-14\nsnapshot: '0123'\nlr: 1\nepochs: 0x10\n")
    got = load_params(p, valid=set(PARAMS))
    assert got["dataset"] == "2001-12-14" and got["snapshot"] == "0123" and got["lr"] == 1.0 and got["epochs"] == 16


def test_a_big_file_is_refused_before_parsing(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("dataset: x\n" + "#" * (2 << 20))
    with pytest.raises(ValidationError, match="bytes; at most"):
        load_params(p)


@pytest.fixture
def recorded(monkeypatch):
    """papermill.execute_notebook replaced: the injected cell (and only it) is executed in a namespace,
    which is what a kernel would get from it."""
    calls = []

    def fake(input_path, output_path, parameters=None, cwd=None, **kwargs):
        assert parameters is None
        nb = nbformat.read(str(input_path), as_version=4)
        cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        ns: dict = {}
        exec(compile(cell.source, "<injected>", "exec"), ns)  # noqa: S102 - the point of the test
        ns.pop("__builtins__", None)
        calls.append({"ns": ns, "parameters": dict(nb.metadata["papermill"]["parameters"])})
        if Path(input_path) != Path(output_path):
            shutil.copy(input_path, output_path)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return calls


def test_run_resolves_inside_the_output_folder_or_is_refused(tmp_path, recorded):
    out = tmp_path / "out"
    run_dir = out / "workspace" / "runs" / "d-20260101-000000-abcdef"
    run_dir.mkdir(parents=True)
    p = tmp_path / "p.yaml"
    for value in ("d-20260101-000000-abcdef", "workspace/runs/d-20260101-000000-abcdef", str(run_dir)):
        p.write_text(json.dumps({"run": value}))
        recorded.clear()
        run_loop(out, params_file=p, html=False)
        assert recorded[-1]["ns"]["run"] == str(run_dir.resolve())
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    for value in ("/etc", str(tmp_path / "elsewhere"), "../../../elsewhere", "link",
                  "workspace/runs/../../../elsewhere"):
        p.write_text(json.dumps({"run": value}))
        with pytest.raises(UnsafePathError) as info:
            run_loop(out, params_file=p, html=False)
        assert info.value.file == str(p) and info.value.field == "run"


# ----------------------------------------------------------------------------------------- property test
_KEYS = st.sampled_from([*PARAMS, *PARAMS, "notebook", "kernel_name", "steps", "<<", "x y", "__import__"])
_HOSTILE = st.sampled_from([
    PAYLOAD, "'; import os; os.system('touch {marker}'); '", "\\\"); __import__('os').system('touch {marker}'",
    "\n__import__('os').system('touch {marker}')\n", "{{pm}}", "../../../../tmp/x", "/etc", "..",
    "\x1b[2J\x00", "\u202eabc", "a" * 250,
])
_PLAUSIBLE = st.one_of(st.sampled_from(["digits", "small-cnn", "0123abcd", "classification", "detection", "",
                                         "no-flip", "workspace/runs/x", "/tmp"]),
                       st.integers(0, 100), st.floats(0.0001, 1.0))
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # lone surrogates: in _yaml_scalar
_SCALAR = st.one_of(_PLAUSIBLE, _PLAUSIBLE, _HOSTILE, _HOSTILE, st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True), st.booleans(), st.none(), _TEXT, st.text(max_size=30))
_TAGS = st.sampled_from(["!!omap ", "!!pairs ", "!!set ", "!!binary ", "!!str ", "!!int ", "!!float ",
                         "!!python/object/apply:os.system ", "!!python/tuple ", "!!python/name:os.system ",
                         "!!timestamp ", "!x ", "!!map ", "!!seq ", "&a ", "*a "])


def _yaml_scalar(v) -> str:
    return json.dumps(v) if not isinstance(v, float) or v == v else ".nan"


@st.composite
def yaml_documents(draw) -> str:
    """Text that is mostly a YAML mapping of parameters to values (plausible, hostile, tagged, nested,
    aliased), sometimes anything at all."""
    mode = draw(st.sampled_from(["plain", "wild", "text"]))
    if mode == "text":
        return draw(st.text(max_size=200))
    lines = []
    if mode == "plain":  # parameters with plausible or hostile scalars of their type: often loads
        keys = draw(st.lists(st.sampled_from([k for k, spec in PARAMS.items() if spec.from_file]), min_size=1,
                             max_size=4, unique=True))
        for key in keys:
            typed = {int: st.integers(0, 100), float: st.floats(1e-4, 1.0)}.get(
                PARAMS[key].type, st.one_of(st.sampled_from(["digits", "small-cnn", "0123abcd", "", "/tmp",
                                                             "workspace/runs/x", "classification"]), _HOSTILE))
            lines.append(f"{key}: {_yaml_scalar(draw(typed))}")
        return "\n".join(lines) + "\n"
    for _ in range(draw(st.integers(1, 4))):
        key = draw(_KEYS)
        shape = draw(st.sampled_from([0, 0, 0, 0, 0, 1, 2, 3]))
        if shape == 0:
            value = _yaml_scalar(draw(_SCALAR))
        elif shape == 1:
            value = "[" + ", ".join(_yaml_scalar(draw(_SCALAR)) for _ in range(draw(st.integers(0, 3)))) + "]"
        elif shape == 2:
            value = "[" + ", ".join(f"{{{json.dumps(draw(_TEXT))}: {_yaml_scalar(draw(_SCALAR))}}}"
                                    for _ in range(draw(st.integers(1, 3)))) + "]"
        else:
            value = "{a: [" + _yaml_scalar(draw(_SCALAR)) + "]}"
        tag = draw(_TAGS) if draw(st.integers(0, 3)) == 3 else ""  # hypothesis favours 0: untagged
        lines.append(f"{json.dumps(key) if draw(st.booleans()) else key}: {tag}{value}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(doc=yaml_documents())
@example(doc='run: "\\ud800\\udc00"\n')  # found by CI: a path of two lone surrogates failed to encode
def test_random_params_files_never_run_code_nor_write_outside_out(recorded, doc):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        marker = root / "pwned"
        p = root / "params.yaml"
        p.write_text(doc.replace("{marker}", str(marker)), encoding="utf-8")
        (root / "outside").mkdir()
        out = root / "out"
        recorded.clear()
        try:
            run_loop(out, params_file=p, html=False)
        except ValidationError as e:
            assert e.file == str(p) and "\n" not in str(e)
            assert recorded == []
        else:
            assert len(recorded) == len(STEPS)
            for call in recorded:
                assert call["ns"] == call["parameters"]  # the cell assigned exactly the checked values
                for k, v in call["ns"].items():
                    assert type(v) is PARAMS[k].type
                for k in ("workspace", "out_dir", "run"):
                    if call["ns"].get(k):
                        assert Path(call["ns"][k]).resolve().is_relative_to(out.resolve()), (k, call["ns"][k])
        assert not marker.exists()
        written = {str(q.relative_to(root)) for q in root.rglob("*")}
        assert {w for w in written if w != "out" and not w.startswith("out/")} == {"params.yaml", "outside"}


def test_the_parameters_cell_is_repr_and_refuses_what_the_table_does_not_type():
    src = parameters_cell({"dataset": "a'\"\\", "lr": 0.5, "epochs": 2})
    assert src.splitlines()[1:] == ["dataset = 'a\\'\"\\\\'", "lr = 0.5", "epochs = 2"]
    with pytest.raises(ValidationError):
        parameters_cell({"dataset": ("a", "b")})
    with pytest.raises(ValidationError):
        parameters_cell({"not_typed": 1})
    with pytest.raises(ValidationError):
        parameters_cell({"epochs": True})


def test_the_cli_names_the_file_and_the_key_in_one_line(tmp_path, capsys):
    from workbench.cli import main

    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(f"snapshot: !!omap [{{a: '{PAYLOAD.format(marker=marker)}'}}]\n")
    assert main(["loop", "--params", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(p) in err and "field 'snapshot'" in err and "omap" in err
    assert not marker.exists()
