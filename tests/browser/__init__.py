"""What every real-browser test shares (see /work/shared/BROWSER.md for the measured facts behind it).

Debian's Chromium with the flags that work on these machines (Playwright's own browser download does not),
local servers (Voilà, JupyterLab) started on a free 127.0.0.1 port and stopped by PID, pages that can reach
nothing but that server, screenshots and timings kept as test artifacts.

The dashboard and Lab tests live in this package; ``tests/widgets/test_*_browser.py`` use ``voila_page``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# every URL but the local servers': the page may not reach outside (Voilà asks a CDN for icons)
OUTSIDE = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost)[:/])")
WAIT_MS = 90_000  # expect / wait_for_function timeout: first renders take 10-20 s on 2 busy cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> Path:
    """An executable installed next to this Python (voila, jupyter-lab)."""
    return Path(sys.executable).with_name(name)


def missing(*executables: str) -> str | None:
    """Why browser tests cannot run here (None when they can): no Chromium, Playwright or a server."""
    if CHROMIUM is None:
        return "needs Chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package"
    for name in executables:
        if not venv_bin(name).exists():
            return f"needs {name} next to {sys.executable}"
    return None


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server and its kernels: this checkout importable, few threads."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------- servers
class Server:
    """A server process on ``127.0.0.1:port`` whose output goes to ``log``; ``stop()`` ends it by PID."""

    def __init__(
        self, cmd: Sequence[str], *, port: int, log: Path, env: dict[str, str], cwd: Path | None = None
    ) -> None:
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}/"
        self.started = time.monotonic()
        with open(log, "w") as out:
            self.process = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_listening(self, timeout_s: float = 90.0) -> float:
        """Wait until the port accepts connections; seconds since start. Fails early if the process exits."""
        deadline = self.started + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}; log {self.log}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.monotonic() - self.started
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"server not listening after {timeout_s} s; log {self.log}:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; the kernels it started go with it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def serve(
    cmd: Sequence[str],
    *,
    port: int,
    log: Path,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout_s: float = 90.0,
) -> Iterator[Server]:
    server = Server(cmd, port=port, log=log, env=env, cwd=cwd)
    try:
        server.wait_listening(timeout_s)
        yield server
    finally:
        server.stop()


def dashboards_command(port: int) -> list[str]:
    """``workbench serve``'s Voilà command line (the dashboards folder, preheated kernels) with tracebacks
    shown, one preheated kernel per notebook and no refill (a refill re-runs the notebook in the background
    and would skew the timings), and no preheat for the review dashboard (it lists runs made later)."""
    from workbench.loop.serve import serve_command

    cmd = serve_command(port=port, preheat=True)
    cmd = [c for c in cmd if not c.startswith("--show_tracebacks")]
    return [
        *cmd,
        "--show_tracebacks=True",
        "--VoilaKernelManager.fill_delay=86400",
        "--VoilaKernelManager.preheat_denylist=['review.ipynb']",
    ]


LAB_SETTINGS = {  # private JupyterLab settings: no news / update toast, every cell attached to the page
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def lab_command(port: int, root: Path) -> list[str]:
    """JupyterLab on 127.0.0.1 without a token (nothing else can reach these machines), serving ``root``,
    with ``window.jupyterapp`` exposed so a test can wait for the kernel and run commands."""
    cmd = [
        str(venv_bin("jupyter-lab")),
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def lab_env(base: Path, **extra: str) -> dict[str, str]:
    """``server_env`` with JupyterLab's settings, workspaces and config kept under ``base``."""
    settings = base / "lab-settings"
    for rel, value in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    (base / "lab-workspaces").mkdir(parents=True, exist_ok=True)
    (base / "jupyter-config").mkdir(parents=True, exist_ok=True)
    return server_env(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "lab-workspaces"),
        JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
        **extra,
    )


# ---------------------------------------------------------------------------------------------- pages
def new_context(browser: Any, viewport: dict[str, int]) -> Any:
    """A browser context whose pages reach only 127.0.0.1; ``page_errors(context)`` lists the uncaught
    errors its pages threw (a widget that failed to initialise, for one)."""
    context = browser.new_context(viewport=viewport)
    context.route(OUTSIDE, lambda route: route.abort())
    errors: list[str] = []
    _PAGE_ERRORS[id(context)] = errors
    context.on("weberror", lambda e: errors.append(str(e.error)))
    return context


_PAGE_ERRORS: dict[int, list[str]] = {}


def page_errors(context: Any) -> list[str]:
    return _PAGE_ERRORS.get(id(context), [])


@contextmanager
def chromium() -> Iterator[Any]:
    """Playwright's headless Chromium (Debian's binary); closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def voila_page(notebook: Path, *, viewport: dict, start_timeout_s: float, goto_timeout_ms: int) -> Iterator:
    """Serve ``notebook`` with Voilà on 127.0.0.1, open it in headless Chromium (outside requests blocked),
    yield the page; the server is stopped by PID (SIGTERM, then kill) and its log kept next to the notebook."""
    from playwright.sync_api import Error

    port = free_port()
    cmd = [
        str(venv_bin("voila")),
        notebook.name,
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
    ]
    with (
        serve(
            cmd,
            port=port,
            log=notebook.with_suffix(".voila.log"),
            env=server_env(),
            cwd=notebook.parent,
            timeout_s=start_timeout_s,
        ) as server,
        chromium() as browser,
    ):
        page = new_context(browser, viewport).new_page()
        deadline = time.monotonic() + start_timeout_s
        while True:  # single-notebook Voilà renders on "/": the first request runs the notebook
            try:
                page.goto(server.url, timeout=goto_timeout_ms)
                break
            except Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield page


# ---------------------------------------------------------------------------------------------- canvas
def canvas_pixels(
    page: Any, points: Sequence[tuple[float, float]], selector: str = "canvas.wb-canvas"
) -> list:
    """RGBA of the ``<canvas>`` at canvas-pixel ``points``."""
    return page.evaluate(
        """([sel, pts]) => { const ctx = document.querySelector(sel).getContext('2d');
             return pts.map(([x, y]) => Array.from(ctx.getImageData(Math.floor(x), Math.floor(y), 1, 1).data)); }""",
        [selector, [list(p) for p in points]],
    )


# Error outputs render as stderr text in Voilà and Lab; a traceback names an exception class.
_ERRORS_JS = """[...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.textContent).filter(t => /\\b\\w*(Error|Exception)\\b/.test(t))"""


def wait_js(page: Any, predicate: str, arg: Any = None, timeout_ms: int = WAIT_MS) -> None:
    """Wait until the JS function ``predicate(arg)`` is truthy; fail at once, with the traceback, when the
    page shows an error output instead (a notebook cell raised)."""
    js = (
        f"arg => {{ const errors = {_ERRORS_JS}; if (errors.length) return {{error: errors.join('\\n')}};"
        f" return ({predicate})(arg) ? {{ok: true}} : false; }}"
    )
    result = page.wait_for_function(js, arg=arg, timeout=timeout_ms).json_value()
    if "error" in result:
        raise AssertionError("the notebook raised an error:\n" + result["error"][-4000:])


def wait_canvas_drawn(page: Any, selector: str = "canvas.wb-canvas", timeout_ms: int = WAIT_MS) -> None:
    """Until the canvas holds opaque pixels (Voilà shows a blank canvas when the widget does not redraw on
    client ready)."""
    wait_js(
        page,
        """sel => { const c = document.querySelector(sel); if (!c || !c.width) return false;
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < d.length; i += 4 * 97) if (d[i] > 0) n++;
             return n > d.length / (4 * 97) / 4; }""",
        selector,
        timeout_ms,
    )


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.005,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` (e.g. a store read) until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


# ---------------------------------------------------------------------------------------------- artifacts
def artifacts_dir() -> Path:
    """``$WORKBENCH_TEST_ARTIFACTS`` or ``test-artifacts/browser/`` at the repo root (gitignored)."""
    d = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS") or REPO / "test-artifacts" / "browser")
    d.mkdir(parents=True, exist_ok=True)
    return d


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class Timings:
    """Figures the browser tests measure, written to ``timings.json`` and printed at the end of the
    session (``conftest.py``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def record(
        self, name: str, seconds: float | Sequence[float], *, goal_s: float | None = None, note: str = ""
    ) -> dict[str, Any]:
        if isinstance(seconds, int | float):
            row: dict[str, Any] = {"n": 1, "value_s": round(float(seconds), 4)}
        else:
            values = sorted(float(s) for s in seconds)
            row = {
                "n": len(values),
                "p50_s": round(_percentile(values, 50), 4),
                "p95_s": round(_percentile(values, 95), 4),
                "max_s": round(values[-1], 4),
                "samples_s": [round(v, 4) for v in seconds],
            }
        if goal_s is not None:
            row["goal_s"] = goal_s
        if note:
            row["note"] = note
        self.rows[name] = row
        return row

    def write(self, path: Path) -> None:
        load = os.getloadavg() if hasattr(os, "getloadavg") else None  # the figures depend on it
        path.write_text(
            json.dumps({"cpus": os.cpu_count(), "loadavg": load, "timings": self.rows}, indent=2) + "\n"
        )

    def table(self) -> list[str]:
        lines = [f"{'measure':<60} {'n':>3} {'p50 / value':>12} {'p95':>8} {'goal':>8}"]
        for name, r in self.rows.items():
            main = r.get("p50_s", r.get("value_s"))
            p95 = f"{r['p95_s']:.3f}" if "p95_s" in r else ""
            goal = f"{r['goal_s']:.3f}" if "goal_s" in r else ""
            lines.append(f"{name:<60} {r['n']:>3} {main:>12.3f} {p95:>8} {goal:>8}")
        return lines


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (numpy's default method)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


TIMINGS = Timings()
