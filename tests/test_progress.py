"""Progress: the typed events, the renderer (bar on a terminal, periodic lines in a log), and the CLI
commands that show them on stderr -- import, export, training steps within an epoch."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.progress import Progress, ProgressPrinter, Stage


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(printer: ProgressPrinter, n: int = 50) -> None:
    stage = Stage(printer, "import", "checking images", n, "images")
    for _ in range(n):
        stage.advance()
    stage.close()


def test_log_lines_are_throttled_but_start_and_end_always_show():
    out = io.StringIO()
    _feed(ProgressPrinter(out, interval=3600))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("import: checking images  0/50 images (0%)")
    assert lines[1].startswith("import: checking images  50/50 images (100%)  done in ")
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()  # a log gets plain lines


def test_log_lines_every_interval():
    out = io.StringIO()
    _feed(ProgressPrinter(out, interval=0), n=5)
    counts = [int(m.group(1)) for m in re.finditer(r"images  (\d+)/5 images", out.getvalue())]
    assert counts == [0, 1, 2, 3, 4, 5, 5]


def test_terminal_gets_one_redrawn_bar_per_stage():
    out = _Tty()
    printer = ProgressPrinter(out)
    _feed(printer)
    printer(Progress("export", "writing images", 1, 4, "images"))
    printer.line("a whole line")
    text = out.getvalue()
    assert text.count("\n") == 3  # the finished import bar, the export bar ended by the line, the line
    first = text.split("\n")[0]
    assert first.startswith("\rimport: checking images  [") and "50/50 images (100%)  done in" in first
    assert "[######......" in text  # 1/4 of a 24-wide bar


def test_progress_rejects_negative_counts():
    with pytest.raises(ValueError):
        Progress("import", "x", -1, 3)


def _images(folder, n):
    from PIL import Image

    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (24, 20), (i * 7 % 256, 40, 90)).save(folder / f"img{i:03d}.png")


def test_import_not_on_a_terminal_prints_periodic_progress_and_a_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROGRESS_SECONDS", "0")
    _images(tmp_path / "imgs", 30)
    assert main(["--home", str(tmp_path / "ws"), "import", "d", str(tmp_path / "imgs"), "--format", "images",
                 "--type", "classification"]) == 0
    out, err = capsys.readouterr()
    assert "imported 30 examples into 'd'" in out and "import:" not in out  # the summary on stdout
    checked = [int(m.group(1)) for m in re.finditer(r"^import: checking images  (\d+)/30 images", err, re.M)]
    assert checked[0] == 0 and checked[-1] == 30 and checked == sorted(checked) and len(checked) > 10
    assert re.search(r"^import: storing images  30/30 images \(100%\)  done in [\d.]+ s$", err, re.M), err
    # --json: stdout is the JSON and nothing else; progress still goes to stderr
    _images(tmp_path / "more", 5)
    assert main(["--home", str(tmp_path / "ws"), "import", "d", str(tmp_path / "more"), "--format", "images",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    assert isinstance(json.loads(out), dict)
    assert "import: checking images  5/5" in err


def test_training_prints_steps_within_an_epoch_when_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROGRESS_SECONDS", "0")
    home = str(tmp_path / "ws")
    assert main(["--home", home, "sample", "d", "digits", "--count", "120"]) == 0
    out, err = capsys.readouterr()
    assert "added 120 digits examples" in out and "import: storing images  120/120 images (100%)  done" in err
    # export reports the images it writes
    assert main(["--home", home, "export", "d", str(tmp_path / "exp"), "--format", "imagefolder"]) == 0
    out, err = capsys.readouterr()
    assert "wrote" in out and "export:" not in out
    written = [int(n) for n in re.findall(r"^export: writing images  (\d+)/120 images", err, re.M)]
    assert written == list(range(121)) + [120], err
    assert main(["--home", home, "train", "d", "--epochs", "1", "--batch-size", "16", "--augment", "no-flip",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # stdout: the JSON only
    steps = [(int(a), int(b)) for a, b in re.findall(r"^train: epoch 1/1  (\d+)/(\d+) steps", err, re.M)]
    total = steps[-1][1]
    assert total >= 5 and [s for s, _ in steps[:total + 1]] == list(range(total + 1)), err
    within = err.index(f"train: epoch 1/1  {total // 2}/{total} steps")
    assert within < err.index("epoch 1/1  train_loss")  # shown while the epoch ran, before its summary line
    assert re.search(r"^train: epoch 1/1  \d+/\d+ steps \(\d+%\)  [\d.]+ steps/s  ETA \d+:\d\d  loss \d", err, re.M)
    # mining predicts the val split (no stored predictions) and shows it, batch by batch
    run_id = json.loads(out)["run_id"]
    assert main(["--home", home, "mine", run_id, "--count", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    batches = re.findall(r"^predict: (\d+) examples  (\d+)/(\d+) batches", err, re.M)
    assert batches and batches[0][1] == "0" and batches[-1][1] == batches[-1][2], err


def test_training_callback_reports_each_step_as_progress():
    from workbench.runs.records import EpochRecord
    from workbench.train.progress import ProgressCallback

    events: list[Progress] = []
    cb = ProgressCallback(events.append)
    cb.on_fit_start({"epochs": 2, "steps_per_epoch": 3})
    cb.on_epoch_start(1)
    for i in range(3):
        cb.on_step(i + 1, 1.0 / (i + 1), 0.0, 0.1)
    cb.on_epoch_end(EpochRecord(epoch=1, train_loss=0.5, val_loss=0.7, monitor="accuracy",
                                metrics={"accuracy": 0.9}, best=True))
    assert [(e.stage, e.done, e.total, e.final) for e in events] == [
        ("epoch 1/2", 0, 3, False), ("epoch 1/2", 1, 3, False), ("epoch 1/2", 2, 3, False),
        ("epoch 1/2", 3, 3, False), ("epoch 1/2", 3, 3, True)]
    assert events[2].detail == "loss 0.5000"
    assert events[-1].detail == "train_loss 0.5000  val_loss 0.7000  accuracy 0.9000  (best)"


def test_a_large_coco_import_says_each_stage_once_in_order(tmp_path, capsys, monkeypatch):
    """A staged COCO import writes its rows while its images are still checked (two threads): the terminal
    hears the checking, then the rows (once the checks have said their last), then the duplicate search --
    never two stages in turn, and nothing left unsaid after the checks end (the rows and the search went
    silent for seconds on a 20,000-image import)."""
    from workbench.data import image_pool, staged

    monkeypatch.setenv("WORKBENCH_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(staged, "CHUNK_ROWS", 12)  # several short transactions
    monkeypatch.setattr(staged, "PAUSE_S", 0.0)
    real_check = image_pool.check_chunk

    def slow_check(jobs, sink=None):  # checks slower than rows: without the gate the stages would alternate
        time.sleep(0.03)
        return real_check(jobs, sink)

    monkeypatch.setattr(image_pool, "check_chunk", slow_check)
    _images(tmp_path / "imgs", 40)
    coco = {"images": [{"id": i + 1, "file_name": f"img{i:03d}.png", "width": 24, "height": 20} for i in range(40)],
            "annotations": [{"id": 3 * i + k + 1, "image_id": i + 1, "category_id": 1 + k % 2,
                             "bbox": [1 + k, 2, 5, 6], "area": 30, "iscrowd": 0} for i in range(40) for k in range(3)],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    assert main(["--home", str(tmp_path / "ws"), "import", "d", str(tmp_path / "coco.json"), "--format", "coco",
                 "--images", str(tmp_path / "imgs")]) == 0
    out, err = capsys.readouterr()
    assert "imported 40 examples into 'd'" in out
    lines = [ln for ln in err.splitlines() if ln.startswith("import: ")]
    stages = [ln.split("  ")[0] for ln in lines]
    order = [s for k, s in enumerate(stages) if k == 0 or s != stages[k - 1]]
    assert order == ["import: checking images", "import: writing rows", "import: searching near duplicates"], lines
    assert re.search(r"^import: checking images  40/40 images \(100%\)  done in", err, re.M), err
    written = [int(m.group(1)) for m in re.finditer(r"^import: writing rows  (\d+)/40 examples", err, re.M)]
    assert written == sorted(written) and written[-1] == 40, err
    assert re.search(r"^import: writing rows  40/40 examples \(100%\)  done in", err, re.M), err
    assert re.search(r"^import: searching near duplicates  40/40 images \(100%\)  done in", err, re.M), err


def test_a_coco_source_in_parts_is_checked_one_part_at_a_time(tmp_path, capsys, monkeypatch):
    """``annotations/instances_train.json`` + ``instances_val.json``: the second part is read while the first
    is still checked; its checks wait for the first's, so the terminal shows one "checking images" stage,
    then the other (two threads writing to one terminal interleaved their lines)."""
    from workbench.data import image_pool, staged

    monkeypatch.setenv("WORKBENCH_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(staged, "CHUNK_ROWS", 12)
    monkeypatch.setattr(staged, "PAUSE_S", 0.0)
    real_check = image_pool.check_chunk
    running = []
    pool = image_pool.import_workers(30)  # one part's threads

    def slow_check(jobs, sink=None):
        running.append(1)
        try:
            assert len(running) <= pool  # one part's pool at a time
            time.sleep(0.03)
            return real_check(jobs, sink)
        finally:
            running.pop()

    monkeypatch.setattr(image_pool, "check_chunk", slow_check)
    root = tmp_path / "src"
    root.mkdir()
    _images(root / "images", 50)
    (root / "annotations").mkdir()
    for split, ids in (("train", range(0, 30)), ("val", range(30, 50))):
        coco = {"images": [{"id": i + 1, "file_name": f"img{i:03d}.png", "width": 24, "height": 20} for i in ids],
                "annotations": [{"id": 2 * i + k + 1, "image_id": i + 1, "category_id": 1, "bbox": [1 + k, 2, 5, 6],
                                 "area": 30, "iscrowd": 0} for i in ids for k in range(2)],
                "categories": [{"id": 1, "name": "cat"}]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    assert main(["--home", str(tmp_path / "ws"), "import", "d", str(root), "--format", "coco"]) == 0
    out, err = capsys.readouterr()
    assert "imported 50 examples into 'd'" in out and "train 30 / val 20" in out, out
    totals = [int(m.group(2)) for m in re.finditer(r"^import: checking images  (\d+)/(\d+) images", err, re.M)]
    assert totals == sorted(totals, reverse=True) and set(totals) == {30, 20}, err  # all of train's, then val's
    assert re.search(r"^import: checking images  30/30 images \(100%\)  done in", err, re.M), err
    assert re.search(r"^import: checking images  20/20 images \(100%\)  done in", err, re.M), err


def test_a_real_roboflow_export_says_its_stages_in_order(tmp_path, capsys, monkeypatch):
    """Roboflow's COCO layout as datumaro's test assets hold it (train/ and val/, each its
    ``_annotations.coco.json`` beside real JPEGs; tests/data/realworld/splits/PROVENANCE): each part's checks,
    in part order, then the rows, then the duplicate search, one stage at a time."""
    from workbench.data import image_pool, staged

    monkeypatch.setenv("WORKBENCH_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(staged, "CHUNK_ROWS", 2)  # staged: the rows written while the checks run
    monkeypatch.setattr(staged, "PAUSE_S", 0.0)
    real_check = image_pool.check_chunk
    monkeypatch.setattr(image_pool, "check_chunk", lambda jobs, sink=None: time.sleep(0.05) or real_check(jobs, sink))
    src = Path(__file__).parent / "data" / "realworld" / "splits" / "datumaro_roboflow" / "coco"
    assert main(["--home", str(tmp_path / "ws"), "import", "d", str(src), "--format", "coco"]) == 0
    out, err = capsys.readouterr()
    assert "imported 3 examples into 'd'" in out and "train 2 / val 1" in out, out
    stages = [ln.split("  ")[0] + ln.split("  ")[1].split(" ")[0].split("/")[-1] for ln in err.splitlines()
              if ln.startswith("import: ")]
    order = [s for k, s in enumerate(stages) if k == 0 or s != stages[k - 1]]
    assert order == ["import: checking images2", "import: checking images1", "import: writing rows3",
                     "import: searching near duplicates3"], err
