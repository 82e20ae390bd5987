"""The loop trains with the same defaults table as ``workbench train`` (workbench/train/defaults.py): by the
dataset's type and training-set size for every setting the params file (or ``--quick``) leaves unset; a
params-file value always wins; the loop says where each setting came from and records the table's choice.

The real annotate notebook and the real train notebook, cut after its configuration cell (a last cell
writes the TrainConfig it built): the choice is checked, nothing is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from workbench.cli import main
from workbench.data.workspace import Workspace
from workbench.loop import QUICK, load_params, run_loop
from workbench.loop.params import BY_TYPE, DEFAULTS, describe_settings, notebooks_dir
from workbench.train.defaults import choose_defaults
from workbench.train.from_store import source_from_dataset

TYPES = ["classification", "detection", "segmentation", "anomaly"]
SETTINGS = ("batch_size", "lr", "schedule", "epochs", "image_size")
# what every loop trained with before, whatever the type: the digits values
DIGITS = {"batch_size": 64, "lr": 0.002, "schedule": "onecycle", "epochs": 12}

_DUMP = """import json as _json
from pathlib import Path as _Path
_Path(out_dir, 'config.json').write_text(_json.dumps({'config': {k: getattr(config, k) for k in
    ('model', 'batch_size', 'lr', 'schedule', 'epochs', 'image_size')}, 'dataset': dataset, 'snapshot': snapshot}))
_Path(out_dir, 'train.json').write_text(_json.dumps({'defaults': defaults}))"""


def _cut_notebooks(folder: Path) -> Path:
    """The loop's own 01_annotate, its 02_train up to the cell that builds the config (plus one that writes
    it), and an 03_evaluate that only declares its parameters."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder.mkdir()
    src = notebooks_dir()
    nbformat.write(nbformat.read(str(src / "01_annotate.ipynb"), as_version=4), str(folder / "01_annotate.ipynb"))
    train = nbformat.read(str(src / "02_train.ipynb"), as_version=4)
    at = next(i for i, c in enumerate(train.cells) if "fill_from_table(" in c.source)
    train.cells = train.cells[: at + 1] + [new_code_cell(_DUMP)]
    nbformat.write(train, str(folder / "02_train.ipynb"))
    evaluate = new_notebook(cells=[new_code_cell("out_dir = ''\nmine_count = 40")])
    evaluate.cells[0].metadata["tags"] = ["parameters"]
    evaluate.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(evaluate, str(folder / "03_evaluate.ipynb"))
    return folder


@pytest.fixture(scope="module")
def cut(tmp_path_factory):
    return _cut_notebooks(tmp_path_factory.mktemp("nb") / "cut")


def _table_row(out: Path, dataset: str, snapshot: str):
    ds = Workspace(out / "workspace").dataset(dataset)
    n_train = source_from_dataset(ds, snapshot=snapshot, require_train=False).counts()["train"]
    return choose_defaults(ds.type, n_train), n_train


# ------------------------------------------------------------------------------------------ params only
@pytest.mark.parametrize("dtype", TYPES)
def test_non_quick_params_leave_the_training_settings_to_the_table(tmp_path, dtype):
    p = tmp_path / "p.yaml"
    p.write_text(f"dataset_type: {dtype}\n")
    origins: dict[str, str] = {}
    params = load_params(p, origins=origins)
    assert {k: params[k] for k in SETTINGS} == {"batch_size": 0, "lr": 0.0, "schedule": "", "epochs": 0,
                                                "image_size": 0}
    assert all(origins[k] == "default" for k in SETTINGS)
    # and the type's own sample, model and augmentation, not digits' (a detection loop on digits cannot run)
    assert {k: params[k] for k in BY_TYPE[dtype]} == BY_TYPE[dtype]
    assert origins["sample"] == "dataset type"
    assert (params["sample"] == "digits") == (dtype == "classification")
    line = describe_settings(params, origins)
    assert "batch_size, lr, schedule, epochs, image_size from the defaults table" in line


def test_params_file_values_win_over_quick_and_the_table(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("dataset_type: detection\nepochs: 3\nlr: 0.01\nschedule: ''\nbatch_size: 0\n")
    origins: dict[str, str] = {}
    plain = load_params(p, origins=origins)
    assert (plain["epochs"], plain["lr"], plain["batch_size"], plain["schedule"]) == (3, 0.01, 0, "")
    assert origins["epochs"] == origins["lr"] == "params file"
    line = describe_settings(plain, origins)
    assert "epochs 3 (params file)" in line and "lr 0.01 (params file)" in line
    assert "batch_size, schedule, image_size from the defaults table" in line
    origins = {}
    quick = load_params(p, quick=True, origins=origins)
    q = QUICK["detection"]
    assert (quick["epochs"], quick["lr"]) == (3, 0.01)  # the file's values: --quick never overrides one
    # 0 / '' in the file means "the default": under --quick that is --quick's value
    assert (quick["batch_size"], quick["schedule"], quick["image_size"]) == (q["batch_size"], q["schedule"],
                                                                             q["image_size"])
    assert origins["batch_size"] == origins["image_size"] == "--quick" and origins["epochs"] == "params file"
    for bad, field in (("epochs: -1\n", "epochs"), ("lr: -0.5\n", "lr"), ("batch_size: -2\n", "batch_size")):
        p.write_text(bad)
        with pytest.raises(Exception, match=field) as exc:
            load_params(p)
        assert getattr(exc.value, "field", None) == field


def test_overrides_win_and_are_said(tmp_path):
    origins: dict[str, str] = {}
    params = load_params(None, overrides={"epochs": 2, "dataset_type": "segmentation"}, origins=origins)
    assert params["epochs"] == 2 and origins["epochs"] == "overrides"
    assert params["sample"] == "shapes-segmentation" and origins["sample"] == "dataset type"
    assert DEFAULTS["epochs"] == 0  # the loop's own default is the table's, not a number


# ------------------------------------------------------------------------------------------ the notebooks
@pytest.mark.slow
@pytest.mark.parametrize("dtype", TYPES)
def test_the_loop_trains_with_the_table_row_of_its_type_and_size(tmp_path, cut, dtype):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump({"dataset_type": dtype}))
    lines: list[tuple[str, str]] = []
    res = run_loop(tmp_path / "out", params_file=p, notebooks=cut, html=False,
                   on_output=lambda step, line: lines.append((step, line)))
    got = json.loads((tmp_path / "out" / "config.json").read_text())
    row, n_train = _table_row(tmp_path / "out", got["dataset"], got["snapshot"])
    assert row.dataset_type == dtype and row.train_examples == n_train > 0
    assert {k: got["config"][k] for k in SETTINGS} == row.settings()  # the table's row, every setting
    if dtype != "classification":
        assert {k: got["config"][k] for k in DIGITS} != DIGITS
    # said before training (where from) and by the train step (what and why), recorded in loop.json
    assert lines[0][0] == "loop" and "from the defaults table" in lines[0][1]
    assert ("02_train", row.describe()) in lines
    record = json.loads((tmp_path / "out" / "loop.json").read_text())
    assert record["defaults"]["note"] == row.describe() == res.defaults["note"]
    assert record["defaults"]["table"]["bucket"] == row.bucket and record["defaults"]["given"] == []
    step = next(s for s in record["steps"] if s["step"] == "02_train")
    assert step["defaults"] == record["defaults"]
    assert record["origins"]["epochs"] == "default" and record["origins"]["sample"] == "dataset type"


@pytest.mark.slow
def test_the_cli_loop_takes_the_params_file_values_and_says_why(tmp_path, cut, capsys):
    p = tmp_path / "p.yaml"
    p.write_text("dataset_type: detection\nsample_count: 40\nepochs: 3\nlr: 0.004\n")
    assert main(["loop", "--notebooks", str(cut), "--params", str(p), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    got = json.loads((tmp_path / "out" / "config.json").read_text())
    row, _ = _table_row(tmp_path / "out", got["dataset"], got["snapshot"])
    assert row.bucket == "tiny"  # 40 images: the tiny row
    assert got["config"]["epochs"] == 3 and got["config"]["lr"] == 0.004  # the file's values win
    assert {k: got["config"][k] for k in ("batch_size", "schedule", "image_size")} == {
        k: row.settings()[k] for k in ("batch_size", "schedule", "image_size")}
    assert "  loop | training settings: lr 0.004 (params file); epochs 3 (params file); batch_size, " \
           "schedule, image_size from the defaults table" in err
    assert f"  02_train | {row.describe()} (given: lr 0.004, epochs 3)" in err
    assert f"trained with {row.describe()} (given: lr 0.004, epochs 3)" in out


def test_fill_from_table_names_what_it_took_and_refuses_unknown_settings(tmp_path):
    from workbench.data.transfer import add_sample
    from workbench.errors import UnknownNameError
    from workbench.train.defaults import fill_from_table

    ws = Workspace(tmp_path / "ws")
    ds, _ = add_sample(ws, "d", "shapes-detection", count=40, seed=0)
    chosen, why = fill_from_table(ds, {"epochs": 3, "lr": None, "schedule": "cosine"})
    row = choose_defaults("detection", source_from_dataset(ds).counts()["train"])
    assert chosen == {**row.settings(), "epochs": 3, "schedule": "cosine"}
    assert why["given"] == ["schedule cosine", "epochs 3"] and why["table"] == row.to_dict()
    assert why["note"] == f"{row.describe()} (given: schedule cosine, epochs 3)"
    with pytest.raises(UnknownNameError, match="batch_size") as exc:
        fill_from_table(ds, {"epoch": 3})
    assert "epoch" in str(exc.value)
