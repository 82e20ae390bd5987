"""The Voilà server ``workbench serve`` runs: Voilà 0.5's app with the guards a long-running, shared server needs.

``python -m workbench.loop.serve_app FOLDER [--Class.trait=value ...]`` (or :func:`run` in-process, which is
what ``workbench serve`` does). No preheated kernels: a preheated page shows the store as it was when its
kernel started. On top of Voilà:

- every request's ``Host``, and every websocket's ``Origin``, is checked against :class:`HostAllowlist`
  before any handler runs (403 otherwise): DNS rebinding cannot reach the dashboards;
- a kernel websocket must speak the v1 kernel protocol (``v1.kernel.websocket.jupyter.org``, what Voilà's own
  page speaks): Voilà 0.5.13 reads every binary message it sends to a legacy client as a v1 one and loops,
  growing without bound, on the first one (a widget that sends binary buffers is enough);
- a kernel whose page is closed is stopped: at once when the page's own shutdown call gets through (Voilà
  0.5.13's page posts the ``_xsrf`` cookie, which Voilà never set: the page handler sets it), else
  ``close_grace`` seconds after its last websocket closed (a reconnecting page is back well within it), or
  ``connect_timeout`` seconds after its page was sent if it never connected (its scripts load first);
  kernels idle longer than ``MappingKernelManager.cull_idle_timeout`` are stopped even with a page open;
  at most ``max_kernels`` live at once (a 503 page says so);
- the token comes from the caller (``WORKBENCH_TOKEN`` / ``--token-file``), is removed from the environment
  the kernels inherit, and is hidden in every log line (``token=`` values too);
- the port is bound before anything else: a port in use is one line, before any URL is printed;
- TLS with ``certfile`` / ``keyfile``.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import getpass
import html
import logging
import os
import socket
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import tornado.web
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.netutil import bind_sockets
from traitlets import Float, Integer, List, Unicode, default
from traitlets.config import Config
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from ..errors import ValidationError, WorkbenchError
from .serve_guard import TOKEN_ENV, HostAllowlist, RedactingFilter, redact

__all__ = ["KERNEL_PROTOCOL", "WorkbenchKernelManager", "WorkbenchVoila", "bind", "main", "run"]

KERNEL_PROTOCOL = "v1.kernel.websocket.jupyter.org"
USER_ENV = "WORKBENCH_USER"


# ------------------------------------------------------------------------------------------------- kernels
@dataclass
class _Render:
    """The page request being rendered in this task: its kernel slot and the kernels it started."""

    task: asyncio.Task[Any] | None
    reserved: bool = True
    kernels: list[str] = field(default_factory=list)


_RENDER: contextvars.ContextVar[_Render | None] = contextvars.ContextVar("workbench_render", default=None)


class WorkbenchKernelManager(AsyncMappingKernelManager):
    """Voilà's kernel manager that stops a kernel once its page is gone and caps how many live at once."""

    close_grace = Float(15.0, config=True, help="Seconds a kernel lives after its page's last websocket closed.")
    connect_timeout = Float(120.0, config=True,
                            help="Seconds a rendered page has to open its websocket (its scripts load first).")
    max_kernels = Integer(8, config=True, help="Live kernels at most (one per open dashboard page).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._unwatched: dict[str, tuple[float, float]] = {}  # kernel id -> (since, seconds allowed)
        self._reserved = 0
        self._close_callback: PeriodicCallback | None = None

    # a page asks for a slot before its kernel starts, so two requests at once cannot both take the last one
    def try_reserve(self) -> bool:
        if len(self.list_kernel_ids()) + self._reserved >= self.max_kernels:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        self._reserved = max(0, self._reserved - 1)

    async def start_kernel(self, **kwargs: Any) -> str:  # type: ignore[override]
        kernel_id: str = await super().start_kernel(**kwargs)
        render = _RENDER.get()
        if render is not None and render.task is asyncio.current_task():
            render.kernels.append(kernel_id)
            if render.reserved:
                render.reserved = False
                self.release()
        return kernel_id

    def page_rendered(self, kernel_id: str) -> None:
        """The page of ``kernel_id`` is sent: from now on, no websocket for ``connect_timeout`` s stops it."""
        if kernel_id in self and not self._kernel_connections.get(kernel_id, 0):
            self._unwatched[kernel_id] = (time.monotonic(), self.connect_timeout)

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._unwatched.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        if kernel_id in self and not self._kernel_connections.get(kernel_id, 0):
            self._unwatched[kernel_id] = (time.monotonic(), self.close_grace)

    async def shutdown_kernel(self, kernel_id: str, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
        self._unwatched.pop(kernel_id, None)
        await super().shutdown_kernel(kernel_id, now=now, restart=restart)

    def initialize_culler(self) -> None:
        super().initialize_culler()
        if self._close_callback is None:
            every_ms = 1000 * max(0.25, min(self.close_grace / 3, self.connect_timeout / 3, 5.0))
            self._close_callback = PeriodicCallback(self.stop_closed_pages, every_ms)
            self._close_callback.start()

    async def stop_closed_pages(self) -> None:
        """Stop every kernel whose page closed ``close_grace`` seconds ago, or never connected in
        ``connect_timeout`` seconds."""
        now = time.monotonic()
        for kernel_id, (since, allowed) in list(self._unwatched.items()):
            if now - since < allowed:
                continue
            self._unwatched.pop(kernel_id, None)
            if kernel_id not in self or self._kernel_connections.get(kernel_id, 0):
                continue
            self.log.info("Stopping kernel %s: its page has had no connection for %.0f s", kernel_id, now - since)
            try:
                await self.shutdown_kernel(kernel_id)
            except Exception:  # one kernel that fails to stop must not stop the loop over the others
                self.log.exception("Could not stop kernel %s", kernel_id)


# ------------------------------------------------------------------------------------------------ handlers
class _PageHandler(TornadoVoilaHandler):
    """Voilà's page handler that takes a kernel slot first (503 page when none is free) and tells the kernel
    manager when the page is sent (its close countdown starts then, not while the notebook runs)."""

    @tornado.web.authenticated
    async def get(self, path: str | None = None) -> None:
        km = self.kernel_manager
        if isinstance(km, WorkbenchKernelManager) and not km.try_reserve():
            self.log.warning("Refused a page: all %d kernels are in use", km.max_kernels)
            self.set_status(503)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Retry-After", str(int(km.close_grace) + 1))
            self.finish(
                "<!doctype html><title>Workbench: server busy</title><h1>Workbench is busy</h1>"
                f"<p>{html.escape(str(km.max_kernels))} dashboards are open, the most this server runs at once. "
                f"Close a dashboard tab (its session ends within {html.escape(str(int(km.close_grace)))} s) "
                "or wait for an idle one to time out, then reload this page.</p>")
            return
        _drop_token_from_url(self.request)  # Voilà hands the URL to the kernel (QUERY_STRING, VOILA_REQUEST_URL)
        # Voilà's page posts the _xsrf cookie to /voila/api/shutdown/<kernel> when it closes; without the
        # cookie (Voilà never sets it) that post is refused (403) and the kernel waits for close_grace
        self.xsrf_token  # noqa: B018 - reading it sets the cookie
        render = _Render(task=asyncio.current_task())
        token = _RENDER.set(render)
        try:
            await super().get(path)
        finally:
            _RENDER.reset(token)
            if isinstance(km, WorkbenchKernelManager):
                if render.reserved:
                    km.release()
                for kernel_id in render.kernels:
                    km.page_rendered(kernel_id)


def _drop_token_from_url(request: HTTPServerRequest) -> None:
    """Remove ``token=`` from an authenticated request's URL, so that nothing after the login sees it."""
    if "token" not in request.query_arguments:
        return
    request.query_arguments.pop("token")
    request.arguments.pop("token", None)
    query = urlencode([(k, v) for k, values in request.query_arguments.items() for v in values])
    request.query = query
    request.uri = request.path + (f"?{query}" if query else "")


class _KernelSocketHandler(VoilaKernelWebsocketHandler):
    """Voilà's kernel websocket, v1 protocol only (see the module notes)."""

    async def get(self, kernel_id: str) -> None:  # type: ignore[override]
        offered = {p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
        if KERNEL_PROTOCOL not in offered:
            self.log.warning("Refused a kernel websocket without the %s protocol", KERNEL_PROTOCOL)
            self.set_status(400)
            self.finish(f"kernel websockets must use the {KERNEL_PROTOCOL} protocol")
            return
        await super().get(kernel_id)

    def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        if self.selected_subprotocol != KERNEL_PROTOCOL:
            self.close(1002, "v1 kernel protocol only")
            return
        super().on_message(message)


class _Refused(tornado.web.RequestHandler):
    """The answer to a request whose Host or Origin is not this server's: 403, plain text, nothing echoed."""

    def initialize(self, why: str) -> None:
        self.why = why

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"403: {self.why}\n")

    def check_xsrf_cookie(self) -> None:  # the refusal needs no cookie
        return None


class _GuardedApplication(tornado.web.Application):
    """A tornado application that refuses a foreign Host (every request) or Origin (websockets) before
    routing, and logs requests with the token hidden."""

    def __init__(self, *args: Any, allowlist: HostAllowlist, token: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowlist = allowlist
        self.token = token
        self.refused = 0

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        host = request.headers.get("Host")
        why = None
        if not self.allowlist.allows_host(host):
            why = "this server does not answer to that Host name (see workbench serve --allow-host)"
        elif request.headers.get("Upgrade", "").lower() == "websocket" and not self.allowlist.allows_origin(
            request.headers.get("Origin")
        ):
            why = "websockets from that Origin are refused"
        if why is None:
            return super().find_handler(request, **kwargs)
        self.refused += 1
        logging.getLogger("workbench.serve").warning(
            "Refused %s %s: Host %r, Origin %r", request.method, redact(request.path, self.token),
            (host or "")[:100], (request.headers.get("Origin") or "")[:100])
        return self.get_handler_delegate(request, _Refused, {"why": why})

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        request = handler.request
        logging.getLogger("workbench.serve").log(
            level, "%d %s %s (%s) %.2fms", status, request.method, redact(request.uri or "", self.token),
            request.remote_ip, 1000.0 * request.request_time())


# ---------------------------------------------------------------------------------------------------- app
class WorkbenchVoila(Voila):
    """Voilà's app with Workbench's guards; :func:`main` runs it on sockets bound beforehand."""

    name = "workbench-serve"
    allow_hosts = List(Unicode(), config=True, help="More Host names (name or name:port) to answer to.")
    certfile = Unicode("", config=True, help="TLS certificate (PEM).")
    keyfile = Unicode("", config=True, help="TLS private key (PEM).")
    show_token = Unicode("", config=False)

    sockets: list[socket.socket] = []

    @default("config_file_paths")
    def _no_config_files(self) -> list[str]:  # what is served depends on the flags alone, not on a cwd file
        return []

    def start(self) -> None:
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        settings = self.init_settings()
        token = self.identity_provider.token or None
        self.app = _GuardedApplication(
            allowlist=HostAllowlist(self.ip, self.port, tuple(self.allow_hosts)), token=token, **settings)
        self.app.settings.update(self.tornado_settings)
        swap = {VoilaKernelWebsocketHandler: _KernelSocketHandler, TornadoVoilaHandler: _PageHandler}
        handlers = [(h[0], swap.get(h[1], h[1]), *h[2:]) for h in self.init_handlers()]
        self.app.add_handlers(".*$", handlers)
        _hide_token_in_logs(token, self.log)
        ssl_options = None
        if self.certfile:
            ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_options.load_cert_chain(self.certfile, self.keyfile or None)
        server = HTTPServer(self.app, ssl_options=ssl_options, xheaders=False)
        server.add_sockets(self.sockets)
        self._say_where(token)
        self.ioloop = IOLoop.current()
        try:
            self.ioloop.start()
        except KeyboardInterrupt:
            self.log.info("Stopping...")
        finally:
            server.stop()
            self.stop()

    def _say_where(self, token: str | None) -> None:
        scheme = "https" if self.certfile else "http"
        host = socket.gethostname() if self.ip in ("", "0.0.0.0", "::") else self.ip
        host = f"[{host}]" if ":" in host else host
        base = f"{scheme}://{host}:{self.port}{self.base_url}"
        pages = sorted(p.name for p in Path(self.root_dir).glob("*.ipynb"))
        suffix = f"?token={self.show_token}" if self.show_token else ""
        urls = " and ".join(f"{base}voila/render/{name}{suffix}" for name in pages) or base
        how = " (token: generated, shown once)" if self.show_token else " (token required)" if token else ""
        print(f"dashboards at {urls}{how}", flush=True)


def _hide_token_in_logs(token: str | None, app_log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Every record this process logs goes through a handler that hides the token."""
    root = logging.getLogger()
    if not root.handlers:  # else tornado's warnings reach Python's last-resort handler, unfiltered
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setFormatter(logging.Formatter("[%(name)s] %(levelname)s | %(message)s"))
        root.addHandler(to_stderr)
    redacting = RedactingFilter(token)
    logger = app_log.logger if isinstance(app_log, logging.LoggerAdapter) else app_log
    for one in (root, logger, logging.getLogger("workbench.serve")):
        for handler in one.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
    logging.getLogger("workbench.serve").setLevel(logging.INFO)


def bind(ip: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``ip:port``; a port in use (or not ours to take) is a one-line error."""
    try:
        return bind_sockets(port, address=ip or None)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ValidationError(f"port {port} on {ip} is already in use; stop the other server or choose "
                                  "another port", field="--port") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ValidationError(f"not allowed to listen on port {port}", field="--port") from None
        raise ValidationError(f"cannot listen on {ip}:{port}: {e.strerror}", field="--ip") from None


def run(argv: list[str], *, token: str | None = None, show_token: bool = False,
        environ: dict[str, str] | None = None) -> None:
    """Run the server on ``argv`` (Voilà's and this app's traitlets) until SIGTERM / Ctrl-C. ``token``
    (else ``WORKBENCH_TOKEN``; removed from this process's environment either way, so kernels do not
    inherit it); ``show_token`` prints it once in the URLs (a generated token the user has no other way to
    learn); ``environ`` is added to this process's environment (the kernels inherit it). Bad flags, a
    missing TLS file or a port in use raise ValidationError before anything listens."""
    os.environ.update(environ or {})
    from_env = os.environ.pop(TOKEN_ENV, None)
    token = token if token is not None else from_env
    if USER_ENV not in os.environ:
        try:
            os.environ[USER_ENV] = getpass.getuser()
        except (OSError, KeyError):  # no login name (a container without a passwd entry): the kernels say so
            os.environ[USER_ENV] = "unknown"
    config = Config()
    config.VoilaConfiguration.multi_kernel_manager_class = WorkbenchKernelManager
    if token:
        config.Voila.token = token
    app = WorkbenchVoila(config=config)
    app.initialize(list(argv))
    if (app.certfile or app.keyfile) and not (app.certfile and app.keyfile):
        raise ValidationError("TLS needs both --certfile and --keyfile", field="--certfile")
    for path, flag in ((app.certfile, "--certfile"), (app.keyfile, "--keyfile")):
        if path and not Path(path).is_file():
            raise ValidationError("no such file", file=path, field=flag)
    HostAllowlist(app.ip, app.port, tuple(app.allow_hosts))  # a bad --allow-host is refused before binding
    app.sockets = bind(app.ip, app.port)
    app.show_token = token if (show_token and token) else ""
    app.start()


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.loop.serve_app``: :func:`run` with one-line errors (exit status 2)."""
    try:
        run(list(sys.argv[1:] if argv is None else argv))
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
