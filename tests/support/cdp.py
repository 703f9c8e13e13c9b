"""Real headless Chromium driven through the DevTools protocol, for the browser tests.

Chromium talks the protocol over two pipes (`--remote-debugging-pipe`: it reads commands on
fd 3 and writes answers on fd 4, each a JSON text ended by NUL), so no WebSocket library and
no debugging port are needed. Only what the tests use: open a page in its own tab, evaluate
script in it, press keys, emulate a width and a colour scheme, take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
ANSWER_S = 60.0
LOAD_S = 30.0


class BrowserError(RuntimeError):
    pass


class Browser:
    """One Chromium process with a private profile; closed (and waited for) by `close`."""

    def __init__(self, profile: Path) -> None:
        to_chromium_r, self._to_chromium = os.pipe()
        self._from_chromium, from_chromium_w = os.pipe()

        def as_fds_3_and_4() -> None:
            # Moved out of the way first, so that neither lands on the other's target.
            read_fd = fcntl.fcntl(to_chromium_r, fcntl.F_DUPFD, 10)
            write_fd = fcntl.fcntl(from_chromium_w, fcntl.F_DUPFD, 11)
            os.dup2(read_fd, 3)
            os.dup2(write_fd, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=as_fds_3_and_4,
            pass_fds=(3, 4),
        )
        os.close(to_chromium_r)
        os.close(from_chromium_w)
        self._answers: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._from_chromium, 1 << 16)
            if not chunk:
                break
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        waiting = self._answers.get(message["id"])
                    if waiting is not None:
                        waiting.put(message)
        with self._lock:
            for waiting in self._answers.values():
                waiting.put({"error": {"message": "chromium closed its pipe"}})

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """One command; its result, or BrowserError with Chromium's message."""
        with self._lock:
            self._next_id += 1
            id_ = self._next_id
            answer: queue.Queue = queue.Queue()
            self._answers[id_] = answer
        command: dict[str, Any] = {"id": id_, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_chromium, json.dumps(command).encode() + b"\0")
        try:
            message = answer.get(timeout=ANSWER_S)
        except queue.Empty:
            raise BrowserError(f"no answer to {method} within {ANSWER_S} s") from None
        finally:
            with self._lock:
                del self._answers[id_]
        if "error" in message:
            raise BrowserError(f"{method}: {message['error'].get('message')}")
        return message["result"]

    def tab(self) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Tab(self, session["sessionId"])

    def close(self) -> None:
        # Chromium may close the pipe before it answers; the wait below is what counts.
        with contextlib.suppress(BrowserError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        finally:
            os.close(self._to_chromium)
            self._reader.join(timeout=5)
            os.close(self._from_chromium)
            if self.process.stderr:
                self.process.stderr.close()


class Tab:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        # Headless tabs have no window focus; without it no element shows :focus-visible.
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def emulate(self, width: int, height: int, dark: bool, mobile: bool = False) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        scheme = "dark" if dark else "light"
        self.send(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    def open(self, url: str) -> None:
        """Navigate and wait until the page has loaded."""
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + LOAD_S
        while True:
            ready = self.evaluate("document.readyState + ' ' + location.href")
            if ready == f"complete {url}":
                return
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load within {LOAD_S} s (last: {ready})")
            time.sleep(0.05)

    def press(self, key: str, code: int, text: str = "") -> None:
        """A key pressed and released; `text` is what it types (Enter's "\r"), which is
        what makes Chromium activate the focused element."""
        for kind in ("keyDown", "keyUp"):
            event = {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}
            if text and kind == "keyDown":
                event["text"] = text
            self.send("Input.dispatchKeyEvent", event)

    def screenshot(self, path: Path) -> None:
        """The whole page (not just the viewport) as PNG."""
        data = self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
