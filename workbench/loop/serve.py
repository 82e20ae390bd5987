"""``workbench serve``: the annotate and review dashboards with Voilà.

Only the dashboards folder is served (Voilà's root is that folder, not the file system), on 127.0.0.1 by
default. Listening on any other address needs ``allow_remote`` and a token: a workspace holds weeks of
annotation work.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
from pathlib import Path

from ..errors import ValidationError

__all__ = ["dashboards_dir", "serve_command", "serve"]


def dashboards_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "dashboards", here / "dashboards"):
        if (cand / "annotate.ipynb").is_file():
            return cand
    raise ValidationError(f"the Workbench dashboards are not next to the package ({here.parent / 'dashboards'})")


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        raise ValidationError(f"not an IP address: {ip!r}", field="ip") from None


def serve_command(*, port: int = 8866, ip: str = "127.0.0.1", token: str | None = None,
                  allow_remote: bool = False, preheat: bool = True) -> tuple[list[str], str | None]:
    """The Voilà command line (and the token it uses, if any)."""
    if not 0 < port < 65536:
        raise ValidationError(f"port must be 1-65535, got {port}", field="port")
    remote = not _is_loopback(ip)
    if remote and not allow_remote:
        raise ValidationError(
            f"refusing to listen on {ip}: other machines could reach the dashboards; pass --allow-remote "
            "(a token is then required)", field="ip")
    if remote and not token:
        token = secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "voila", str(dashboards_dir()), "--no-browser", f"--port={port}",
           f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--Voila.root_dir={dashboards_dir()}",
           "--show_tracebacks=False", "--strip_sources=True"]
    if preheat:
        cmd.append("--preheat_kernel=True")
    if token:
        cmd.append(f"--token={token}")
    return cmd, token


def serve(*, port: int = 8866, ip: str = "127.0.0.1", token: str | None = None, allow_remote: bool = False,
          home: str | Path | None = None) -> int:
    cmd, token = serve_command(port=port, ip=ip, token=token, allow_remote=allow_remote)
    from ..data.workspace import default_home

    env = dict(os.environ)
    # Always absolute: the dashboards' kernels run in the dashboards folder, where a relative (or the default)
    # workspace would be created inside the package, and listed by the server.
    env["WORKBENCH_HOME"] = str(Path(home if home is not None else default_home()).resolve())
    url = f"http://{ip}:{port}/"
    print(f"dashboards at {url}voila/render/annotate.ipynb and {url}voila/render/review.ipynb"
          + (f" (token: {token})" if token else ""), flush=True)
    return subprocess.call(cmd, env=env)
