"""The result rows the benchmarks share: one line per figure, against a reference measured in the same run.

Each ``bench_*.py`` that takes ``--json OUT`` writes a list of these rows; ``run_all.py`` collects them into
one table. ``ratio`` is ``figure / reference`` for times (lower is better, goal ``<=``) and the other way
round for throughputs and speed-ups (higher is better, goal ``>=``), as each row's ``goal`` says.
"""

from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Row", "write_rows", "read_rows", "table"]

_COMPARE = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass
class Row:
    """``name``: what was measured; ``figure`` / ``reference``: readable values with units; ``ratio`` and
    ``goal`` (``"<= 1.5"``, ``">= 0.95"``, ``"== 1"``; None: reported, no goal) decide ``met``."""

    name: str
    figure: str
    reference: str
    ratio: float | None
    goal: str | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.ratio is None:
            return None
        op, value = self.goal.split()
        return bool(_COMPARE[op](round(self.ratio, 3), float(value)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def write_rows(path: str | Path, rows: list[Row]) -> None:
    Path(path).write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


def read_rows(path: str | Path) -> list[Row]:
    return [
        Row(d["name"], d["figure"], d["reference"], d["ratio"], d.get("goal"), d.get("note", ""))
        for d in json.loads(Path(path).read_text())
    ]


def table(rows: list[Row], *, markdown: bool = False) -> str:
    """The rows as a fixed-width text table, or a Markdown table (for the README)."""
    head = ["what", "figure", "reference", "ratio", "goal", "met?"]
    body = [
        [
            r.name,
            r.figure,
            r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.goal or "",
            {True: "yes", False: "NO", None: "-"}[r.met],
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*b) for b in body]
    )
