"""``stats`` for a dataset or directory, counted in SQL so it answers quickly on large datasets
(100,000 examples / 1,000,000 boxes). The rules (thresholds, warning codes) live in :mod:`.quality`;
this module only gathers the numbers they judge."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from .duplicates import near_duplicates as find_duplicates
from .quality import box_stats_from_arrays, build_report
from .records import SPLITS, Example

if TYPE_CHECKING:
    from .dataset import Dataset

__all__ = ["dataset_stats"]

_LABEL_TYPES = ("classification", "anomaly")


def dataset_stats(ds: Dataset, *, directory: str | None = None, near_duplicates: bool = True,
                  use_cache: bool = True) -> dict[str, Any]:
    """Counts per split and per class per split, balance warnings, box sizes, duplicates, unannotated.

    JSON-ready: ``examples``, ``annotations``, ``splits``, ``classes``, ``warnings`` and the rest of
    :class:`~workbench.data.quality.QualityReport`'s fields. The result is cached against the dataset's
    change counter, so asking again before anything changed costs one small read.
    """
    key = json.dumps([directory, near_duplicates])
    if use_cache:
        row = ds.conn.execute(
            "SELECT s.payload FROM stats_cache s JOIN datasets d ON d.id = s.dataset_id "
            "WHERE s.dataset_id=? AND s.key=? AND s.version = d.version", (ds.id, key)).fetchone()
        if row is not None:
            return json.loads(row[0])
    out = _compute(ds, directory, near_duplicates)
    if use_cache:
        with ds._tx():
            ds.conn.execute("INSERT OR REPLACE INTO stats_cache VALUES (?,?,?,?)",
                            (ds.id, key, out.pop("_version"), json.dumps(out)))
    out.pop("_version", None)
    return out


def _compute(ds: Dataset, directory: str | None, near_duplicates: bool) -> dict[str, Any]:
    conn = ds.conn
    dtype = ds.type
    with ds._tx():  # one consistent read
        version = ds.version
        where, args = "e.dataset_id=?", [ds.id]
        if directory is not None:
            where += " AND e.id IN (SELECT example_id FROM directory_members WHERE directory_id=?)"
            args.append(ds._directory_id(directory))
        splits = dict.fromkeys(SPLITS, 0)
        splits.update(dict(conn.execute(f"SELECT split, COUNT(*) FROM examples e WHERE {where} GROUP BY split",
                                        args).fetchall()))
        classes = ds.classes
        names = ds._class_names()
        counts: dict[str, dict[str, int]] = {
            c.name: {"train": 0, "val": 0, "test": 0, "total": 0, "images": 0} for c in classes}
        label_types = dtype in _LABEL_TYPES
        region_filter = " AND a.kind IN ('label', 'anomaly')" if label_types else ""
        rows = conn.execute(
            f"""SELECT e.split, a.class_id, COUNT(*), COUNT(DISTINCT a.example_id) FROM annotations a
                JOIN examples e ON e.id = a.example_id WHERE {where} AND a.proposal=0{region_filter}
                GROUP BY e.split, a.class_id""", args).fetchall()
        n_ann = 0
        for split, cid, n, n_images in rows:
            row = counts[names[cid]]
            row[split] += n_images if label_types else n
            row["total"] += n_images if label_types else n
            n_ann += n
        for cid, n_images in conn.execute(
                f"""SELECT a.class_id, COUNT(DISTINCT a.example_id) FROM annotations a
                    JOIN examples e ON e.id = a.example_id WHERE {where} AND a.proposal=0{region_filter}
                    GROUP BY a.class_id""", args):
            counts[names[cid]]["images"] = n_images
        status_filter = "" if label_types else " AND e.status='new'"
        kinds = "('label','anomaly')" if label_types else "('box','polygon','mask')"
        missing = [r[0] for r in conn.execute(
            f"""SELECT e.id FROM examples e WHERE {where}{status_filter} AND NOT EXISTS (
                SELECT 1 FROM annotations a WHERE a.example_id = e.id AND a.proposal=0 AND a.kind IN {kinds})
                ORDER BY e.id""", args)]
        boxes = None
        if not label_types:
            order = [c.name for c in classes]  # classes.position is the index into this list
            arr = np.array(conn.execute(
                f"""SELECT a.w, a.h, e.width, e.height, c.position, a.example_id FROM annotations a
                    JOIN examples e ON e.id = a.example_id JOIN classes c ON c.id = a.class_id
                    WHERE {where} AND a.proposal=0 AND a.w IS NOT NULL""",
                args).fetchall(), dtype=np.float64).reshape(-1, 6)
            boxes = box_stats_from_arrays(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], order)
        dup_rows = conn.execute(
            f"""SELECT e.id, e.blob, e.split, b.phash FROM examples e JOIN blobs b ON b.hash = e.blob
                WHERE {where} ORDER BY e.id""", args).fetchall()
    light = [Example(id=r[0], dataset=ds.name, blob=r[1], file_name="", width=1, height=1, split=r[2],
                     status="new") for r in dup_rows]
    if near_duplicates:
        hashes = {r[1]: r[3] for r in dup_rows if r[3]}
        dups = find_duplicates(light, ds.load_bytes, hashes=hashes)
    else:
        dups = find_duplicates(light, None)
    report = build_report(dtype, classes, counts, sum(splits.values()), missing, boxes, dups)
    out = report.to_dict()
    out.update(dataset=ds.name, directory=directory, examples=sum(splits.values()), annotations=n_ann,
               splits=splits, _version=version)
    return out
