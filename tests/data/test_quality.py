"""Dataset quality checks: counts per split, balance warnings, box sizes, duplicates, the JSON report."""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from workbench.data.quality import (
    DOMINANT_RATIO,
    DOMINANT_SHARE,
    GUIDANCE,
    QualityWarning,
    box_stats,
    box_stats_from_arrays,
    class_counts,
    imbalance,
    near_duplicates,
    quality_report,
    unannotated,
)
from workbench.data.records import Annotation, ClassDef, Example
from workbench.data.samples import make_sample
from workbench.errors import ImageError, UnknownNameError, ValidationError

SPLIT_CYCLE = ("train",) * 8 + ("val", "test")


def cls(*names: str) -> list[ClassDef]:
    return [ClassDef(n, "#336699") for n in names]


def labelled(counts: dict[str, int], kind: str = "label", splits=SPLIT_CYCLE) -> list[Example]:
    """Examples with one class each: ``counts[c]`` examples of class c, splits cycling 8:1:1."""
    out = []
    for name, n in counts.items():
        for _ in range(n):
            k = len(out)
            ann = Annotation(kind, name)
            out.append(
                Example(
                    k, "d", f"blob{k}", f"{k}.png", 64, 48, splits[k % len(splits)], "annotated", "", (ann,)
                )
            )
    return out


def codes(warnings: list[QualityWarning]) -> set[str]:
    return {w.code for w in warnings}


BALANCE_CASES = [
    # id, dataset type, counts per class, codes that must appear, codes that must not
    (
        "balanced-good",
        "classification",
        {"a": 400, "b": 400, "c": 400},
        {"classes_good"},
        {"class_dominant", "class_rare", "too_few_examples", "class_below_good", "classes_great"},
    ),
    (
        "balanced-great",
        "classification",
        {"a": 1000, "b": 1000},
        {"classes_great"},
        {"classes_good", "class_below_good", "class_dominant"},
    ),
    (
        "small-but-trainable",
        "classification",
        {"a": 40, "b": 40},
        {"class_below_good"},
        {"too_few_examples", "class_too_few", "class_dominant"},
    ),
    (
        "too-few-in-total",
        "classification",
        {"a": 5, "b": 4},
        {"too_few_examples", "class_too_few"},
        {"class_dominant"},
    ),
    (
        "one-class-dominates",
        "classification",
        {"a": 700, "b": 100, "c": 100},
        {"class_dominant"},
        {"class_rare", "too_few_examples"},
    ),
    (
        "largest-but-under-half",
        "classification",
        {"a": 500, "b": 200, "c": 200, "d": 200},
        set(),
        {"class_dominant", "class_rare"},
    ),
    ("over-half-but-ratio-small", "classification", {"a": 600, "b": 300}, set(), {"class_dominant"}),
    (
        "rare-class",
        "classification",
        {"a": 1000, "b": 1000, "c": 50},
        {"class_rare", "class_below_good"},
        {"class_dominant"},
    ),
    ("empty-class", "classification", {"a": 300, "b": 300, "c": 0}, {"class_empty"}, {"class_rare"}),
    (
        "anomaly-many-good-is-fine",
        "anomaly",
        {"good": 400, "anomalous": 30},
        {"classes_good"},
        {"class_dominant", "class_rare", "class_not_evaluated"},
    ),
    ("anomaly-too-few-good", "anomaly", {"good": 6, "anomalous": 30}, {"class_too_few"}, {"class_dominant"}),
]


@pytest.mark.parametrize(
    ("dataset_type", "counts", "present", "absent"),
    [c[1:] for c in BALANCE_CASES],
    ids=[c[0] for c in BALANCE_CASES],
)
def test_balance_warnings(
    dataset_type: str, counts: dict[str, int], present: set[str], absent: set[str]
) -> None:
    kind = "anomaly" if dataset_type == "anomaly" else "label"
    examples = labelled(counts, kind)
    report = quality_report(examples, cls(*counts), dataset_type)
    got = codes(report.warnings)
    assert present <= got, got
    assert not (absent & got), got
    assert report.can_train == ("too_few_examples" not in got)
    # the same verdicts from the count table alone (what the store computes in SQL)
    table = class_counts(examples, cls(*counts))
    assert codes(imbalance(table, dataset_type, annotated_examples=len(examples)).warnings) <= got


def test_warning_details_name_the_class_and_follow_severity_order() -> None:
    report = quality_report(labelled({"a": 700, "b": 100, "c": 5}), cls("a", "b", "c"), "classification")
    dominant = next(w for w in report.warnings if w.code == "class_dominant")
    assert dominant.class_name == "a" and dominant.severity == "warning" and "a" in dominant.message
    too_few = next(w for w in report.warnings if w.code == "class_too_few")
    assert too_few.class_name == "c" and too_few.count == 5
    ranks = [("error", "warning", "info").index(w.severity) for w in report.warnings]
    assert ranks == sorted(ranks)
    assert report.balance.ratio == pytest.approx(700 / 5)
    assert (report.balance.largest, report.balance.smallest) == ("a", "c")
    assert report.balance.shares["a"] == pytest.approx(700 / 805)
    with pytest.raises(ValidationError):
        QualityWarning("x", "fatal", "nope")


def test_thresholds_are_exported() -> None:
    assert GUIDANCE == {"minimum": 10, "good": 300, "great": 1000}
    assert DOMINANT_SHARE == 0.5 and DOMINANT_RATIO == 3.0


def test_class_counts_per_split_for_objects() -> None:
    boxes = [Annotation("box", "cat", bbox=(0, 0, 10, 10))] * 3 + [
        Annotation("box", "dog", bbox=(5, 5, 10, 10))
    ]
    proposal = Annotation("box", "dog", bbox=(1, 1, 5, 5), score=0.9, proposal=True)
    examples = [
        Example(1, "d", "b1", "1.png", 64, 48, "train", "annotated", "", tuple(boxes)),
        Example(2, "d", "b2", "2.png", 64, 48, "val", "annotated", "", (boxes[0], proposal)),
        Example(
            3,
            "d",
            "b3",
            "3.png",
            64,
            48,
            "test",
            "annotated",
            "",
            (Annotation("box", "bird", bbox=(0, 0, 4, 4)),),
        ),
        Example(4, "d", "b4", "4.png", 64, 48, "train", "new", "", (proposal,)),
    ]
    table = class_counts(examples, cls("cat", "dog", "fish"))
    assert table == {
        "cat": {"train": 3, "val": 1, "test": 0, "total": 4, "images": 2},
        "dog": {"train": 1, "val": 0, "test": 0, "total": 1, "images": 1},
        "fish": {"train": 0, "val": 0, "test": 0, "total": 0, "images": 0},
        "bird": {
            "train": 0,
            "val": 0,
            "test": 1,
            "total": 1,
            "images": 1,
        },  # not a defined class: listed last
    }
    report = quality_report(examples, cls("cat", "dog", "fish"), "detection")
    unknown = next(w for w in report.warnings if w.code == "unknown_class")
    assert unknown.class_name == "bird"
    assert report.unannotated == [4]  # only a proposal


def test_class_counts_label_once_per_example_and_bad_split() -> None:
    two = (
        Annotation("anomaly", "anomalous", bbox=(0, 0, 3, 3)),
        Annotation("anomaly", "anomalous", bbox=(9, 9, 3, 3)),
    )
    examples = [Example(1, "d", "b", "f", 16, 16, "val", "annotated", "", two)]
    assert class_counts(examples, cls("good", "anomalous"))["anomalous"] == {
        "train": 0,
        "val": 1,
        "test": 0,
        "total": 1,
        "images": 1,
    }
    bad = [Example(7, "d", "b", "f", 16, 16, "holdout", "new", "", ())]
    with pytest.raises(ValidationError) as err:
        class_counts(bad, [])
    assert err.value.record == 7 and err.value.field == "split"
    with pytest.raises(UnknownNameError):
        quality_report(examples, [], "keypoints")


def test_unannotated_and_background_images() -> None:
    examples = [
        Example(1, "d", "b1", "1.png", 64, 48, "train", "new", "", ()),
        Example(2, "d", "b2", "2.png", 64, 48, "train", "annotated", "", ()),  # checked: nothing to box
        Example(
            3,
            "d",
            "b3",
            "3.png",
            64,
            48,
            "train",
            "annotated",
            "",
            (Annotation("box", "cat", bbox=(0, 0, 9, 9)),),
        ),
    ]
    assert unannotated(examples) == [1, 2]
    assert unannotated(examples, "classification") == [1, 2]
    assert unannotated(examples, "detection") == [1]
    report = quality_report(examples, cls("cat"), "detection")
    w = next(w for w in report.warnings if w.code == "unannotated")
    assert w.count == 1 and report.unannotated == [1] and report.annotated == 2
    assert "too_few_examples" in codes(report.warnings)


BOX_CASES = [
    # id, image size, box, tiny, huge
    ("normal", (640, 480), (10, 10, 100, 80), False, False),
    ("narrow-under-4px", (640, 480), (10, 10, 3, 100), True, False),
    ("short-under-4px", (64, 48), (1, 1, 20, 3.9), True, False),
    ("under-1pct-of-side", (1000, 1000), (0, 0, 9, 50), True, False),
    ("exactly-1pct", (1000, 1000), (0, 0, 10, 50), False, False),
    ("over-90pct-area", (100, 100), (0, 0, 95, 95), False, True),
    ("just-under-90pct", (100, 100), (0, 0, 94, 95), False, False),
    ("whole-image", (32, 32), (0, 0, 32, 32), False, True),
]


@pytest.mark.parametrize(
    ("size", "bbox", "tiny", "huge"), [c[1:] for c in BOX_CASES], ids=[c[0] for c in BOX_CASES]
)
def test_box_flags(size: tuple[int, int], bbox: tuple[float, ...], tiny: bool, huge: bool) -> None:
    ok = Annotation("box", "cat", bbox=(0, 0, size[0] / 2, size[1] / 2))
    examples = [
        Example(1, "d", "b1", "1.png", size[0], size[1], "train", "annotated", "", (ok,)),
        Example(
            2,
            "d",
            "b2",
            "2.png",
            size[0],
            size[1],
            "train",
            "annotated",
            "",
            (ok, Annotation("box", "dog", bbox=bbox)),
        ),
    ]
    stats = box_stats(examples)
    assert stats.count == 3
    assert (stats.tiny, stats.tiny_examples) == ((1, [2]) if tiny else (0, []))
    assert (stats.huge, stats.huge_examples) == ((1, [2]) if huge else (0, []))
    report = quality_report(examples, cls("cat", "dog"), "detection")
    assert ("tiny_boxes" in codes(report.warnings)) == tiny
    assert ("huge_boxes" in codes(report.warnings)) == huge


def test_box_size_distribution() -> None:
    anns = tuple(Annotation("box", "a", bbox=(0, 0, s, s)) for s in (10, 20, 40)) + (
        Annotation("polygon", "b", polygons=((0, 0, 50, 0, 50, 50, 0, 50),)),
        Annotation("box", "a", bbox=(0, 0, 90, 90), proposal=True, score=0.5),  # left out
    )
    ex = Example(5, "d", "b", "f", 100, 100, "train", "annotated", "", anns)
    stats = box_stats([ex])
    assert stats.count == 4
    assert stats.quantiles["min"] == pytest.approx(0.1) and stats.quantiles["max"] == pytest.approx(0.5)
    assert stats.histogram["counts"][stats.histogram["edges"].index(0.1)] == 1  # 0.1 <= 0.1 < 0.2
    assert sum(stats.histogram["counts"]) == 4
    assert stats.by_class == {
        "a": {"count": 3, "median": pytest.approx(0.2)},
        "b": {"count": 1, "median": 0.5},
    }
    # image_sizes overrides the example's size
    assert box_stats([ex], {5: (1000, 1000)}).quantiles["max"] == pytest.approx(0.05)
    empty = box_stats([])
    assert empty.count == 0 and empty.quantiles == {} and sum(empty.histogram["counts"]) == 0
    with pytest.raises(ValidationError):
        box_stats_from_arrays([1.0], [1.0, 2.0], [10], [10], [0], [1], ["a"])


# ---------------------------------------------------------------------------------------------- duplicates
def encode(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, quality=90) if fmt == "JPEG" else Image.fromarray(arr).save(
        buf, format=fmt
    )
    return buf.getvalue()


@pytest.fixture(scope="module")
def dup_dataset() -> tuple[list[Example], dict[str, bytes]]:
    """Ten unrelated sample images, an exact copy of #0 (same blob), a resized and noised JPEG copy of #1
    (in val), and a copy of #2 with a small patch painted over it."""
    items = make_sample("shapes-detection", count=10, seed=4).items
    rng = np.random.default_rng(0)
    datas = [it.data for it in items]
    img1 = np.asarray(Image.open(io.BytesIO(datas[1])).convert("RGB").resize((180, 180), Image.BILINEAR))
    noisy = np.clip(img1 + rng.normal(0, 4, img1.shape), 0, 255).astype(np.uint8)
    img2 = np.asarray(Image.open(io.BytesIO(datas[2])).convert("RGB")).copy()
    img2[5:12, 5:12] = 255
    extra = [encode(noisy, "JPEG"), encode(img2)]
    blobs: dict[str, bytes] = {}
    examples = []
    splits = ["train"] * 10 + ["train", "val", "train"]
    for k, data in enumerate([*datas, datas[0], *extra]):
        assert data is not None
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        examples.append(Example(100 + k, "d", sha, f"{k}.png", w, h, splits[k], "annotated", "", ()))
    return examples, blobs


def test_near_duplicates_finds_copies_but_not_unrelated_images(dup_dataset) -> None:
    examples, blobs = dup_dataset
    reads: list[str] = []

    def load(sha: str) -> bytes:
        reads.append(sha)
        return blobs[sha]

    dups = near_duplicates(examples, load, max_distance=4)
    assert dups.checked and dups.hashed == 12
    assert sorted(reads) == sorted(blobs)  # each distinct image read once, the exact copy not again
    assert dups.exact == [[100, 110]]
    pairs = {(p.a, p.b) for p in dups.pairs}
    assert pairs == {(101, 111), (102, 112)}
    assert {p.distance for p in dups.pairs} <= set(range(5))
    assert next(p for p in dups.pairs if p.a == 101).cross_split  # 101 in train, its copy in val
    assert dups.groups == [[100, 110], [101, 111], [102, 112]]
    assert dups.cross_split == [[101, 111]]
    # unrelated images are far apart
    strict = near_duplicates(examples[:10], load, max_distance=10)
    assert strict.pairs == [] and strict.groups == []


def test_cached_hashes_replace_reading_images(dup_dataset) -> None:
    examples, blobs = dup_dataset
    first = near_duplicates(examples, blobs.__getitem__)

    from workbench.data.duplicates import phash_hex

    cached = {sha: phash_hex(data) for sha, data in blobs.items()}

    def refuse(sha: str) -> bytes:
        raise AssertionError("should not read")

    again = near_duplicates(examples, refuse, hashes=cached)
    assert again.to_dict() == first.to_dict()
    only_exact = near_duplicates(examples)
    assert not only_exact.checked and only_exact.exact == [[100, 110]] and only_exact.pairs == []
    with pytest.raises(ValidationError):
        near_duplicates(examples, hashes={examples[0].blob: "not-hex"})


def test_identical_hashes_and_pair_limit() -> None:
    img = np.asarray(Image.open(io.BytesIO(make_sample("shapes-classification", count=1).items[0].data)))  # type: ignore[arg-type]
    blobs = {}
    examples = []
    for k in range(6):  # six encodings of the same picture: different bytes, same hash
        data = encode(img) + bytes(k)  # trailing bytes after IEND: a different blob, the same pixels
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        examples.append(Example(k, "d", sha, f"{k}.png", 128, 128, "train", "annotated", "", ()))
    dups = near_duplicates(examples, blobs.__getitem__, max_pairs=5)
    assert dups.truncated and len(dups.pairs) == 5 and all(p.distance == 0 for p in dups.pairs)
    assert dups.groups == [[0, 1, 2, 3, 4, 5]]
    full = near_duplicates(examples, blobs.__getitem__)
    assert not full.truncated and len(full.pairs) == 15


def test_unreadable_image_names_the_example() -> None:
    ex = Example(42, "d", "deadbeef", "broken.png", 10, 10, "train", "new", "", ())
    with pytest.raises(ImageError) as err:
        near_duplicates([ex], lambda sha: b"not an image")
    assert err.value.record == 42 and err.value.file == "broken.png"


def test_report_includes_duplicates_and_is_json(dup_dataset) -> None:
    examples, blobs = dup_dataset
    anns = (Annotation("box", "circle", bbox=(1, 1, 20, 20)),)
    examples = [
        Example(e.id, e.dataset, e.blob, e.file_name, e.width, e.height, e.split, e.status, "", anns)
        for e in examples
    ]
    report = quality_report(examples, cls("circle"), "detection", blobs.__getitem__)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    for key in ("classes", "warnings", "box_sizes", "near_duplicates", "unannotated", "guidance", "balance"):
        assert key in d
    assert d["classes"]["circle"] == {"train": 12, "val": 1, "test": 0, "total": 13, "images": 13}
    assert {"exact_duplicates", "near_duplicates", "duplicates_across_splits"} <= {
        w["code"] for w in d["warnings"]
    }
    assert all(set(w) >= {"code", "severity", "message"} for w in d["warnings"])
    assert d["near_duplicates"]["exact"] == [[100, 110]]
    skipped = quality_report(examples, cls("circle"), "detection", blobs.__getitem__, near_dup=False)
    assert not skipped.near_duplicates.checked and skipped.near_duplicates.exact == [[100, 110]]
    label_report = quality_report(labelled({"a": 20}), cls("a"), "classification").to_dict()
    assert label_report["box_sizes"] is None
    json.dumps(label_report, allow_nan=False)


def test_counts_and_balance_are_fast_on_20000_examples() -> None:
    names = [f"class{i}" for i in range(10)]
    protos = [Annotation("box", n, bbox=(1, 1, 30, 20)) for n in names]
    rng = np.random.default_rng(0)
    examples = [
        Example(
            i,
            "d",
            f"b{i}",
            f"{i}.jpg",
            640,
            480,
            SPLIT_CYCLE[i % 10],
            "annotated",
            "",
            tuple(protos[j] for j in rng.integers(0, 10, 5)),
        )
        for i in range(20_000)
    ]
    start = time.process_time()  # CPU time: other jobs on the machine do not count
    table = class_counts(examples, cls(*names))
    balance = imbalance(table, "detection", annotated_examples=len(examples))
    elapsed = time.process_time() - start
    assert sum(c["total"] for c in table.values()) == 100_000
    assert balance.ratio is not None and balance.ratio < 1.2
    assert elapsed < 0.5, f"{elapsed:.3f} s"
