"""Headless Chromium for the browser tests: a page's DOM after it loaded, and screenshots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.paths import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# Blink's preferredColorScheme: what `prefers-color-scheme` answers.
THEMES = {"light": 1, "dark": 0}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def _run(url: str, profile: Path, *args: str) -> str:
    assert shutil.which(CHROMIUM), "chromium is not installed (deploy/dev/system-packages.sh)"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed on {url}: {result.stderr[-2000:]}"
    return result.stdout


def dump_dom(url: str, profile: Path) -> str:
    return _run(url, profile, "--dump-dom")


def screenshot(url: str, profile: Path, name: str, width: int, height: int, theme: str) -> Path:
    """`test-artifacts/screenshots/<name>-<width>-<theme>.png`, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}-{width}-{theme}.png"
    target.unlink(missing_ok=True)
    _run(
        url,
        profile,
        f"--screenshot={target}",
        f"--window-size={width},{height}",
        f"--blink-settings=preferredColorScheme={THEMES[theme]}",
    )
    assert target.stat().st_size > 0, f"no screenshot of {url}"
    return target
