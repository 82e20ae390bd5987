"""``workbench metrics coco``: the 12 stats as pycocotools computes them, without importing torch."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from workbench.evaluate.synthetic import make_coco_pair

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cli_equals_pycocotools(tmp_path, iou_type):
    gt, dt = make_coco_pair(n_images=30, seed=4, iou_type=iou_type)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    code = ("import sys, json; from workbench.cli import main; rc = main(sys.argv[1:]); "
            "print('TORCH', 'torch' in sys.modules, file=sys.stderr); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "metrics", "coco", str(tmp_path / "gt.json"),
                        str(tmp_path / "dt.json"), "--iou-type", iou_type, "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "TORCH False" in p.stderr
    got = json.loads(p.stdout)
    assert list(got) == KEYS
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(tmp_path / "gt.json"))
        d = g.loadRes(str(tmp_path / "dt.json"))
        ev = COCOeval(g, d, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    for k, v in zip(KEYS, ev.stats, strict=True):
        assert abs(got[k] - float(v)) < 1e-12, k
