"""Untrusted artifacts: a crafted pickle is refused wherever a file of weights is read, and the loop only
executes Workbench's own notebooks or the folder the user names: a parameter file can neither point it at
another notebook nor smuggle code in through a value."""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from workbench.errors import ValidationError
from workbench.loop.params import STEPS, notebooks_dir
from workbench.loop.runner import run_loop
from workbench.loop.templates import new_project
from workbench.train.checkpoint import load_model
from workbench.train.errors import CheckpointError
from workbench.train.models import build_model, load_weights


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_pickles_are_refused_as_weights_and_in_run_folders(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"conv.weight": torch.zeros(1)}, "x": _Exploit(marker)}, evil)
    model = build_model("small-cnn", 3, image_size=16)
    with pytest.raises(ValidationError, match="not a loadable state_dict") as info:
        load_weights(model, evil)  # TrainConfig(weights=...) comes here
    assert info.value.file == str(evil) and "\n" not in str(info.value)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(evil, run / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_model(run)  # prediction, evaluation and ONNX export load a run folder this way
    assert not marker.exists()


@pytest.fixture
def executed(monkeypatch):
    """papermill.execute_notebook replaced by a recorder (the notebook is kept, not run). The loop writes the
    parameters cell itself and hands papermill the parameterized notebook and no parameters."""
    import papermill

    calls = []

    def fake(input_path, output_path, parameters=None, cwd=None, **kwargs):
        assert parameters is None  # papermill translates nothing
        nb = nbformat.read(str(input_path), as_version=4)
        calls.append(
            {"input": Path(nb.metadata["workbench"]["notebook"]), "output": Path(output_path),
             "parameters": dict(nb.metadata["papermill"]["parameters"]), "cwd": cwd, "nb": nb}
        )
        if Path(input_path) != Path(output_path):
            shutil.copy(input_path, output_path)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return calls


@pytest.mark.parametrize(
    "key,value",
    [
        ("notebooks", "/tmp"),
        ("notebook", "/tmp/evil.ipynb"),
        ("input_path", "/tmp/evil.ipynb"),
        ("steps", ["../../tmp/evil"]),
        ("kernel_name", "evil"),
        ("workspace", "/"),
        ("out_dir", "/etc"),
    ],
)
def test_a_params_file_cannot_redirect_execution(tmp_path, executed, key, value):
    import yaml

    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(ValidationError, match="unknown parameter") as info:
        run_loop(tmp_path / "out", params_file=p, html=False)
    assert f"field '{key}'" in str(info.value) and "\n" not in str(info.value)
    assert executed == []  # nothing ran


def test_the_loop_runs_only_its_own_or_the_named_notebooks(tmp_path, executed):
    run_loop(tmp_path / "out", quick=True, html=False)
    own = notebooks_dir().resolve()
    assert [c["input"].resolve() for c in executed] == [own / f"{s}.ipynb" for s in STEPS]
    assert all(c["output"].parent == (tmp_path / "out").resolve() for c in executed)
    executed.clear()
    project = tmp_path / "project"
    new_project(project, "classification")
    run_loop(tmp_path / "out2", notebooks=project, html=False)
    assert [c["input"].resolve() for c in executed] == [project.resolve() / f"{s}.ipynb" for s in STEPS]


def test_the_notebook_folder_must_hold_the_steps(tmp_path, executed):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "evil.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with pytest.raises(Exception, match="01_annotate.ipynb not found"):
        run_loop(tmp_path / "out", notebooks=tmp_path / "other", html=False)
    assert executed == []


HOSTILE_VALUES = {
    "dataset": "x'; __import__('os').system('touch {marker}'); '\"\"\"\\",
}
REFUSED_VALUES = {  # not names of a sample / preset: refused before anything runs
    "sample": 'digits"\nimport os; os.system("touch {marker}")\n"',
    "augment_preset": "\\'; import os #",
}


@pytest.mark.parametrize("key", sorted(REFUSED_VALUES))
def test_values_that_are_no_names_are_refused(tmp_path, executed, key):
    import yaml

    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({key: REFUSED_VALUES[key].format(marker=tmp_path / "pwned")}))
    with pytest.raises(ValidationError, match="letters, digits") as info:
        run_loop(tmp_path / "out", params_file=p, html=False)
    assert info.value.file == str(p) and info.value.field == key
    assert executed == []


def test_parameter_values_reach_the_notebooks_as_inert_strings(tmp_path, executed):
    """What the loop writes into the parameters cell for hostile values parses back to the same strings
    and nothing else (no call, no import)."""
    import yaml

    marker = tmp_path / "pwned"
    values = {k: v.format(marker=marker) for k, v in HOSTILE_VALUES.items()}
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(values))
    run_loop(tmp_path / "out", params_file=p, html=False)
    for call in executed:
        nb = call["nb"]  # what execute_notebook runs
        injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        tree = ast.parse(injected.source)
        assert all(isinstance(node, ast.Assign) for node in tree.body)
        assigned = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
        for k, v in values.items():
            if k in assigned:
                assert assigned[k] == v
        assert set(assigned) == set(call["parameters"])
    assert any("dataset" in c["parameters"] for c in executed)
    assert not marker.exists()
