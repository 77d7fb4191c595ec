"""Headless Chromium driven over the DevTools protocol (websocket-client): open a page,
collect console errors, exceptions and network requests, evaluate JavaScript, and
take a full-page screenshot.

``python -m tests.maps.browser PAGE.html OUT.png`` saves a screenshot (docs use it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--remote-debugging-port=0"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Page:
    """One tab. ``errors`` and ``requests`` fill while events are read."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.TemporaryDirectory()
        # its own process group: closing ends the renderers and helpers too, not only the browser
        self._process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port = self._port(Path(self._profile.name) / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            target = next(t for t in json.load(answer) if t["type"] == "page")
        self._ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)
        self._id = 0
        self.errors: list[str] = []
        self.requests: list[str] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _port(self, path: Path) -> int:
        for _ in range(200):
            if path.exists() and path.read_text().strip():
                return int(path.read_text().splitlines()[0])
            if self._process.poll() is not None:
                raise RuntimeError("chromium exited before it opened the DevTools port")
            time.sleep(0.05)
        raise RuntimeError("chromium did not open the DevTools port")

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def _read(self) -> dict[str, Any]:
        message = json.loads(self._ws.recv())
        self._event(message)
        return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = self._read()
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str, timeout: float = 60) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while self._read().get("method") != "Page.loadEventFired":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, out: Path, width: int = 1280) -> Path:
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.evaluate("new Promise(r => setTimeout(r, 800))")  # plotly redraws at the new size
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        """Close the browser, wait until every process of it has exited (a helper still
        writing into the profile made its removal fail), then remove the profile."""
        try:
            self.call("Browser.close")
        except (websocket.WebSocketException, OSError):
            pass  # already gone
        self._ws.close()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=20)
        _end_group(self._process.pid)
        for attempt in range(20):
            try:
                shutil.rmtree(self._profile.name)
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == 19:
                    raise
                time.sleep(0.25)
        self._profile.cleanup()  # nothing left: only marks the directory as removed


def _end_group(group: int, patience: float = 10) -> None:
    """Stop every process left in ``group`` (SIGTERM, then SIGKILL) and wait for it."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


if __name__ == "__main__":
    binary = chromium()
    if binary is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    page = Page(binary)
    try:
        page.open(Path(sys.argv[1]).resolve().as_uri())
        print(page.screenshot(Path(sys.argv[2])), page.errors)
    finally:
        page.close()
