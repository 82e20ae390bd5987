"""``workbench serve`` over HTTP: Voilà started with the command Workbench builds serves the two dashboards
and nothing else (no notebook, file or API outside the dashboards folder), and with a token nothing at all
to a request without it. tests/loop/test_serve.py checks the command line itself; here, the refusals that
happen before any server starts: the CLI, hostnames, and a token alone not being enough."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.errors import ValidationError
from workbench.loop import serve as serve_mod
from workbench.loop import serve_app
from workbench.loop.serve import serve_command

TOKEN = "s3cret-token-of-24-chars"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int | str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return type(e).__name__, ""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server as ``workbench serve --allow-remote`` starts it (token in WORKBENCH_TOKEN), but bound to
    127.0.0.1."""
    port = free_port()
    cmd = serve_command(port=port, ip="0.0.0.0", allow_remote=True)
    assert "--Voila.ip=0.0.0.0" in cmd
    cmd = [a if a != "--Voila.ip=0.0.0.0" else "--Voila.ip=127.0.0.1" for a in cmd]  # never reachable here
    here = tmp_path_factory.mktemp("voila")
    log = here / "voila.log"
    env = {**os.environ, "WORKBENCH_HOME": str(here / "ws"), "WORKBENCH_TOKEN": TOKEN}  # as serve() passes it
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while isinstance(_get(port, "/login")[0], str):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_without_the_token_every_page_asks_for_it(served):
    for path in ("/", "/voila/tree", "/voila/render/annotate.ipynb", "/voila/render/review.ipynb"):
        status, url = _get(served, path)
        assert status == 200 and "/login?next=" in url, (path, status, url)
    assert _get(served, "/voila/api/contents")[0] == 403


@pytest.mark.parametrize(
    "path",
    [
        "/voila/render/..%2Fnotebooks%2F02_train.ipynb",
        "/voila/render/../notebooks/02_train.ipynb",
        "/voila/files/..%2Fpyproject.toml",
        "/voila/files/../pyproject.toml",
        "/voila/static/../../pyproject.toml",
        "/voila/files/annotate.ipynb",
        "/voila/api/contents/..",
        "/voila/api/contents/..%2Fpyproject.toml",
        "/voila/api/contents/..%2F..%2Fetc%2Fpasswd",
        "/voila/api/contents/%2Fetc%2Fpasswd",
        "/files/pyproject.toml",
        "/api/contents",
        "/api/kernels",
        "/api/sessions",
        "/tree",
        "/lab",
    ],
)
def test_with_the_token_nothing_outside_the_dashboards_is_served(served, path):
    status, _ = _get(served, f"{path}?token={TOKEN}")
    assert status in (403, 404), (path, status)


def test_with_the_token_the_dashboards_are_listed(served):
    import json

    with urllib.request.urlopen(
        f"http://127.0.0.1:{served}/voila/api/contents?token={TOKEN}", timeout=10
    ) as r:
        listing = json.loads(r.read())
    notebooks = sorted(e["name"] for e in listing["content"] if e["type"] == "notebook")
    assert notebooks == ["annotate.ipynb", "review.ipynb"]


def test_the_cli_refuses_another_interface_without_the_flag(tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(serve_app, "run", lambda *a, **k: started.append(a) or 0)
    monkeypatch.setenv("WORKBENCH_TOKEN", TOKEN)
    code = main(["--home", str(tmp_path), "serve", "--ip", "0.0.0.0"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "--allow-remote" in err and "Traceback" not in err
    assert started == []  # no server was started


@pytest.mark.parametrize("ip", ["localhost", "127.0.0.2", "::1"])
def test_loopback_names_need_no_flag(ip):
    cmd = serve_command(ip=ip)
    assert f"--Voila.ip={ip}" in cmd


def test_the_dashboards_get_an_absolute_workspace_outside_the_package(tmp_path, monkeypatch):
    """Voilà runs each dashboard in the dashboards folder: a relative or default workspace would be made
    inside the package (and listed by the server); serve always passes an absolute one."""
    seen = {}
    monkeypatch.setattr(serve_app, "run", lambda argv, **k: seen.update(k))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    for home_env, expected in ((None, tmp_path / "workbench-data"), ("rel/ws", tmp_path / "rel" / "ws")):
        if home_env is None:
            monkeypatch.delenv("WORKBENCH_HOME", raising=False)
        else:
            monkeypatch.setenv("WORKBENCH_HOME", home_env)
        serve_mod.serve()
        assert seen["environ"]["WORKBENCH_HOME"] == str(expected.resolve())
        assert not Path(seen["environ"]["WORKBENCH_HOME"]).is_relative_to(serve_mod.dashboards_dir())


def test_remote_serve_generates_a_token_shown_once_and_passes_user_and_workspace(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(serve_app, "run", lambda argv, **k: seen.update(k, argv=argv))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    assert serve_mod.serve(ip="0.0.0.0", allow_remote=True, home=tmp_path, user="Grace Hopper") == 0
    token = seen["token"]
    assert len(token) >= 24 and seen["show_token"] is True
    assert not any(token in a for a in seen["argv"])
    assert "without TLS" in capsys.readouterr().err  # remote without --certfile: said, once
    assert seen["environ"] == {"WORKBENCH_HOME": str(tmp_path.resolve()), "WORKBENCH_USER": "Grace Hopper"}
    monkeypatch.setenv("WORKBENCH_TOKEN", TOKEN)  # a given token is used, and not shown
    serve_mod.serve(ip="0.0.0.0", allow_remote=True, home=tmp_path)
    assert seen["token"] == TOKEN and seen["show_token"] is False
    with pytest.raises(ValidationError):
        serve_command(ip="0.0.0.0")  # a token alone does not open another interface
