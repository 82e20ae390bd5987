"""The data layer asks ``TaskType`` facts (``data/task_types.py``), not inline type strings: the facts
themselves, what the store does with them, and a check that no module of ``workbench/data`` compares a
dataset type with a string literal again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import box_batch, png_bytes
from workbench.data import Annotation, ImportBatch, ImportItem
from workbench.data.formats import READERS, WRITERS
from workbench.data.quality import _POLICIES
from workbench.data.records import ANOMALY_CLASSES, ClassDef
from workbench.data.samples import SAMPLES
from workbench.data.source_splits import _merge_type
from workbench.data.task_types import REGION_TYPES, TYPE_INFO, TaskType, region_type, type_info
from workbench.errors import ImportFormatError, ValidationError

DATA = Path(__file__).resolve().parents[2] / "workbench" / "data"
TYPE_NAMES = {t.value for t in TaskType}


def test_facts():
    assert REGION_TYPES == (TaskType.DETECTION, TaskType.SEGMENTATION)
    assert region_type(masks=True) is TaskType.SEGMENTATION and region_type(masks=False) is TaskType.DETECTION
    assert {t: i.label_kind for t, i in TYPE_INFO.items()} == {
        TaskType.CLASSIFICATION: "label", TaskType.DETECTION: None, TaskType.SEGMENTATION: None,
        TaskType.ANOMALY: "anomaly"}
    assert {t: i.also_takes for t, i in TYPE_INFO.items() if i.also_takes} == {
        TaskType.SEGMENTATION: (TaskType.DETECTION,)}
    assert [t for t, i in TYPE_INFO.items() if i.fixed_classes] == [TaskType.ANOMALY]
    assert type_info("anomaly").fixed_classes == ANOMALY_CLASSES == ("good", "anomalous")
    assert len(type_info("anomaly").fixed_colors) == 2
    for t, info in TYPE_INFO.items():
        assert (info.label_kind is not None) == info.image_level, t
        assert info.label_kind is None or info.label_kind in info.kinds, t


def test_a_type_is_a_plain_string_in_records():
    """Facts are asked with TaskType; what a record carries stays the stored string (a checkpoint that holds
    a TaskType member does not load with ``weights_only``)."""
    assert type(ImportBatch([], type=region_type(masks=True)).type) is str
    assert {type(s.type) for s in SAMPLES.values()} == {str}


def test_type_keyed_tables_of_the_data_layer_cover_every_type():
    assert set(_POLICIES) == TYPE_NAMES
    assert {s.type for s in SAMPLES.values()} == TYPE_NAMES
    for fmt in [*READERS.values(), *WRITERS.values()]:
        assert set(fmt.types) <= TYPE_NAMES, fmt.name


@pytest.mark.parametrize("a, b, merged", [
    ("detection", "segmentation", "segmentation"), ("segmentation", "detection", "segmentation"),
    ("detection", None, "detection"), ("anomaly", "anomaly", "anomaly"),
    ("detection", "classification", None), ("anomaly", "classification", None), ("bogus", "detection", None),
])
def test_parts_of_a_source_merge_by_what_a_type_takes(a, b, merged):
    if merged is None:
        with pytest.raises(ImportFormatError, match="different kinds of data"):
            _merge_type(a, b, "src")
    else:
        assert _merge_type(a, b, "src") == merged


def test_the_store_follows_the_facts(ws):
    an = ws.create_dataset("a", "anomaly")
    assert [c.name for c in an.classes] == ["good", "anomalous"]
    with pytest.raises(ValidationError, match="anomaly datasets have the fixed classes good and anomalous"):
        an.add_class("scratch")
    with pytest.raises(ValidationError, match="anomaly classes good and anomalous cannot be renamed"):
        an.rename_class("good", "fine")
    with pytest.raises(ValidationError, match="anomaly datasets have the classes good and anomalous only, not x"):
        ws.create_dataset("b", "anomaly", classes="good,x")
    (eid,) = an.import_batch(ImportBatch([ImportItem("a.png", data=png_bytes(20, 20))]))
    assert an.set_label(eid, "anomalous").kind == "anomaly"
    with pytest.raises(ValidationError, match="anomaly datasets have no class 'dent'"):
        an.import_batch(ImportBatch([ImportItem("b.png", data=png_bytes(20, 21))], classes=[ClassDef("dent", "#000000")]))
    seg = ws.create_dataset("s", "segmentation")
    assert len(seg.import_batch(box_batch(2))) == 2  # a segmentation dataset takes a detection source
    det = ws.create_dataset("d", "detection")
    polys = ImportBatch([ImportItem("p.png", data=png_bytes(20, 22), annotations=[
        Annotation("polygon", "cat", polygons=((1, 1, 9, 1, 9, 9),))])], classes=[ClassDef("cat", "#ff0000")],
        type="segmentation")
    with pytest.raises(ValidationError, match="the source holds segmentation data but dataset 'd' is detection"):
        det.import_batch(polys)
    cls = ws.create_dataset("c", "classification", classes="cat")
    (cid,) = cls.import_batch(ImportBatch([ImportItem("c.png", data=png_bytes(20, 23))]))
    assert cls.set_label(cid, "cat").kind == "label"
    with pytest.raises(ValidationError, match="takes box annotations, not label"):
        det.set_label(det.import_batch(box_batch(1, seed=3))[0], "cat")


def type_comparisons(path: Path) -> list[str]:
    """``x == "detection"``, ``t in ("detection", "segmentation")``...: a dataset type compared with a string
    (annotation kinds, ``a.kind == "anomaly"``, are not dataset types)."""
    def literal(n: ast.expr) -> bool:
        if isinstance(n, ast.Constant):
            return n.value in TYPE_NAMES
        return isinstance(n, (ast.Tuple, ast.List, ast.Set)) and any(literal(e) for e in n.elts)

    out = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.Compare) and any(literal(x) for x in [n.left, *n.comparators]):
            if not any(isinstance(x, ast.Attribute) and x.attr == "kind" for x in ast.walk(n)):
                out.append(f"{path.name}:{n.lineno}: {ast.unparse(n)}")
    return out


def test_no_inline_dataset_type_comparison_in_the_data_layer():
    found = [c for p in sorted(DATA.rglob("*.py")) if p.name != "task_types.py" for c in type_comparisons(p)]
    assert found == [], "ask a TaskType fact (data/task_types.py) instead:\n" + "\n".join(found)


def test_the_comparison_check_sees_one(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('if ds.type == "anomaly" or t in ("detection", "segmentation") or a.kind == "anomaly":\n    pass\n')
    assert type_comparisons(f) == ["m.py:1: ds.type == 'anomaly'", "m.py:1: t in ('detection', 'segmentation')"]
