"""Debian's Chromium, headless, for the tests that look at pages in a real browser: the DOM
it built from a page, and screenshots at a width and colour scheme."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # Let timers and error events (img onerror, setTimeout) run before the DOM is dumped.
    "--virtual-time-budget=3000",
]
# Blink's preferredColorScheme setting: what `prefers-color-scheme` matches.
SCHEMES = {"dark": 0, "light": 1}


def _run(args: list[str], page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "chromium is not installed (deploy/dev/system-packages.sh)"
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed on {page}: {result.stderr[-2000:]}"
    return result


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM Chromium built from the page (after its load), serialised."""
    return _run(["--dump-dom"], page, profile).stdout


def screenshot(page: Path, out: Path, profile: Path, width: int, height: int, scheme: str) -> Path:
    """A PNG of the page's first `height` pixels at `width`, light or dark."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _run(
        [
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            f"--blink-settings=preferredColorScheme={SCHEMES[scheme]}",
        ],
        page,
        profile,
    )
    assert out.is_file(), f"chromium wrote no screenshot of {page} to {out}"
    return out
