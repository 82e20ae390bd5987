"""What an import did, said every time: examples, annotations per kind, classes, splits, and every count the
reader kept of what it skipped, clipped or kept only in attributes.

``import_source`` returns an :class:`ImportResult`: it unpacks as ``(dataset, ids)`` and carries the
:class:`ImportSummary` (``result.summary``), which a notebook shows as text and ``--json`` prints whole.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .import_report import ImportReport
from .records import SPLITS, ImportBatch
from .store import SPLIT_COUNTS_OF, in_chunks

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["ImportSummary", "ImportResult", "summarize"]


@dataclass
class ImportSummary:
    dataset: str
    dataset_type: str
    source: str
    format: str
    examples: int
    annotations: dict[str, int]  # kind -> count
    classes: int  # in the dataset after the import
    new_classes: list[str]
    splits: dict[str, int]  # the imported examples per split
    splits_from: dict[str, int]  # how many got their split from the source / --split ("given"), by hash ("drawn")
    total: int  # examples in the dataset after the import
    report: dict[str, Any] = field(default_factory=dict)  # ImportReport.to_dict(): skipped, clipped, kept, notes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The summary as short lines of text (what the CLI prints)."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.annotations.items())) or "none"
        split_text = " / ".join(f"{s} {self.splits.get(s, 0)}" for s in SPLITS)
        given, drawn = self.splits_from.get("given", 0), self.splits_from.get("drawn", 0)
        how = "given by the source" if not drawn else "drawn by hash" if not given else \
            f"{given} given by the source, {drawn} drawn by hash"
        out = [
            f"imported {self.examples} examples into '{self.dataset}' ({self.dataset_type}); it now has {self.total}",
            f"  annotations: {kinds}",
            f"  classes: {self.classes}" + (f" (new: {', '.join(self.new_classes)})" if self.new_classes else ""),
            f"  splits: {split_text} ({how})",
        ]
        out.extend(f"  {line}" for line in ImportReport.from_dict(self.report).lines())
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython shows the text, not the dataclass
        p.text(str(self))


class ImportResult(tuple):  # type: ignore[type-arg]
    """``(dataset, ids)`` as before, with the :class:`ImportSummary` as ``.summary``."""

    summary: ImportSummary

    def __new__(cls, dataset: Dataset, ids: list[int], summary: ImportSummary) -> ImportResult:
        self = super().__new__(cls, (dataset, ids))
        self.summary = summary
        return self

    @property
    def dataset(self) -> Dataset:
        return self[0]  # type: ignore[no-any-return]

    @property
    def ids(self) -> list[int]:
        return self[1]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return str(self.summary)


def summarize(ds: Dataset, batch: ImportBatch, ids: list[int], *, fmt: str, source: str,
              classes_before: set[str]) -> ImportSummary:
    """The summary of ``batch`` having been imported into ``ds`` as examples ``ids``."""
    kinds = Counter(a.kind for it in batch.items for a in it.annotations)
    splits = dict.fromkeys(SPLITS, 0)
    for split, n in in_chunks(ds.conn, SPLIT_COUNTS_OF, ids):
        splits[split] = splits.get(split, 0) + n
    given = sum(1 for it in batch.items if it.split is not None)
    names = [c.name for c in ds.classes]
    report = batch.report.to_dict()
    report["notes"] = [*report.get("notes", []), *ds.split_notes]
    return ImportSummary(
        dataset=ds.name, dataset_type=ds.type, source=source, format=fmt, examples=len(ids),
        annotations=dict(sorted(kinds.items())), classes=len(names),
        new_classes=[n for n in names if n not in classes_before], splits=splits,
        splits_from={"given": given, "drawn": len(batch.items) - given}, total=ds.count(),
        report=report)
