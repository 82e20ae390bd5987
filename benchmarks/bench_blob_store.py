"""Where the image store keeps an image, by size: a row of ``blobs/small.sqlite`` or a file
(``workbench.data.blobs.SMALL_BYTES`` is set from this).

For each size, the same images (distinct random bytes) are stored into a fresh store twice, once with every
image a file and once with every image a row (``SMALL_BYTES`` set past them or below them), in runs of 64 as
an import's worker stores them (``put_many``, unflushed, then one ``sync``); then every image is read back
(``get``, from the page cache). Printed per size: CPU per image (this process: user + system, which is
where creating a file costs), wall per image, and the ratio rows / files (below 1: the table is cheaper).

    python benchmarks/bench_blob_store.py [--sizes 2000 16000 32768 65536 262144] [--repeat 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.rows import Row, table, write_rows  # noqa: E402
from workbench.data import blobs  # noqa: E402


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def measure(size: int, n: int, as_rows: bool, root: Path) -> dict[str, float]:
    """Store ``n`` images of ``size`` bytes into a fresh store at ``root``, then read them back."""
    images = [os.urandom(size) for _ in range(n)]
    items = [(data, blobs.sha256_bytes(data)) for data in images]
    saved = blobs.SMALL_BYTES
    blobs.SMALL_BYTES = size if as_rows else size - 1  # type: ignore[misc]  # (this benchmark's switch)
    try:
        store = blobs.BlobStore(root)
        wall, cpu = time.perf_counter(), _cpu()
        for k in range(0, n, 64):
            store.put_many(items[k:k + 64])
        store.sync()
        write_wall, write_cpu = time.perf_counter() - wall, _cpu() - cpu
        wall, cpu = time.perf_counter(), _cpu()
        for _data, digest in items:
            store.get(digest)
        read_wall, read_cpu = time.perf_counter() - wall, _cpu() - cpu
        files = sum(1 for p in root.glob("??/*"))
        store.close()
    finally:
        blobs.SMALL_BYTES = saved  # type: ignore[misc]
    if files != (0 if as_rows else n):
        raise RuntimeError(f"expected {0 if as_rows else n} image files, found {files}")
    return {"write_cpu": write_cpu / n, "write_wall": write_wall / n, "read_cpu": read_cpu / n,
            "read_wall": read_wall / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2_000, 16_000, blobs.SMALL_BYTES, 65_536, 262_144])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_blob_store_"))
    rows = []
    try:
        for size in args.sizes:
            n = max(200, min(4000, 80_000_000 // size))
            best: dict[str, dict[str, float]] = {}
            for r in range(args.repeat):
                for kind in ("files", "rows"):  # taken in turn: the machine's load weighs on both alike
                    got = measure(size, n, kind == "rows", tmp / f"{kind}_{size}_{r}")
                    shutil.rmtree(tmp / f"{kind}_{size}_{r}")
                    best[kind] = {k: min(v, best.get(kind, {}).get(k, float("inf"))) for k, v in got.items()}
            f, t = best["files"], best["rows"]
            print(f"{size:>8} B x {n:>5}: write cpu us/image files {f['write_cpu'] * 1e6:6.0f} rows "
                  f"{t['write_cpu'] * 1e6:6.0f} (wall {f['write_wall'] * 1e6:6.0f} / {t['write_wall'] * 1e6:6.0f}); "
                  f"read {f['read_wall'] * 1e6:5.0f} / {t['read_wall'] * 1e6:5.0f} us", flush=True)
            small = size <= blobs.SMALL_BYTES
            where = "rows (at or under SMALL_BYTES)" if small else "files (over SMALL_BYTES)"
            rows.append(Row(f"store {n:,} images of {size:,} B, CPU per image: table rows over files; kept as {where}",
                            f"{t['write_cpu'] * 1e6:.0f} us", f"files {f['write_cpu'] * 1e6:.0f} us",
                            t["write_cpu"] / f["write_cpu"], "<= 0.5" if small else None,
                            "below 1: rows are cheaper"))
            rows.append(Row(f"read back {n:,} images of {size:,} B, wall per image: table rows over files",
                            f"{t['read_wall'] * 1e6:.0f} us", f"files {f['read_wall'] * 1e6:.0f} us",
                            t["read_wall"] / f["read_wall"], "<= 1.25" if small else None,
                            "below 1: rows are faster"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
