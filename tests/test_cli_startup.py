"""``workbench --help`` stays light: the layer commands (train, evaluate, loop...) load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from workbench.cli import _LAYER_COMMANDS, cli, main

HEAVY = ("torch", "torchvision", "albumentations", "cv2", "plotly", "ipywidgets", "ipycanvas", "papermill")
LAYERS = ("workbench.train", "workbench.evaluate", "workbench.loop", "workbench.widgets", "workbench.augment")

PROBE = """
import contextlib, io, json, sys
from workbench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _fresh(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_no_layer_and_lists_every_command_as_when_loaded(capsys):
    fresh = _fresh("--help")
    assert fresh["code"] == 0
    loaded = [m for m in fresh["modules"] if m.split(".")[0] in HEAVY or m.startswith(LAYERS)]
    assert loaded == []
    for name in _LAYER_COMMANDS:  # now load every layer command, as running them would
        assert isinstance(cli.get_command(click.Context(cli), name), click.Command)
    assert main(["--help"]) == 0
    assert capsys.readouterr().out == fresh["out"]


def test_layer_command_sentences_are_the_commands_own():
    ctx = click.Context(cli)
    for name, (_, _, sentence) in _LAYER_COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=10_000) == sentence, name


def test_a_layer_command_loads_when_it_runs():
    fresh = _fresh("metrics", "--help")
    assert fresh["code"] == 0 and "coco" in fresh["out"]
    assert "workbench.evaluate.cli" in fresh["modules"] and "workbench.train.cli" not in fresh["modules"]


def test_python_dash_m_workbench():
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "version" in proc.stdout


def test_import_workbench_loads_nothing_until_a_name_is_used():
    """``import workbench`` is the package alone; ``workbench.Workspace`` (and the rest of ``__all__``)
    import the data layer on first use."""
    code = (
        "import json, sys\nimport workbench\nbefore = sorted(m for m in sys.modules if m.startswith('workbench'))\n"
        "names = {n: type(getattr(workbench, n)).__name__ for n in workbench.__all__}\n"
        "from workbench import Workspace, WorkbenchError\n"
        "print(json.dumps({'before': before, 'names': names, 'same': Workspace is workbench.Workspace}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
    assert out["before"] == ["workbench"]
    assert out["same"] and out["names"]["__version__"] == "str"
    assert all(out["names"][n] == "type" for n in out["names"] if n != "__version__")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import workbench

        workbench.nope  # noqa: B018
