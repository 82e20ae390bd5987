from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workbench.data.records import Annotation
from workbench.widgets.sink import MemoryImage, MemorySink

WRITES = ("add_annotation", "update_annotation", "delete_annotation", "set_status", "add_class")
READS = ("example", "load_bytes", "example_ids", "progress")


def image_bytes(w: int = 400, h: int = 300, color=(30, 30, 30), fmt: str = "PNG") -> bytes:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:] = color
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


class RecordingSink(MemorySink):
    """A MemorySink that logs every call: ``writes`` (store changes) and ``reads``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple] = []
        self.reads: list[tuple] = []
        self._depth = 0  # calls the sink makes to itself are not the canvas's calls

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in WRITES or name in READS:
            log = super().__getattribute__("writes" if name in WRITES else "reads")

            def logged(*args, **kwargs):
                if self._depth == 0:
                    log.append((name, *args))
                self._depth += 1
                try:
                    return attr(*args, **kwargs)
                finally:
                    self._depth -= 1

            return logged
        return attr

    def take(self) -> list[tuple]:
        out, self.writes = self.writes, []
        return out

    def truth(self, example_id: int = 1) -> list[Annotation]:
        return [a for a in MemorySink.example(self, example_id).annotations if not a.proposal]

    def stored(self, example_id: int = 1) -> list[Annotation]:
        return list(MemorySink.example(self, example_id).annotations)


CLASSES = {
    "classification": ["cat", "dog", "bird"],
    "detection": ["cat", "dog", "bird"],
    "segmentation": ["cat", "dog", "bird"],
    "anomaly": [],
}


def make_sink(
    type: str, n: int = 3, *, w: int = 400, h: int = 300, annotations=None, directories=None, statuses=None
) -> RecordingSink:
    """``n`` plain images of ``w`` x ``h``; ``annotations`` maps a 1-based example id to its annotations."""
    annotations = annotations or {}
    images = [
        MemoryImage(
            image_bytes(w, h, color=(10 * i, 40, 80)),
            w,
            h,
            file_name=f"im{i}.png",
            annotations=annotations.get(i, ()),
            directories=(directories or {}).get(i, ()),
            status=(statuses or {}).get(i),
        )
        for i in range(1, n + 1)
    ]
    return RecordingSink(type, CLASSES[type], images)


@pytest.fixture
def sink_factory():
    return make_sink


@pytest.fixture
def png():
    return image_bytes


@pytest.fixture
def mk():
    """``mk(type, **state_kwargs)`` -> (CanvasState, RecordingSink) with its construction calls forgotten."""
    from workbench.widgets.canvas_state import CanvasState

    def build(
        type_: str,
        *,
        w: int = 400,
        h: int = 300,
        n: int = 3,
        annotations=None,
        directories=None,
        statuses=None,
        **kw,
    ):
        sink = make_sink(
            type_, n, w=w, h=h, annotations=annotations, directories=directories, statuses=statuses
        )
        s = CanvasState(sink, user="ann", **kw)
        sink.take()
        return s, sink

    return build
