"""Who did it: the dashboards take the annotator's name (parameter, else $WORKBENCH_USER, else a name field)
and every edit made through them is stored under it."""

from __future__ import annotations

import pytest

from workbench.data import Workspace
from workbench.data.transfer import add_sample
from workbench.widgets.app import USER_ENV, UserGate, WorkbenchApp, annotator_name


@pytest.fixture
def ds(tmp_path):
    ws = Workspace(tmp_path / "ws")
    d, ids = add_sample(ws, "shapes", "shapes-detection", count=4, seed=0)
    d.replace_annotations(ids[0], [])
    yield d
    ws.close()


def test_name_from_parameter_then_environment(monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    assert annotator_name("") == "" and annotator_name(None) == ""
    monkeypatch.setenv(USER_ENV, "  served-user ")
    assert annotator_name("") == "served-user"
    assert annotator_name("  ana ") == "ana"  # the notebook parameter wins


def _draw(app: WorkbenchApp) -> None:
    s = app.canvas.state
    s.pointer_down(300, 200)
    s.pointer_move(400, 280)
    s.pointer_up(400, 280)


def test_the_environment_name_goes_with_every_edit(ds, monkeypatch):
    monkeypatch.setenv(USER_ENV, "served-user")
    gate = UserGate("", lambda who: WorkbenchApp(ds, user=who))
    assert isinstance(gate.view, WorkbenchApp)  # no question asked
    _draw(gate.view)
    eid = gate.view.canvas.state.example.id
    (a,) = ds.example(eid).annotations
    assert a.author == "served-user"


def test_no_name_asks_and_the_typed_name_is_stored(ds, monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    built = []
    gate = UserGate("", lambda who: built.append(who) or WorkbenchApp(ds, user=who))
    assert gate.view is None and built == []
    assert any("wb-user-name" in getattr(c, "_dom_classes", ()) for box in gate.children[1:2] for c in box.children)
    gate.submit("   ")
    assert gate.view is None and "type your name" in gate.note.value
    gate.submit("x" * 101)
    assert gate.view is None and "at most 100" in gate.note.value
    name = "Ana <script>alert(1)</script>"
    gate.name.value = name
    gate.start.click()
    assert built == [name]
    who = gate.children[0].value
    assert "<script>" not in who and "&lt;script&gt;" in who  # a name is data, never HTML
    _draw(gate.view)
    s = gate.view.canvas.state
    s.key_down("Enter")  # done: the status write is the labeller's too (no author column: the box is)
    eid = s.ids[0]
    (a,) = ds.example(eid).annotations
    assert a.author == name and ds.example(eid).status == "annotated"


def test_dashboard_notebooks_default_to_asking():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "workbench" / "dashboards"
    for nb in ("annotate.ipynb", "review.ipynb"):
        cells = json.loads((root / nb).read_text())["cells"]
        params = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        src = "".join(params["source"])
        assert "user = ''" in src, src
        assert "UserGate(user" in "".join("".join(c["source"]) for c in cells)
