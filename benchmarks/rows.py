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

from workbench.errors import ValidationError

__all__ = ["Row", "target_row", "write_rows", "read_rows", "table"]

_COMPARE = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


def _is_goal(goal: object) -> bool:
    parts = goal.split() if isinstance(goal, str) else []
    if len(parts) != 2 or parts[0] not in _COMPARE:
        return False
    try:
        float(parts[1])
    except ValueError:
        return False
    return True


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

    def __post_init__(self) -> None:
        for field in ("name", "figure", "reference", "note"):
            if not isinstance(getattr(self, field), str):
                raise ValidationError(
                    f"must be text, got {getattr(self, field)!r}", record=self.name, field=field
                )
        if self.ratio is not None and (
            isinstance(self.ratio, bool) or not isinstance(self.ratio, int | float)
        ):
            raise ValidationError(
                f"must be a number or null, got {self.ratio!r}", record=self.name, field="ratio"
            )
        if self.goal is not None and not _is_goal(self.goal):
            raise ValidationError(
                f"must be '<op> <number>' with op one of {' '.join(_COMPARE)}, or null; got {self.goal!r}",
                record=self.name,
                field="goal",
            )

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.ratio is None:
            return None
        op, value = self.goal.split()
        return bool(_COMPARE[op](round(self.ratio, 3), float(value)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def target_row(name: str, value_ms: float, target_ms: float, shown: str, note: str = "") -> Row:
    """A time against a fixed target rather than a reference run (``ratio`` = value / target, goal ``<= 1``)."""
    return Row(name, shown, f"target < {round(target_ms, 1):g} ms", value_ms / target_ms, "<= 1", note)


def write_rows(path: str | Path, rows: list[Row]) -> None:
    Path(path).write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


def read_rows(path: str | Path) -> list[Row]:
    """The rows :func:`write_rows` wrote. Raises ``OSError`` when the file cannot be read and
    ``ValidationError`` (naming the file, the row and the field) when it does not hold rows."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not JSON ({exc})", file=str(path)) from None
    if not isinstance(data, list):
        raise ValidationError(f"expected a list of rows, got {type(data).__name__}", file=str(path))
    rows = []
    for i, d in enumerate(data):
        if not isinstance(d, dict):
            raise ValidationError(f"expected an object, got {type(d).__name__}", file=str(path), record=i)
        for field in ("name", "figure", "reference", "ratio"):
            if field not in d:
                raise ValidationError("missing", file=str(path), record=d.get("name", i), field=field)
        try:
            rows.append(
                Row(d["name"], d["figure"], d["reference"], d["ratio"], d.get("goal"), d.get("note", ""))
            )
        except ValidationError as exc:
            raise exc.located(file=str(path)) from None
    return rows


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
