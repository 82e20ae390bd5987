"""``workbench serve``: the annotate and review dashboards with Voilà, safe to leave running for a team.

Only the dashboards folder is served (Voilà's root is that folder, not the file system), on 127.0.0.1 by
default. Listening on any other address needs ``allow_remote`` and a token (a workspace holds weeks of
annotation work); the token comes from ``WORKBENCH_TOKEN`` or ``--token-file``, never from the command line.
The server itself is :mod:`workbench.loop.serve_app` (Voilà with Host / Origin checks, v1-only kernel
websockets, kernels stopped when their page closes or idles, a cap on live kernels, a token-free log), run
in this process. Kernels get ``WORKBENCH_HOME`` (absolute) and ``WORKBENCH_USER`` (``--user``, default the
login name: the author of every edit made from the dashboards).
"""

from __future__ import annotations

import getpass
import secrets
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from ..errors import ValidationError
from .assets import asset_dir
from .serve_guard import HostAllowlist, is_loopback, read_token

__all__ = ["MAX_USER_CHARS", "check_user", "dashboards_dir", "serve", "serve_command"]

MAX_USER_CHARS = 64


def dashboards_dir() -> Path:
    """The dashboards Voilà serves (``workbench/dashboards`` inside the package)."""
    return asset_dir("dashboards")


def check_user(name: str) -> str:
    """``name`` as the author of edits: 1-64 characters, no control, format (bidi) or line characters."""
    name = name.strip()
    if not name or len(name) > MAX_USER_CHARS:
        raise ValidationError(f"a user name has 1 to {MAX_USER_CHARS} characters, got {len(name)}", field="--user")
    bad = [c for c in name if unicodedata.category(c)[0] in "CZ" and c != " "]
    if bad:
        raise ValidationError(f"the user name holds a control, format or separator character ({ascii(bad[0])})",
                              field="--user")
    return name


def serve_command(*, port: int = 8866, ip: str = "127.0.0.1", allow_remote: bool = False,
                  allow_hosts: Sequence[str] = (), max_kernels: int = 8, idle_timeout: int = 3600,
                  close_grace: float = 15.0, connect_timeout: float = 120.0, certfile: str | Path | None = None, keyfile: str | Path | None = None,
                  preheat: bool = False, root: str | Path | None = None) -> list[str]:
    """The command line of the server (``python -m workbench.loop.serve_app ...``), with no token on it.

    ``preheat`` is for the browser tests' timings only: ``workbench serve`` never preheats (a preheated page
    shows the store as it was when its kernel started: a finished run or a new dataset missing).
    ``root`` serves another folder than the dashboards (tests)."""
    if not 0 < port < 65536:
        raise ValidationError(f"port must be 1-65535, got {port}", field="--port")
    remote = not is_loopback(ip)
    if remote and not allow_remote:
        raise ValidationError(
            f"refusing to listen on {ip}: other machines could reach the dashboards; pass --allow-remote "
            "(a token is then required)", field="--ip")
    if max_kernels < 1:
        raise ValidationError(f"must be at least 1, got {max_kernels}", field="--max-kernels")
    if idle_timeout < 10:
        raise ValidationError(f"must be at least 10 seconds, got {idle_timeout}", field="--idle-timeout")
    if bool(certfile) != bool(keyfile):
        raise ValidationError("TLS needs both --certfile and --keyfile", field="--certfile" if keyfile else "--keyfile")
    HostAllowlist(ip, port, tuple(allow_hosts))  # a malformed --allow-host fails here, with its flag
    folder = Path(root) if root is not None else dashboards_dir()
    cmd = [sys.executable, "-m", "workbench.loop.serve_app", str(folder), "--no-browser", f"--port={port}",
           f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--Voila.root_dir={folder}",
           "--show_tracebacks=False", "--strip_sources=True",
           f"--WorkbenchKernelManager.max_kernels={max_kernels}",
           f"--WorkbenchKernelManager.close_grace={close_grace}",
           f"--WorkbenchKernelManager.connect_timeout={connect_timeout}",
           f"--MappingKernelManager.cull_idle_timeout={idle_timeout}",
           f"--MappingKernelManager.cull_interval={max(1, min(60, idle_timeout // 4))}",
           "--MappingKernelManager.cull_connected=True"]
    for host in allow_hosts:
        cmd.append(f"--WorkbenchVoila.allow_hosts={host}")
    if certfile and keyfile:
        cmd += [f"--WorkbenchVoila.certfile={Path(certfile).resolve()}",
                f"--WorkbenchVoila.keyfile={Path(keyfile).resolve()}"]
    if preheat:
        cmd.append("--preheat_kernel=True")
    return cmd


def serve(*, port: int = 8866, ip: str = "127.0.0.1", allow_remote: bool = False, token_file: str | Path | None = None,
          allow_hosts: Sequence[str] = (), user: str | None = None, max_kernels: int = 8, idle_timeout: int = 3600,
          certfile: str | Path | None = None, keyfile: str | Path | None = None,
          home: str | Path | None = None) -> int:
    """Serve the dashboards until stopped (SIGTERM / Ctrl-C). Everything is checked before the port is
    bound, and a port in use is refused before any URL is printed (ValidationError, one line in the CLI)."""
    cmd = serve_command(port=port, ip=ip, allow_remote=allow_remote, allow_hosts=allow_hosts,
                        max_kernels=max_kernels, idle_timeout=idle_timeout, certfile=certfile, keyfile=keyfile)
    token = read_token(token_file)
    remote = not is_loopback(ip)
    generated = remote and token is None
    if generated:
        token = secrets.token_urlsafe(24)
    if remote and not certfile:
        print("warning: serving without TLS: the token and every page cross the network in clear "
              "(give --certfile and --keyfile)", file=sys.stderr, flush=True)
    if user is None:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            raise ValidationError("cannot tell the login name; give one", field="--user") from None
    from ..data.workspace import default_home

    # Always absolute: the dashboards' kernels run in the dashboards folder, where a relative (or the default)
    # workspace would be created inside the package, and listed by the server.
    env = {"WORKBENCH_HOME": str(Path(home if home is not None else default_home()).resolve()),
           "WORKBENCH_USER": check_user(user)}
    from . import serve_app

    serve_app.run(cmd[3:], token=token, show_token=generated, environ=env)
    return 0
