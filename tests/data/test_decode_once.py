"""Each image is decoded once on import (size, verification, sha256 and pHash from one decode), in a process
pool for large batches: the pool stores exactly what the serial path stores, and one corrupt image still
refuses the whole import with a typed error naming its file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import box_batch
from workbench.data import Workspace
from workbench.data.duplicates import phash_hex
from workbench.data.image_pool import POOL_ENV, WORKERS_ENV, import_workers, pool_kind
from workbench.data.images import check_image
from workbench.data.transfer import import_source
from workbench.errors import ImageError, ValidationError


def photo(seed: int, w: int = 96, h: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, size=(h // 4, w // 4, 3), dtype=np.uint8)).resize((w, h))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def coco_folder(root: Path, n: int, *, bad: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        name = f"im_{i:03d}.jpg"
        data = photo(i)
        if i == bad:
            data = data[: len(data) // 2]  # truncated
        (root / name).write_bytes(data)
        images.append({"id": i + 1, "file_name": name, "width": 96, "height": 64})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [3, 4, 20, 10], "area": 200,
                     "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "car"}]}))
    return root


class DecodeCounter:
    """Counts Pillow pixel decoders made (one per decode of an image's pixels)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import PIL.Image

        self.calls: list[str] = []
        real = PIL.Image._getdecoder

        def counting(mode, decoder_name, args, extra=()):
            self.calls.append(decoder_name)
            return real(mode, decoder_name, args, extra)

        monkeypatch.setattr(PIL.Image, "_getdecoder", counting)


@pytest.mark.parametrize("workers", ["1", "3"])
def test_one_decode_per_image_through_a_reader(ws, tmp_path, monkeypatch, workers):
    src = coco_folder(tmp_path / "src", 24)
    monkeypatch.setenv(WORKERS_ENV, workers)  # threads: in this process, where the count is taken
    monkeypatch.setenv(POOL_ENV, "thread")
    counter = DecodeCounter(monkeypatch)
    _, ids = import_source(ws, "d", src, "coco")
    assert len(ids) == 24
    assert len(counter.calls) == 24, counter.calls  # before: reader probe + batch probe + pHash = 3 per image
    hashes = {r[0] for r in ws.conn.execute("SELECT phash FROM blobs")}
    assert None not in hashes and len(hashes) == 24


def test_one_decode_per_image_for_a_batch_built_in_code(ws, monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "1")
    batch = box_batch(9)
    counter = DecodeCounter(monkeypatch)
    ws.create_dataset("d", "detection", classes="cat,dog").import_batch(batch)
    assert len(counter.calls) == 9


def test_check_image_agrees_with_phash_and_probe():
    for seed in range(5):
        data = photo(seed, 200, 150)
        c = check_image(data)
        assert (c.width, c.height, c.format, c.nbytes) == (200, 150, "JPEG", len(data))
        assert c.phash == phash_hex(data)  # the same hash the duplicate search computes


def stored(ws: Workspace) -> tuple:
    ex = ws.conn.execute("SELECT blob, file_name, width, height, split, split_key, status FROM examples "
                         "ORDER BY id").fetchall()
    blobs = ws.conn.execute("SELECT hash, size, width, height, format, phash FROM blobs ORDER BY hash").fetchall()
    anns = ws.conn.execute("SELECT example_id, kind, x, y, w, h FROM annotations ORDER BY id").fetchall()
    return [tuple(r) for r in ex], [tuple(r) for r in blobs], [tuple(r) for r in anns], sorted(ws.blobs.all())


def test_the_pools_store_what_the_serial_path_stores(tmp_path, monkeypatch):
    src = coco_folder(tmp_path / "src", 40)
    out = []
    for workers, kind in (("1", "thread"), ("3", "thread"), ("2", "process")):
        monkeypatch.setenv(WORKERS_ENV, workers)
        monkeypatch.setenv(POOL_ENV, kind)
        with Workspace(tmp_path / f"ws{workers}{kind}") as w:
            import_source(w, "d", src, "coco")
            out.append(stored(w))
    assert out[0] == out[1] == out[2]
    assert len(out[0][0]) == 40


@pytest.mark.parametrize("workers,kind", [("1", "thread"), ("2", "thread"), ("2", "process")])
def test_a_corrupt_image_in_the_pool_refuses_the_whole_import(tmp_path, monkeypatch, workers, kind):
    src = coco_folder(tmp_path / "src", 40, bad=27)
    monkeypatch.setenv(WORKERS_ENV, workers)
    monkeypatch.setenv(POOL_ENV, kind)
    with Workspace(tmp_path / "ws") as w:
        with pytest.raises(ImageError) as e:
            import_source(w, "d", src, "coco")
        assert "im_027.jpg" in str(e.value) and "truncated" in str(e.value)
        assert not w.has_dataset("d")
        assert w.conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 0
        assert list(w.blobs.all()) == []


def test_import_batch_pool_error_names_the_item(tmp_path, monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "2")
    batch = box_batch(40)
    batch.items[33].data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    with Workspace(tmp_path / "ws") as w:
        ds = w.create_dataset("d", "detection", classes="cat,dog")
        with pytest.raises(ImageError) as e:
            ds.import_batch(batch)
        assert "img_0_00033.png" in str(e.value) and "record 33" in str(e.value)
        assert ds.count() == 0


def test_workers(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert import_workers(1) == 1
    assert import_workers(5, 8) == 5
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert import_workers(100) == 3
    monkeypatch.setenv(WORKERS_ENV, "zero")
    with pytest.raises(ValidationError, match=WORKERS_ENV):
        import_workers(100)
    monkeypatch.delenv(POOL_ENV, raising=False)
    assert pool_kind() == "auto"
    monkeypatch.setenv(POOL_ENV, "gpu")
    with pytest.raises(ValidationError, match="auto, thread, process"):
        pool_kind()


def test_a_file_changed_after_the_reader_checked_it_is_checked_again(ws, tmp_path, monkeypatch):
    from workbench.data.formats import get_reader

    src = coco_folder(tmp_path / "src", 3)
    monkeypatch.setenv(WORKERS_ENV, "1")
    batch = get_reader("coco").read(src)
    (src / "im_001.jpg").write_bytes(photo(99))  # same size, other pixels
    ws.create_dataset("d", "detection", classes="car").import_batch(batch)
    row = ws.conn.execute("SELECT b.phash FROM examples e JOIN blobs b ON b.hash = e.blob WHERE e.file_name=?",
                          ("im_001.jpg",)).fetchone()
    assert row[0] == phash_hex(photo(99))
