"""What every CLI command module shares: the workspace of the invocation and a plain-text table.

Below the commands (``workbench.cli`` and the layers' own ``cli`` modules import it), above the data layer,
which it imports only when a command runs (``workbench --help`` stays light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .text import echo, terminal_safe

if TYPE_CHECKING:
    from .data import Workspace

__all__ = ["workspace", "table"]


def workspace(ctx: click.Context) -> Workspace:
    """The invocation's workspace (``--home`` / ``$WORKBENCH_HOME``), opened once and closed with the command."""
    from .data import Workspace

    obj = ctx.find_root().obj
    if obj.get("ws") is None:
        obj["ws"] = Workspace(obj.get("home"))
        ctx.find_root().call_on_close(obj["ws"].close)
    ws: Workspace = obj["ws"]
    return ws


def table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    """``rows`` as aligned columns ``cols``; stored text is made terminal-safe (no escape sequence acts)."""
    if not rows:
        return
    shown = [{c: terminal_safe(r.get(c, "")) for c in cols} for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in shown)) for c in cols}
    echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in shown:
        echo("  ".join(r[c].ljust(widths[c]) for c in cols))
