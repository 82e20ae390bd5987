"""What every real-browser test shares: Debian's Chromium and the flags that work on these machines
(../shared/BROWSER.md): Playwright's own browser download does not work here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def voila_page(notebook: Path, *, viewport: dict, start_timeout_s: float, goto_timeout_ms: int) -> Iterator:
    """Serve ``notebook`` with Voilà on 127.0.0.1, open it in headless Chromium (outside requests blocked),
    yield the page; the server is stopped by PID (SIGTERM, then kill) and its log kept next to the notebook."""
    from playwright.sync_api import Error, sync_playwright

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    port = free_port()
    with open(notebook.with_suffix(".voila.log"), "w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("voila")), notebook.name, "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"],
            cwd=notebook.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page(viewport=viewport)
                page.route("https://**", lambda route: route.abort())
                deadline = time.monotonic() + start_timeout_s
                while True:  # until the server listens
                    try:
                        page.goto(f"http://127.0.0.1:{port}/", timeout=goto_timeout_ms)
                        break
                    except Error:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                yield page
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
