"""``workbench loop``: the notebooks chained headless with papermill, and ``workbench new``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from workbench.cli import main
from workbench.errors import ValidationError
from workbench.loop import QUICK, load_params, run_loop
from workbench.loop.runner import StepFailed

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_loop_twice_same_metrics(tmp_path, capsys):
    assert main(["loop", "--quick", "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    # the training step's progress streamed while it ran (workbench.progress lines from the kernel)
    running, done = err.index("02_train: running"), err.index("02_train: done")
    assert running < err.index("  02_train | train: epoch 1/") < done, err
    assert f"report: {tmp_path / 'a' / 'report.html'}" in out
    for name in ("01_annotate.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "loop.json", "metrics.json",
                 "report.html"):
        assert (tmp_path / "a" / name).is_file(), name
    m1 = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m1["summary"]["test accuracy"] > 0.8
    assert len(m1["review"]["examples"]) > 0
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Step 03_evaluate" in html and ("image/png" in html or "<img" in html) and "plotly" in html
    record = json.loads((tmp_path / "a" / "loop.json").read_text())
    assert record["status"] == "ok" and [s["step"] for s in record["steps"]] == [
        "01_annotate", "02_train", "03_evaluate"]
    # the dashboards run headless over that workspace and leave pictures, not empty outputs
    import papermill

    from workbench.loop.serve import dashboards_dir

    for name in ("annotate", "review"):
        target = tmp_path / f"dash-{name}.ipynb"
        papermill.execute_notebook(str(dashboards_dir() / f"{name}.ipynb"), str(target), kernel_name="python3",
                                   parameters={"workspace": str(tmp_path / "a" / "workspace")},
                                   progress_bar=False)
        outputs = [o for c in json.loads(target.read_text())["cells"] for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs), name
    # same parameters, same metrics (CPU, fixed seed)
    run_loop(tmp_path / "b", quick=True)
    m2 = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m2["test"] == m1["test"]


@pytest.mark.slow
def test_failed_step_names_cell_and_keeps_what_ran(tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump({"model": "no-such-model"}))
    with pytest.raises(StepFailed) as exc:
        run_loop(tmp_path / "out", params_file=params, quick=True)
    msg = str(exc.value)
    assert "02_train" in msg and "cell In [" in msg and "no-such-model" in msg
    assert (tmp_path / "out" / "01_annotate.ipynb").is_file()
    assert (tmp_path / "out" / "02_train.ipynb").is_file()
    assert not (tmp_path / "out" / "03_evaluate.ipynb").exists()
    record = json.loads((tmp_path / "out" / "loop.json").read_text())
    assert record["status"] == "failed" and record["steps"][-1]["status"] == "failed"
    assert (tmp_path / "out" / "report.html").is_file()


def test_params_validation(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("epochs: 3\nbogus: 1\n")
    with pytest.raises(ValidationError, match="bogus.*valid:"):
        load_params(p)
    p.write_text("epochs: three\n")
    with pytest.raises(ValidationError, match="epochs"):
        load_params(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ValidationError, match="mapping"):
        load_params(p)
    p.write_text("dataset_type: detection\nepochs: 9\n")
    quick = load_params(p, quick=True)
    assert quick["epochs"] == 9  # --quick never overrides a value the params file sets
    assert quick["batch_size"] == QUICK["detection"]["batch_size"]  # ... and sets what the file leaves
    assert quick["sample_count"] == QUICK["detection"]["sample_count"]
    assert load_params(p)["epochs"] == 9


def test_cli_loop_error_is_one_line(tmp_path, capsys):
    p = tmp_path / "p.yaml"
    p.write_text("nope: 1\n")
    assert main(["loop", "--params", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope" in err and "Traceback" not in err


def test_new_project_has_runnable_files(tmp_path, capsys):
    assert main(["new", str(tmp_path / "parts"), "--type", "detection"]) == 0
    names = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert names == ["01_annotate.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "README.md", "params.yaml"]
    params = yaml.safe_load((tmp_path / "parts" / "params.yaml").read_text())
    assert params["dataset"] == "parts" and params["dataset_type"] == "detection"
    assert params["model"] == "tiny-frcnn"
    assert main(["new", str(tmp_path / "parts")]) == 2  # not over an existing project


TYPES = ["classification", "detection", "segmentation", "anomaly"]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", TYPES)
def test_each_template_runs_as_is(tmp_path, dtype):
    from workbench.loop.templates import new_project

    proj = tmp_path / f"proj-{dtype}"
    new_project(proj, dtype)
    # the template's notebooks as they are; its params file sized down (a params file's values win over --quick:
    # the template's own 200 images x 8 epochs are the user's full run, minutes per type on 2 cores)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params.update(sample_count=60, epochs=1)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = run_loop(tmp_path / "out", params_file=proj / "params.yaml", quick=True, notebooks=proj)
    assert res.metrics["dataset"] == proj.name
    assert res.metrics["test"], res.metrics


def _tiny_notebooks(folder: Path) -> Path:
    """Three stand-in notebooks with parameters cells: the runner's mechanics without training."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder.mkdir()
    for step, body in (("01_annotate", "x = seed * 2"),
                       ("02_train", "import json, pathlib\npathlib.Path(out_dir, 'train.json').write_text('{}')"),
                       ("03_evaluate", "import json, pathlib\npathlib.Path(out_dir, 'metrics.json').write_text("
                                       "json.dumps({'summary': {'seed': seed, 'epochs': epochs}}))")):
        params = new_code_cell("seed = 0\nepochs = 1\nout_dir = ''\nworkspace = ''\ndataset_type = 'classification'")
        params.metadata["tags"] = ["parameters"]
        nb = new_notebook(cells=[params, new_code_cell(body)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(folder / f"{step}.ipynb"))
    return folder


def test_sweep_runs_each_params_file_in_its_own_folder(tmp_path, capsys):
    nbs = _tiny_notebooks(tmp_path / "nbs")
    files = []
    for seed in (1, 2):
        f = tmp_path / f"seed{seed}.yaml"
        f.write_text(yaml.safe_dump({"seed": seed, "epochs": 3}))
        files.append(f)
    args = ["loop", "--notebooks", str(nbs), "--out", str(tmp_path / "sweep"), "--jobs", "2"]
    for f in files:
        args += ["--params", str(f)]
    assert main(args) == 0
    assert "2 ok, 0 failed" in capsys.readouterr().out
    for seed in (1, 2):
        m = json.loads((tmp_path / "sweep" / f"seed{seed}" / "metrics.json").read_text())
        assert m["summary"] == {"seed": seed, "epochs": 3}
        assert (tmp_path / "sweep" / f"seed{seed}" / "report.html").is_file()
