"""A real headless Chromium, driven over the DevTools protocol with the standard library only.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages from file
descriptor 3 and writes them to file descriptor 4, each a JSON object ended by a NUL byte
(no websocket, no port). :meth:`Browser.load` opens a file in a fresh tab and records what the
page printed to the console, threw, logged as an error and requested over the network.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Debian's package installs /usr/bin/chromium
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")


def find() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    """A loaded tab: its session and everything it reported while loading."""

    browser: Browser
    target: str
    session: str
    events: list[dict] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, error log entries (failed loads,
        blocked resources) and any request that is not for a ``file:`` or ``data:`` URL."""
        out = []
        for ev in self.events:
            method, params = ev["method"], ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                out.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                out.append(f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".rstrip())
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:")):
                    out.append(f"network request: {url}")
        return out

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self.browser.call("Runtime.evaluate", session=self.session, expression=expression,
                                  returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"evaluate {expression[:60]!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, clip: dict | None = None) -> bytes:
        """A PNG of the viewport, or of ``clip`` ({x, y, width, height, scale}, page pixels)."""
        import base64

        params = {"format": "png", "captureBeyondViewport": clip is not None}
        if clip is not None:
            params["clip"] = clip
        return base64.b64decode(self.browser.call("Page.captureScreenshot", session=self.session, **params)["data"])

    def close(self) -> None:
        """Close the tab."""
        self.browser.call("Target.closeTarget", targetId=self.target)


class Browser:
    """One headless Chromium process; use as a context manager."""

    def __init__(self, executable: str, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="riskengine-chromium-")
        self._stderr = open(Path(self._profile) / "stderr.log", "wb")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def at_3_and_4() -> None:  # in the child, before exec: the protocol's fixed descriptors
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [executable, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                "--no-sandbox",  # containers and root have no user namespaces for the sandbox
                "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--mute-audio", "about:blank"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr, preexec_fn=at_3_and_4, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._pending: list[dict] = []  # events read while waiting for a reply
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except BaseException:  # a browser that never answers: no process, pipes or profile left behind
            self.close()
            raise

    # ----------------------------------------------------------------------- protocol
    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"chromium: no message within {self.timeout_s} s ({self._log_tail()})")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium exited ({self._log_tail()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send a command (to the browser, or to a page's ``session``) and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"chromium: {method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._pending.append(reply)

    def _wait(self, method: str, session: str) -> list[dict]:
        """Every event of ``session`` up to and including the first ``method`` event."""
        deadline = time.monotonic() + self.timeout_s
        seen = []
        while True:
            ev = self._pending.pop(0) if self._pending else self._read(deadline)
            if ev.get("sessionId") != session or "method" not in ev:
                continue
            seen.append(ev)
            if ev["method"] == method:
                return seen

    def _drain(self, session: str, quiet_s: float = 0.2) -> list[dict]:
        """Events of ``session`` that arrive until none has come for ``quiet_s``."""
        seen = [ev for ev in self._pending if ev.get("sessionId") == session]
        self._pending = [ev for ev in self._pending if ev.get("sessionId") != session]
        while True:
            try:
                ev = self._read(time.monotonic() + quiet_s)
            except TimeoutError:
                return seen
            if ev.get("sessionId") == session and "method" in ev:
                seen.append(ev)

    # -------------------------------------------------------------------------- pages
    def load(self, path: Path, width: int = 1280, height: int = 900) -> Page:
        """Open ``path`` in a new tab of ``width`` x ``height`` CSS pixels and wait for its
        load event (and a short quiet spell for late console messages)."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", session=session, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self._drain(session, 0.05)  # about:blank's own events
        self.call("Page.navigate", session=session, url=Path(path).resolve().as_uri())
        events = self._wait("Page.loadEventFired", session)
        events += self._drain(session)
        return Page(self, target, session, events)

    def _log_tail(self) -> str:
        self._stderr.flush()
        text = (Path(self._profile) / "stderr.log").read_text(errors="replace").strip().splitlines()
        return "stderr: " + " | ".join(text[-3:]) if text else "no stderr"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close")
            except (RuntimeError, TimeoutError, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
