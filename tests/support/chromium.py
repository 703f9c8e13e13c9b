"""Debian's Chromium, headless, for the tests that look at pages in a real browser: the DOM
it built from a page, and screenshots at a width and colour scheme, written for people to
look at under test-artifacts/screenshots/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO

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
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# Blink's preferredColorScheme setting: what `prefers-color-scheme` matches.
SCHEMES = {"dark": 0, "light": 1}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def _address(target: Path | str) -> str:
    """A page file as a file: URL; anything else is a URL already."""
    return target.as_uri() if isinstance(target, Path) else target


def _run(target: Path | str, profile: Path, *args: str) -> str:
    assert Path(CHROMIUM).exists(), "chromium is not installed (deploy/dev/system-packages.sh)"
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, _address(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed on {target}: {result.stderr[-2000:]}"
    return result.stdout


def dump_dom(target: Path | str, profile: Path) -> str:
    """The DOM Chromium built from the page (a file or a URL) after its load, serialised."""
    return _run(target, profile, "--dump-dom")


def screenshot(
    target: Path | str, profile: Path, name: str, width: int, height: int, scheme: str
) -> Path:
    """A PNG of the page's first `height` pixels at `width`, light or dark:
    test-artifacts/screenshots/<name>-<width>-<scheme>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = SCREENSHOTS / f"{name}-{width}-{scheme}.png"
    out.unlink(missing_ok=True)
    _run(
        target,
        profile,
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        f"--blink-settings=preferredColorScheme={SCHEMES[scheme]}",
    )
    assert out.is_file() and out.stat().st_size > 0, f"chromium wrote no screenshot of {target}"
    return out
