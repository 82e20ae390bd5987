"""The command line as other tools script against it: commands, JSON shapes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_and_list(capsys, tmp_path):
    home = str(tmp_path / "ws")
    assert run(capsys, "--home", home, "create", "cars", "--type", "detection", "--classes", "car=#ff0000,bus")[0] == 0
    code, out, _ = run(capsys, "--home", home, "datasets", "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows == [{"name": "cars", "type": "detection", "description": "", "examples": 0, "annotations": 0,
                     "classes": 2}]


@pytest.mark.parametrize("args,needle", [
    (["create", "x", "--type", "regression"], "Invalid value"),
    (["stats", "missing"], "no dataset 'missing'"),
    (["create", "x", "--type", "detection", "--classes", "a=red"], "colour"),
    (["snapshots", "nope"], "no dataset"),
])
def test_errors_are_one_line_non_zero(capsys, tmp_path, args, needle):
    code, out, err = run(capsys, "--home", str(tmp_path / "ws"), *args)
    assert code != 0
    assert needle in err
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.strip()]) <= 3


def test_sample_snapshot_dirs_diff(capsys, tmp_path):
    home = str(tmp_path / "ws")
    assert run(capsys, "--home", home, "sample", "d", "digits", "--count", "60")[0] == 0
    code, out, _ = run(capsys, "--home", home, "snapshot", "d", "-m", "one")
    sid = out.split()[1].rstrip(":")
    assert code == 0 and len(sid) == 16
    assert run(capsys, "--home", home, "dir", "mirror", "d", "review", "1-5", "9")[0] == 0
    assert run(capsys, "--home", home, "dir", "copy", "d", "relabel", "1,2")[0] == 0
    code, out, _ = run(capsys, "--home", home, "dir", "list", "d", "--json")
    assert {r["name"]: r["examples"] for r in json.loads(out)} == {"relabel": 2, "review": 6}
    assert run(capsys, "--home", home, "dir", "remove", "d", "review", "9")[0] == 0
    code, out, _ = run(capsys, "--home", home, "snapshot", "d", "-m", "two")
    sid2 = out.split()[1].rstrip(":")
    code, out, _ = run(capsys, "--home", home, "diff", "d", sid, sid2, "--json")
    d = json.loads(out)
    assert code == 0 and len(d["added"]) == 2 and d["removed"] == []
    code, out, _ = run(capsys, "--home", home, "snapshots", "d", "--json")
    assert [s["message"] for s in json.loads(out)] == ["one", "two"]


def test_console_script_no_traceback(tmp_path):
    exe = [sys.executable, "-m", "workbench.cli"]
    p = subprocess.run([*exe, "--home", str(tmp_path), "stats", "ghost"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("error: no dataset 'ghost'") and "Traceback" not in p.stderr
    p = subprocess.run([*exe, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "import" in p.stdout and "sample" in p.stdout


def test_workbench_home_env(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "envhome"))
    assert run(capsys, "create", "a", "--type", "classification", "--classes", "x,y")[0] == 0
    assert (tmp_path / "envhome" / "workbench.db").exists()
