"""The CLI prints stored text inert: names holding terminal escapes (an OSC that retitles the terminal, a
CSI that clears it), NUL, BEL or bidi overrides, in a workspace written before names were checked, come out
with those characters shown as ``\\xNN`` / ``\\uNNNN``, on stdout and in error messages alike."""

from __future__ import annotations

import pytest

from workbench import Workspace
from workbench.cli import main
from workbench.text import terminal_safe

DS = "ds\x1b]0;owned\x07\x1b[2J\u202eevil"
CLS = "cls\x1b[31m\x00"
DIR = "dir\x1b[1A\u2066"
MESSAGE = "msg\x1bc\x9b2J"
RAW = ("\x1b", "\x07", "\x00", "\x9b", "\u202e", "\u2066")


@pytest.fixture
def old_workspace(tmp_path):
    """Hostile names put straight into SQLite, as a workspace from before the name checks holds them."""
    home = tmp_path / "ws"
    with Workspace(home) as ws:
        ds = ws.create_dataset("tmp", "classification", classes=["a"])
        ds.create_directory("d")
        ds.snapshot("m")
        with ws.transaction():
            ws.conn.execute("UPDATE datasets SET name=? WHERE id=?", (DS, ds.id))
            ws.conn.execute("UPDATE classes SET name=? WHERE dataset_id=?", (CLS, ds.id))
            ws.conn.execute("UPDATE directories SET name=? WHERE dataset_id=?", (DIR, ds.id))
            ws.conn.execute("UPDATE snapshots SET message=? WHERE dataset_id=?", (MESSAGE, ds.id))
    return home


@pytest.mark.parametrize("args", [["datasets"], ["stats", DS, "--no-near-duplicates"], ["snapshots", DS],
                                  ["dir", "list", DS], ["datasets", "--json"]],
                         ids=["datasets", "stats", "snapshots", "dir-list", "datasets-json"])
def test_stored_names_print_without_terminal_controls(old_workspace, capsys, args):
    assert main(["--home", str(old_workspace), *args]) == 0
    out = capsys.readouterr().out
    assert out and not any(ch in out for ch in RAW), repr(out)
    if args == ["datasets"]:
        assert terminal_safe(DS) in out and "\\x1b]0;owned\\x07" in out


def test_errors_quoting_a_name_print_without_terminal_controls(old_workspace, capsys):
    assert main(["--home", str(old_workspace), "stats", "nope\x1b]0;owned\x07"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and not any(ch in err for ch in RAW), repr(err)
    assert "\\x1b]0;owned\\x07" in err and terminal_safe(DS) in err  # the known datasets are listed


def test_a_hostile_name_is_refused_on_creation_in_one_line(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "ws"), "create", "x\x1b[2J", "--type", "detection"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "field 'name'" in err and "\x1b" not in err
