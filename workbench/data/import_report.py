"""What an import did besides adding examples: everything skipped, clipped or kept only in attributes.

Every format reader fills one :class:`ImportReport` (``ImportBatch.report``) as it reads, so nothing a
reader drops or changes goes unsaid; the import summary prints :meth:`ImportReport.lines`.

    report.skip("image file not found (--skip-missing)")         # an item or annotation left out
    report.clip("box outside the image (--clip-boxes)")           # geometry changed to fit the image
    report.keep("keypoints", 12)                                  # source data kept only in attributes
    report.note("classes taken from obj.names")                   # anything else worth saying

Reasons are short, human-readable phrases; the same reason given twice adds up. The counters are plain
``collections.Counter`` objects, so readers can also ``report.skipped[reason] += n``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ImportReport"]


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("an import report reason must be a non-empty string")
    return reason.strip()


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"an import report count must be a non-negative integer, got {n!r}")
    return n


@dataclass
class ImportReport:
    """Counters per reason, and free-form notes, for one import."""

    skipped: Counter[str] = field(default_factory=Counter)
    clipped: Counter[str] = field(default_factory=Counter)
    kept_in_attributes: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        """``n`` items or annotations of the source were left out, for ``reason``."""
        if _count(n):
            self.skipped[_reason(reason)] += n

    def clip(self, reason: str, n: int = 1) -> None:
        """``n`` annotations were changed to fit the image, for ``reason``."""
        if _count(n):
            self.clipped[_reason(reason)] += n

    def keep(self, reason: str, n: int = 1) -> None:
        """``n`` annotations carry source data our records have no field for (``reason`` names it: keypoints,
        an extra COCO field...): it is kept in their ``attributes`` and written back on export."""
        if _count(n):
            self.kept_in_attributes[_reason(reason)] += n

    def note(self, text: str) -> None:
        """Anything else the user should read (each distinct note is kept once)."""
        text = _reason(text)
        if text not in self.notes:
            self.notes.append(text)

    def merge(self, other: ImportReport) -> ImportReport:
        """Add ``other``'s counts and notes to this report (several sources in one import); returns self."""
        self.skipped.update(other.skipped)
        self.clipped.update(other.clipped)
        self.kept_in_attributes.update(other.kept_in_attributes)
        for n in other.notes:
            self.note(n)
        return self

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def total_clipped(self) -> int:
        return sum(self.clipped.values())

    @property
    def total_kept(self) -> int:
        return sum(self.kept_in_attributes.values())

    def __bool__(self) -> bool:
        return bool(self.skipped or self.clipped or self.kept_in_attributes or self.notes)

    def lines(self) -> list[str]:
        """One line per reason and note, for the import summary (empty when there is nothing to say)."""
        out: list[str] = []
        for what, counter in (("skipped", self.skipped), ("clipped", self.clipped),
                              ("kept in attributes", self.kept_in_attributes)):
            for reason, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"{what}: {n} ({reason})")
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"skipped": dict(self.skipped), "clipped": dict(self.clipped),
                "kept_in_attributes": dict(self.kept_in_attributes), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImportReport:
        return cls(Counter(d.get("skipped", {})), Counter(d.get("clipped", {})),
                   Counter(d.get("kept_in_attributes", {})), list(d.get("notes", [])))
