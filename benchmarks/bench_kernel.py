"""Dashboard kernel memory: the resident size (RSS) of a real Jupyter kernel running ``WorkbenchApp``, tab by
tab and after training a small run, against today's path in the same script.

    python benchmarks/bench_kernel.py [--count 60] [--epochs 5] [--json OUT]

Two fresh ipykernel processes (started with jupyter_client, as Voilà starts them) run the same steps over
the same workspace (a digits sample of ``--count`` images):

* reference -- the path before issue 17: training in a thread of the kernel (``train_in_kernel=True``),
  every tab's view kept once built (``release_hidden=False``), albumentations imported as it was then
  (with torch, for its ``pytorch`` sub-package);
* now -- the defaults: training in a child process, the Dataset / Augment views closed when their tab is
  left (widgets closed, ``gc``, glibc ``malloc_trim``).

Steps: the app built (the page opened); the Dataset tab opened; the Augment tab opened; back to the Annotate
tab; the Train tab's run (``TrainConfig(epochs=--epochs)``, the dashboard's default model) trained,
evaluated and mined, and its views shown. RSS is read by the kernel itself from ``/proc/self/statm`` after
each step; the peak is the kernel's ``ru_maxrss``; the training child's peak is ``RUSAGE_CHILDREN``. Python
keeps the modules a tab imported (plotly, albumentations, OpenCV) for the kernel's life: what leaving a tab
gives back is its data (figures, images, draws), which the rows show as measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.rows import Row, table, write_rows  # noqa: E402

GOAL_MB = 300.0
STEPS = ("page opened", "Dataset tab", "Augment tab", "back to Annotate", "after training")

SETUP = """
import json, os, resource, sys
sys.path.insert(0, {repo!r})
from workbench import Workspace
from workbench.train.config import TrainConfig
from workbench.widgets import WorkbenchApp
from workbench.widgets.memory import rss_mb
def _report(step):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'plotly', 'albumentations', 'cv2'}})
    print('ROW ' + json.dumps({{'step': step, 'rss': rss_mb(), 'peak': peak, 'child_peak': child,
                               'heavy': heavy}}))
ws = Workspace({home!r})
app = WorkbenchApp(ws.dataset('digits'), train_config=TrainConfig(epochs={epochs}),
                   train_in_kernel={reference}, release_hidden={release})
_report('page opened')
"""
STEP_CODE = {
    "Dataset tab": "app.tabs.selected_index = 1; _ = app.overview",
    "Augment tab": "app.tabs.selected_index = 2; _ = app.grid",
    "back to Annotate": "app.tabs.selected_index = 0",
    "after training": (
        "app.tabs.selected_index = 3\napp.start_training(wait=True)\n"
        "assert 'finished' in app.train_status.value, app.train_status.value"
    ),
}

# before issue 17 the Augment tab's plain `import albumentations` also imported torch (its pytorch sub-package)
REFERENCE_BEFORE = {"Augment tab": "import albumentations\n"}


def run_kernel(home: Path, epochs: int, reference: bool) -> list[dict]:
    """The steps in a fresh ipykernel; one dict per step (rss, peak, child_peak in MiB; heavy modules)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    rows: list[dict] = []
    errors: list[str] = []

    def hook(msg: dict) -> None:
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            for line in content.get("text", "").splitlines():
                if line.startswith("ROW "):
                    rows.append(json.loads(line[4:]))
        elif msg.get("msg_type") == "error":
            errors.append("\n".join(content.get("traceback", [])))

    try:
        code = SETUP.format(repo=str(REPO), home=str(home), epochs=epochs, reference=reference,
                            release=not reference)
        kc.execute_interactive(code, timeout=300, output_hook=hook)
        for step in STEPS[1:]:
            before = REFERENCE_BEFORE.get(step, "") if reference else ""
            kc.execute_interactive(f"{before}{STEP_CODE[step]}\n_report({step!r})", timeout=1800,
                                   output_hook=hook)
            if errors:
                raise RuntimeError(errors[-1])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=60, help="digits images in the workspace")
    p.add_argument("--epochs", type=int, default=5, help="epochs of the Train tab's run")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from workbench import Workspace
    from workbench.data.transfer import add_sample

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, reference in (("reference", True), ("now", False)):  # one workspace each: same start
            home = Path(tmp) / name
            with Workspace(home) as ws:
                add_sample(ws, "digits", "digits", count=args.count, seed=0)
            t0 = time.monotonic()
            results[name] = {r["step"]: r for r in run_kernel(home, args.epochs, reference)}
            print(f"{name}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    ref, now = results["reference"], results["now"]
    what = f"{args.count} digits, {args.epochs} epochs"
    rows = []
    for step in STEPS:
        rows.append(Row(
            f"dashboard kernel RSS: {step}",
            f"{now[step]['rss']:.0f} MB",
            f"{ref[step]['rss']:.0f} MB (training in the kernel, tabs kept)",
            now[step]["rss"] / ref[step]["rss"],
            None,
            "heavy modules in the kernel: " + (", ".join(now[step]["heavy"]) or "none")
            + " (reference: " + (", ".join(ref[step]["heavy"]) or "none") + ")",
        ))
    end = now["after training"]
    rows.append(Row(
        "dashboard kernel RSS after every tab and a training run",
        f"{end['rss']:.0f} MB (peak {end['peak']:.0f} MB)",
        f"target < {GOAL_MB:.0f} MB; reference {ref['after training']['rss']:.0f} MB "
        f"(peak {ref['after training']['peak']:.0f} MB)",
        end["peak"] / GOAL_MB,
        "<= 1",
        f"{what}; ratio: the kernel's peak against the target; the training child's peak RSS "
        f"{end['child_peak']:.0f} MB (freed when it exits)",
    ))
    freed_now = now["Augment tab"]["rss"] - now["back to Annotate"]["rss"]
    freed_ref = ref["Augment tab"]["rss"] - ref["back to Annotate"]["rss"]
    rows.append(Row(
        "RSS given back on leaving the Dataset + Augment tabs",
        f"{freed_now:.0f} MB",
        f"{freed_ref:.0f} MB (views kept)",
        None,
        None,
        "the modules they imported stay loaded; what is freed is their figures, images and draws",
    ))
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
