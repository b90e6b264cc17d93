"""Where the browser tests find Chromium, and the flags they start it with.

Shared by tests/test_browser.py (the built book) and tests/test_lab_myst.py (JupyterLab).
Debian's package is used (``apt-get install chromium``), not Playwright's download.
"""

import os
import shutil
from pathlib import Path

#: Headless, no sandbox (CI runs as root), and nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """``$CHROMIUM``, else ``chromium`` on the PATH, else ``/usr/bin/chromium``; None if
    none of them is an executable file."""
    for candidate in (
        os.environ.get("CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
