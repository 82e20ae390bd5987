"""What every real-browser test shares: Debian's Chromium and the flags that work on these machines
(../shared/BROWSER.md): Playwright's own browser download does not work here."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
