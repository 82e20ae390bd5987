"""Start-up: ``import workbench``, ``workbench --help`` and a Voilà dashboard's first render, each against a
reference measured in the same run.

    python benchmarks/bench_startup.py [--repeat 15] [--voila-repeat 2] [--no-voila] [--json OUT]

Command line: every case in a fresh process, the cases interleaved (A, B, C, A, B, C...), median of
``--repeat``. References: ``python -c pass`` (the interpreter alone); for ``import workbench``, importing
what the data layer is built on (``json, sqlite3, numpy``); for ``workbench --help``, the same imports and
the ``--help`` of a one-command click app. Also checks that neither loads a heavy module (torch, plotly,
ipywidgets, OpenCV, albumentations...): there must be none.

Voilà: ``workbench/dashboards/annotate.ipynb`` over a workspace holding a 12-image shapes-detection sample, and a
reference notebook that shows one ``ipywidgets.Button``, served from one folder by Voilà with ``workbench
serve``'s options and opened in headless Chromium (Playwright with Debian's chromium; the page reaches only
127.0.0.1). Measured: page open -> first widget visible (the dataset picker / the button) and, for the
dashboard, -> canvas drawn. Cold: a fresh server without preheating (Voilà starts a kernel and runs the
notebook on the request). Preheated: ``--preheat_kernel=True``, the page opened once the preheated kernels
have finished running the notebook (their CPU time stops growing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.rows import Row, table, write_rows  # noqa: E402

HEAVY = ("torch", "torchvision", "plotly", "ipywidgets", "ipycanvas", "cv2", "albumentations", "papermill")
PY = sys.executable
CLICK_HELP = "import click; click.command()(lambda: None)(['--help'])"
CASES = {  # name -> argv
    "python -c pass": [PY, "-c", "pass"],
    "import json, sqlite3, numpy": [PY, "-c", "import json, sqlite3, numpy"],
    "import workbench": [PY, "-c", "import workbench"],
    "json, sqlite3, numpy + click app --help": [PY, "-c", f"import json, sqlite3, numpy; {CLICK_HELP}"],
    "workbench --help": [str(Path(PY).with_name("workbench")), "--help"],
}
PROBE = "import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
REFERENCE_NB = (
    "import ipywidgets as widgets\nb = widgets.Button(description='ok')\nb.add_class('wb-reference')\nb"
)


# ---------------------------------------------------------------------------------------------- CLI
def time_cases(repeat: int) -> dict[str, float]:
    """Median wall time of each case, in fresh processes, interleaved."""
    if not Path(CASES["workbench --help"][0]).exists():
        CASES["workbench --help"] = [PY, "-m", "workbench", "--help"]
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(repeat):
        for name, argv in CASES.items():
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def heavy_loaded(code: str) -> list[str]:
    proc = subprocess.run([PY, "-c", PROBE.format(code=code)], capture_output=True, text=True, check=True)
    modules = json.loads(proc.stderr.strip().splitlines()[-1])
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def cli_rows(repeat: int) -> list[Row]:
    t = time_cases(repeat)
    heavy_import = heavy_loaded("import workbench")
    heavy_help = heavy_loaded(
        "import contextlib, io\nfrom workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])"
    )
    note = f"median of {repeat} fresh processes; python -c pass: {t['python -c pass'] * 1000:.0f} ms"
    return [
        Row(
            "import workbench",
            f"{t['import workbench'] * 1000:.0f} ms",
            f"{t['import json, sqlite3, numpy'] * 1000:.0f} ms (import json, sqlite3, numpy)",
            t["import workbench"] / t["import json, sqlite3, numpy"],
            "<= 1.5",
            note,
        ),
        Row(
            "workbench --help",
            f"{t['workbench --help'] * 1000:.0f} ms",
            f"{t['json, sqlite3, numpy + click app --help'] * 1000:.0f} ms (same imports + a click app's --help)",
            t["workbench --help"] / t["json, sqlite3, numpy + click app --help"],
            "<= 1.5",
            note,
        ),
        Row(
            "heavy modules loaded by import workbench / --help",
            ", ".join(heavy_import + heavy_help) or "none",
            "none of " + ", ".join(HEAVY),
            float(len(heavy_import) + len(heavy_help)),
            "== 0",
        ),
    ]


# ---------------------------------------------------------------------------------------------- Voilà
def _voila_folder(root: Path) -> tuple[Path, Path]:
    """A served folder with the annotate dashboard and the reference notebook; a workspace with a sample."""
    import nbformat

    from workbench import Workspace
    from workbench.data.transfer import add_sample

    served = root / "served"
    served.mkdir()
    shutil.copy(REPO / "workbench" / "dashboards" / "annotate.ipynb", served / "annotate.ipynb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(REFERENCE_NB)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, served / "reference.ipynb")
    home = root / "home"
    with Workspace(home) as ws:
        add_sample(ws, "shapes", "shapes-detection", count=12, seed=0)
    return served, home


def _voila_command(served: Path, port: int, preheat: bool) -> list[str]:
    """``workbench serve``'s options over ``served`` (no refill of the kernel pool: it would skew timings)."""
    cmd = [
        PY,
        "-m",
        "voila",
        str(served),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        f"--Voila.root_dir={served}",
        "--strip_sources=True",
        "--show_tracebacks=True",
    ]
    if preheat:
        cmd += ["--preheat_kernel=True", "--VoilaKernelManager.fill_delay=86400"]
    return cmd


def _wait_kernels_idle(pid: int, kernels: int, timeout_s: float = 180.0) -> float:
    """Until ``kernels`` kernel processes under ``pid`` exist and their CPU time stops growing for 2 s."""
    import psutil

    t0 = time.monotonic()
    last, still_since = -1.0, time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        procs = [
            p for p in psutil.Process(pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())
        ]
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
        if len(procs) >= kernels and cpu - last < 0.05:
            if time.monotonic() - still_since >= 2.0:
                return time.monotonic() - t0
        else:
            still_since = time.monotonic()
        last = cpu
        time.sleep(0.25)
    raise TimeoutError(f"preheated kernels still busy after {timeout_s} s")


def voila_times(repeat: int) -> dict[str, list[float]]:
    from tests.browser import chromium, free_port, new_context, serve, server_env, wait_canvas_drawn

    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        served, home = _voila_folder(Path(tmp))
        env = server_env(WORKBENCH_HOME=str(home))
        for rep in range(repeat):
            for preheat in (False, True):
                mode = "preheated" if preheat else "cold"
                port = free_port()
                log = Path(tmp) / f"voila-{mode}-{rep}.log"
                with (
                    serve(
                        _voila_command(served, port, preheat), port=port, log=log, env=env, timeout_s=120
                    ) as server,
                    chromium() as browser,
                ):
                    if preheat:
                        _wait_kernels_idle(server.process.pid, kernels=2)
                    order = ["reference", "annotate"] if rep % 2 == 0 else ["annotate", "reference"]
                    for nb in order:
                        context = new_context(browser, {"width": 1300, "height": 1000})
                        page = context.new_page()
                        selector = ".wb-reference" if nb == "reference" else ".wb-dataset-picker"
                        t0 = time.monotonic()
                        page.goto(
                            f"{server.url}voila/render/{nb}.ipynb", wait_until="commit", timeout=120_000
                        )
                        page.wait_for_selector(selector, state="visible", timeout=120_000)
                        out.setdefault(f"{nb} {mode}: first widget", []).append(time.monotonic() - t0)
                        if nb == "annotate":
                            wait_canvas_drawn(page, timeout_ms=120_000)
                            out.setdefault(f"{nb} {mode}: canvas drawn", []).append(time.monotonic() - t0)
                        context.close()
    return out


def voila_rows(repeat: int) -> list[Row]:
    t = {k: statistics.median(v) for k, v in voila_times(repeat).items()}
    note = f"median of {repeat}; page open -> visible in headless Chromium"
    rows = []
    for mode, goal in (("cold", "<= 2.0"), ("preheated", "<= 1.5")):
        ref = t[f"reference {mode}: first widget"]
        rows.append(
            Row(
                f"Voilà annotate dashboard, {mode}: first widget",
                f"{t[f'annotate {mode}: first widget']:.1f} s",
                f"{ref:.1f} s (one-button notebook, same server)",
                t[f"annotate {mode}: first widget"] / ref,
                goal,
                note,
            )
        )
        rows.append(
            Row(
                f"Voilà annotate dashboard, {mode}: canvas drawn",
                f"{t[f'annotate {mode}: canvas drawn']:.1f} s",
                f"{ref:.1f} s (one-button notebook, same server)",
                t[f"annotate {mode}: canvas drawn"] / ref,
                None,
                note,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15, help="fresh processes per command-line case")
    ap.add_argument("--voila-repeat", type=int, default=2, help="servers per Voilà mode")
    ap.add_argument("--no-voila", action="store_true", help="skip the Voilà / Chromium part")
    ap.add_argument("--json", type=Path, help="also write the rows here (for run_all.py)")
    args = ap.parse_args(argv)
    rows = cli_rows(args.repeat)
    if not args.no_voila:
        from tests.browser import missing

        reason = missing("voila")
        if reason:
            print(f"Voilà part skipped: {reason}")
        else:
            rows += voila_rows(args.voila_repeat)
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
