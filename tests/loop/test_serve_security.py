"""``workbench serve`` as an attacker and a careless team meet it (issue 15): real servers on 127.0.0.1.

- a foreign Host header (DNS rebinding) gets 403, for pages and websockets; a foreign Origin on a websocket too;
- a legacy (non-v1) kernel websocket is refused: the one binary frame that made Voilà 0.5.13 loop and grow
  by 100 MB a second (its reply read as a v1 message) never reaches it, the server answers within a second;
- kernels stop when their page closes, and when a page never connects; 20 page loads and closes leave none;
  a cap on live kernels answers a clear 503 page;
- the token: from WORKBENCH_TOKEN or --token-file, on no command line (``ps``), in no log line, not in the
  kernels' environment; ``--token`` and short tokens refused; TLS with --certfile/--keyfile;
- a port in use: one line, no URL; ``--user`` reaches the kernels as WORKBENCH_USER.

The page-load tests serve a one-cell notebook (a button that answers a custom message with a binary buffer,
as ipycanvas does) through ``python -m workbench.loop.serve_app`` with ``serve_command``'s options; the token
and TLS tests run the real ``workbench serve`` on the dashboards. Servers are stopped by PID.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")
pytest.importorskip("voila")
nbformat = pytest.importorskip("nbformat")
ws_client = pytest.importorskip("websockets.sync.client")
from websockets.exceptions import InvalidStatus  # noqa: E402

from workbench.cli import main  # noqa: E402
from workbench.loop.serve import serve_command  # noqa: E402
from workbench.loop.serve_app import KERNEL_PROTOCOL  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + uuid.uuid4().hex  # 36 characters, unique to this run: found anywhere = leaked
USER = "Ada Lovelace"
GRACE = 1.0  # seconds a closed page's kernel lives
CONNECT = 10.0  # seconds a sent page has to connect (Chromium loads Voilà's scripts first)
CAP = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_TOKEN", "WORKBENCH_USER")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path
    scheme: str = "http"

    def kernels(self) -> list[psutil.Process]:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for child in children:
            try:
                if any("ipykernel" in part for part in child.cmdline()):
                    out.append(child)
            except psutil.Error:
                pass
        return out

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def request(self, path: str, *, host: str | None = None, timeout: float = 60.0,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host if host is not None else f"127.0.0.1:{self.port}")
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stop(self) -> None:
        """SIGTERM by PID; the server and every kernel it started must be gone within 20 s."""
        kernels = self.kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the server ignored SIGTERM for 20 s; log:\n{self.log.read_text()[-3000:]}")
        gone, alive = psutil.wait_procs(kernels, timeout=10)
        assert not alive, f"kernels left running after the server stopped: {alive}"


def start(cmd: list[str], log: Path, env: dict[str, str], port: int, scheme: str = "http") -> Server:
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    server = Server(proc, port, log, scheme)
    deadline = time.monotonic() + 90
    while "dashboards at" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"server did not start; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return server


# --------------------------------------------------------------------------- one-cell notebook, launcher
NOTEBOOK = """\
import os, ipywidgets as w
print("user=" + os.environ.get("WORKBENCH_USER", "?"), "token-in-env=" + str(any("tok-" in v for v in os.environ.values())))
b = w.Button()
b.on_msg(lambda widget, content, buffers: widget.send({"echo": content}, buffers=[b"abc"]))
b"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "t.ipynb")
    port = free_port()
    cmd = serve_command(port=port, root=root, close_grace=GRACE, connect_timeout=CONNECT, max_kernels=CAP)
    assert TOKEN not in " ".join(cmd)
    server = start(cmd, root.parent / "tiny.log", server_env(WORKBENCH_TOKEN=TOKEN, WORKBENCH_USER=USER), port)
    try:
        yield server
    finally:
        server.stop()


def load_page(server: Server, busy: list[int] | None = None) -> tuple[str, str]:
    """A page and its kernel id; while all kernels are in use (503), reload a little later, as a person would
    (``busy`` counts those 503s)."""
    deadline = time.monotonic() + 60
    while (page := server.request(f"/voila/render/t.ipynb?token={TOKEN}"))[0] == 503:
        if busy is not None:
            busy[0] += 1
        assert time.monotonic() < deadline, "no kernel freed in 60 s"
        time.sleep(0.3)
    status, html = page
    assert status == 200, (status, html[:300])
    return re.search(r'"kernelId": "([0-9a-f-]{36})"', html).group(1), html


def ws_url(server: Server, kernel_id: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"


def connect(server: Server, kernel_id: str, **kw):
    kw.setdefault("subprotocols", [KERNEL_PROTOCOL])
    kw.setdefault("close_timeout", 2)
    return ws_client.connect(ws_url(server, kernel_id), open_timeout=30,
                             additional_headers={"Authorization": f"token {TOKEN}", **kw.pop("headers", {})}, **kw)


def wait_kernels(server: Server, at_most: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while len(server.kernels()) > at_most and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(server.kernels())


def legacy_frame(msg: dict, buffers: list[bytes]) -> bytes:
    """jupyter_server's legacy binary message: part count and offsets as big-endian uint32, then the parts."""
    parts = [json.dumps(msg).encode(), *buffers]
    offsets, at = [], 4 * (len(parts) + 1)
    for part in parts:
        offsets.append(at)
        at += len(part)
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def close_page(server: Server, kernel_id: str) -> None:
    """What a tab does: connect, then close (the kernel then stops after the grace, not the connect timeout)."""
    with connect(server, kernel_id):
        pass


def test_the_kernel_gets_the_user_and_not_the_token(tiny):
    kernel_id, html = load_page(tiny)
    close_page(tiny, kernel_id)
    assert f"user={USER}" in html and "token-in-env=False" in html
    assert TOKEN not in html


def test_a_foreign_host_is_refused_for_pages_and_websockets(tiny):
    for host in ("evil.example", f"evil.example:{tiny.port}", f"localhost.evil.example:{tiny.port}",
                 f"127.0.0.1:{tiny.port + 1}", "", f"127.0.0.1:{tiny.port}@evil.example"):
        for path in ("/voila/render/t.ipynb", f"/voila/render/t.ipynb?token={TOKEN}", "/voila/static/voila.js",
                     "/login", "/voila/tree"):
            status, body = tiny.request(path, host=host)
            # a malformed Host never gets as far: tornado answers 400 itself
            assert (status == 403 and "Host" in body) or (status == 400 and "@" in host), (host, path, status)
    for host in (f"127.0.0.1:{tiny.port}", f"localhost:{tiny.port}", f"[::1]:{tiny.port}", "localhost"):
        assert tiny.request("/voila/static/voila.js", host=host)[0] == 200, host
    # the websocket of a live kernel, reached under a rebinding name: refused before the handshake
    kernel_id, _ = load_page(tiny)
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(ws_url(tiny, kernel_id).replace("127.0.0.1", "evil.example"), open_timeout=10,
                          subprotocols=[KERNEL_PROTOCOL],
                          sock=socket.create_connection(("127.0.0.1", tiny.port)))
    assert refused.value.response.status_code == 403
    close_page(tiny, kernel_id)


def test_a_websocket_from_a_foreign_origin_is_refused(tiny):
    kernel_id, _ = load_page(tiny)
    for origin in ("http://evil.example", f"http://evil.example:{tiny.port}", "null", "file://",
                   f"http://127.0.0.1:{tiny.port + 1}"):
        with pytest.raises(InvalidStatus) as refused:
            connect(tiny, kernel_id, origin=origin)
        assert refused.value.response.status_code == 403, origin
    with connect(tiny, kernel_id, origin=f"http://127.0.0.1:{tiny.port}") as ws:
        assert ws.subprotocol == KERNEL_PROTOCOL


def test_a_legacy_binary_frame_cannot_hang_the_server(tiny):
    """Voilà 0.5.13 sent the reply (a message with a binary buffer) to a legacy client as jupyter_server's
    legacy binary, then read it as a v1 message: 8 bytes taken as a part count of ~10^18, a list growing
    without end, the server deaf to requests and to SIGTERM. Legacy websockets are now refused."""
    kernel_id, html = load_page(tiny)
    model_id = re.search(r'model_id": "([0-9a-f]{32})"', html).group(1)
    rss = tiny.rss_mb()
    header = {"msg_id": uuid.uuid4().hex, "username": "x", "session": "x", "msg_type": "comm_msg",
              "version": "5.3", "date": "2024-01-01T00:00:00Z"}
    frame = legacy_frame({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell",
                          "content": {"comm_id": model_id, "data": {"method": "custom", "content": {}}}}, [b"x"])
    try:
        with connect(tiny, kernel_id, subprotocols=None) as ws:  # no subprotocol offered: legacy
            ws.send(frame)
            time.sleep(1.0)
    except InvalidStatus as e:
        assert e.response.status_code == 400
    for _ in range(3):
        t0 = time.monotonic()
        assert tiny.request("/voila/static/voila.js", timeout=5)[0] == 200
        assert time.monotonic() - t0 < 1.0
    assert tiny.rss_mb() - rss < 40, (rss, tiny.rss_mb())
    # a v1 client gets the kernel's binary answer
    with connect(tiny, kernel_id) as ws:
        assert ws.subprotocol == KERNEL_PROTOCOL


def test_twenty_page_loads_and_closes_leave_no_kernel(tiny):
    assert wait_kernels(tiny, 0, CONNECT + 10) == 0
    peak, errors, busy = [0], [], [0]

    def visitor(n: int) -> None:
        try:
            for _ in range(n):
                kernel_id, _ = load_page(tiny, busy)
                with connect(tiny, kernel_id) as ws:
                    ws.recv(timeout=90)  # the kernel answers: the page is live (30 s: too short under load)
                peak[0] = max(peak[0], len(tiny.kernels()))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in (7, 7, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert peak[0] <= CAP, peak
    assert wait_kernels(tiny, 0, GRACE + 10) == 0


def test_a_page_that_never_connects_does_not_keep_its_kernel(tiny):
    assert wait_kernels(tiny, 0, CONNECT + 10) == 0
    load_page(tiny)
    t0 = time.monotonic()
    assert len(tiny.kernels()) == 1
    assert wait_kernels(tiny, 0, CONNECT + 10) == 0
    assert time.monotonic() - t0 > CONNECT - 1  # its scripts had their time


def test_the_kernel_cap_answers_a_clear_page_and_frees_on_close(tiny):
    assert wait_kernels(tiny, 0, CONNECT + 10) == 0
    with contextlib.ExitStack() as pages:
        sockets = [pages.enter_context(connect(tiny, load_page(tiny)[0])) for _ in range(CAP)]
        status, body = tiny.request(f"/voila/render/t.ipynb?token={TOKEN}")
        assert status == 503 and f"{CAP} dashboards are open" in body
        assert len(tiny.kernels()) == CAP
        time.sleep(GRACE + 1)  # an open page keeps its kernel past the grace
        assert len(tiny.kernels()) == CAP
        sockets[0].close()  # one tab closed: its kernel goes, a new page gets a kernel
        assert wait_kernels(tiny, CAP - 1, GRACE + 10) == CAP - 1
        busy = [0]
        close_page(tiny, load_page(tiny, busy)[0])  # (a 503 or two while the stopped kernel is reaped)
        assert busy[0] <= 10, busy


# ------------------------------------------------------------------------------- the real workbench serve
def workbench_serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "--home", str(tmp / "ws"), "serve", *args]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(scope="module")
def real(tmp_path_factory, tls_files) -> Iterator[Server]:
    """``workbench serve --token-file F --certfile C --keyfile K`` on the dashboards."""
    tmp = tmp_path_factory.mktemp("real")
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    cert, key = tls_files
    cmd = workbench_serve(tmp, "--port", str(port), "--token-file", str(token_file), "--certfile", str(cert),
                          "--keyfile", str(key))
    server = start(cmd, tmp / "serve.log", server_env(), port, scheme="https")
    try:
        yield server
    finally:
        server.stop()


def test_the_token_is_on_no_command_line_and_in_no_log_line(real):
    assert real.request("/voila/static/voila.js")[0] == 200  # over TLS
    assert real.request(f"/voila/api/contents?token={TOKEN}")[0] == 200
    assert real.request(f"/voila/api/contents?token=wrong-{TOKEN[::-1]}")[0] == 403
    assert real.request(f"/voila/api/contents/nope.ipynb?token={TOKEN}")[0] == 404
    assert real.request(f"/voila/tree?token={TOKEN}", host="evil.example")[0] == 403
    assert real.request(f"/api/kernels?token={TOKEN}")[0] in (403, 404)
    time.sleep(0.5)
    for proc in psutil.process_iter(["cmdline"]):
        assert TOKEN not in " ".join(proc.info["cmdline"] or []), proc
    log = real.log.read_text()
    assert "dashboards at https://127.0.0.1" in log and "token required" in log
    assert TOKEN not in log and TOKEN[::-1] not in log
    assert log.count("token=[hidden]") >= 3, log[-3000:]


def test_plain_http_gets_no_page_from_a_tls_server(real):
    conn = http.client.HTTPConnection("127.0.0.1", real.port, timeout=5)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("GET", "/voila/static/voila.js")
            resp = conn.getresponse()
            if resp.status < 400:
                pytest.fail("a TLS server answered plain HTTP")
            raise ConnectionError(resp.status)
    finally:
        conn.close()


def test_a_port_in_use_is_one_line_and_no_url(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(workbench_serve(tmp_path, "--port", str(port)), capture_output=True, text=True,
                              env=server_env(), timeout=60)
    assert done.returncode != 0
    assert "http" not in done.stdout and "dashboards at" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0] and "in use" in lines[0] and "Traceback" not in lines[0]


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--token", "a"], {}, "--token"),
        (["--token", "a-long-enough-token-of-40-characters-xx"], {}, "--token"),
        ([], {"WORKBENCH_TOKEN": "a"}, "WORKBENCH_TOKEN"),
        ([], {"WORKBENCH_TOKEN": "short-15-chars!"}, "at least 16"),
        ([], {"WORKBENCH_TOKEN": "has a space in it and is long"}, "printable"),
        (["--user", "bad\u202euser"], {}, "--user"),
        (["--user", "x" * 65], {}, "--user"),
        (["--allow-host", "evil.example/x"], {}, "--allow-host"),
        (["--ip", "0.0.0.0"], {}, "--allow-remote"),
        (["--max-kernels", "0"], {}, "--max-kernels"),
    ],
)
def test_bad_serve_options_are_one_line_and_start_nothing(tmp_path, capsys, monkeypatch, args, env, says):
    from workbench.loop import serve_app

    started = []
    monkeypatch.setattr(serve_app, "run", lambda *a, **k: started.append(a))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(["--home", str(tmp_path), "serve", *args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and says in err and "Traceback" not in err, err
    assert started == []
    for value in (*args, *env.values()):
        if len(value) > 2 and value.startswith(("a-long", "short", "has a")):
            assert value not in err  # a refused token is not echoed either


@pytest.mark.parametrize(("mode", "says"), [(0o644, "readable by other users"), (0o600, "at least 16")])
def test_a_token_file_must_be_private_and_long_enough(tmp_path, capsys, monkeypatch, mode, says):
    from workbench.loop import serve_app

    monkeypatch.setattr(serve_app, "run", lambda *a, **k: pytest.fail("started"))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    f = tmp_path / "token"
    f.write_text("0123456789\n")
    f.chmod(mode)
    code = main(["--home", str(tmp_path), "serve", "--token-file", str(f)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and says in err and "0123456789" not in err and len(err.splitlines()) == 1


def test_an_idle_kernel_is_stopped_even_with_its_page_open(tmp_path):
    """``--idle-timeout``: a tab left open overnight does not hold its kernel (jupyter_server's culler, with
    connected kernels included); shortened to 2 s here (the CLI's floor is 10 s)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('idle')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "t.ipynb")
    port = free_port()
    cmd = [a for a in serve_command(port=port, root=tmp_path, close_grace=60)
           if not a.startswith(("--MappingKernelManager.cull_idle_timeout", "--MappingKernelManager.cull_interval"))]
    cmd += ["--MappingKernelManager.cull_idle_timeout=2", "--MappingKernelManager.cull_interval=1"]
    server = start(cmd, tmp_path / "idle.log", server_env(WORKBENCH_TOKEN=TOKEN), port)
    try:
        kernel_id, _ = load_page(server)
        with connect(server, kernel_id):
            assert len(server.kernels()) == 1
            assert wait_kernels(server, 0, 15) == 0
        assert "due to" in server.log.read_text() and "inactivity" in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.browser
def test_in_chromium_a_rebinding_name_gets_403_and_a_closed_tab_frees_its_kernel(tiny):
    """The attack as a browser makes it: Chromium resolves ``evil.example`` to 127.0.0.1 (what a rebinding
    DNS answer does) and loads the dashboard under that name: 403, no kernel. Then a real tab on the real
    address: its kernel lives while the tab is open and stops once it is closed."""
    from tests.browser import ARGS, CHROMIUM, missing

    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    assert wait_kernels(tiny, 0, CONNECT + 10) == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[*ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            context = browser.new_context()
            context.route(re.compile(r"^https://"), lambda route: route.abort())  # Voilà's CDN icons
            page = context.new_page()
            response = page.goto(f"http://evil.example:{tiny.port}/voila/render/t.ipynb?token={TOKEN}")
            assert response is not None and response.status == 403
            assert len(tiny.kernels()) == 0
            page.goto(f"http://127.0.0.1:{tiny.port}/voila/render/t.ipynb?token={TOKEN}")
            page.wait_for_selector(".widget-button", timeout=60_000)  # the widget is live: websocket open
            time.sleep(GRACE + 1)
            assert len(tiny.kernels()) == 1  # an open tab keeps its kernel past the grace
            page.goto("about:blank")  # the tab leaves the page: its websocket closes
            assert wait_kernels(tiny, 0, GRACE + 10) == 0
            assert "403 POST /voila/api/shutdown" not in tiny.log.read_text()  # the page's own call has its _xsrf
        finally:
            browser.close()
