"""Giving memory back when a view is no longer shown: close its widget tree, collect, trim the heap.

ipywidgets keeps every open widget in a registry for the life of the kernel, so a dropped view stays in
memory (with its images, figures and pipelines) until it is ``close()``-d. :func:`close_tree` closes a view
and every widget it holds; :func:`trim` runs the garbage collector and asks glibc to return freed heap
pages to the system (``malloc_trim``; elsewhere it only collects). Modules once imported stay imported:
what a closed view frees is its data, not the libraries it loaded. :func:`rss_mb` reads the process's
resident memory (Linux ``/proc``), for the benchmark and the tests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from typing import Any

__all__ = ["close_tree", "trim", "rss_mb"]

_libc: Any = None


def close_tree(view: Any) -> int:
    """Close ``view`` and every widget reachable from it (its children, layouts and styles, and widgets held
    in its attributes); returns how many were closed."""
    from ipywidgets import Widget

    seen: set[int] = set()
    stack = [view]
    closed = 0
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        values = list(getattr(w, "__dict__", {}).values())
        if isinstance(w, Widget):  # children, layout, style...: trait values
            values += list(w._trait_values.values())
        for value in values:
            if isinstance(value, Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, Widget))
        if isinstance(w, Widget) and w.comm is not None:
            w.close()
            closed += 1
    return closed


def trim() -> bool:
    """Collect garbage and return freed heap pages to the system where glibc allows; True if it trimmed."""
    global _libc
    gc.collect()
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
        if _libc is not False and not hasattr(_libc, "malloc_trim"):
            _libc = False  # not glibc (musl, macOS)
    if _libc is False:
        return False
    return bool(_libc.malloc_trim(0))


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux; 0.0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
