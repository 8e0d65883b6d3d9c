"""A small headless-Chromium driver for end-to-end tests.

It starts ``/usr/bin/chromium`` in headless mode with a throw-away profile,
talks to it over the Chrome DevTools protocol with ``websocket-client`` (one
browser-level connection, pages attached in "flat" mode so every command
carries its page's session id) and stops it by the PID it started.

Typical use::

    with Browser() as browser:
        page = browser.new_page("http://127.0.0.1:8000/")
        page.wait_for("document.readyState === 'complete'")
        assert page.evaluate("1 + 1") == 2
        page.screenshot("/tmp/page.png")

Every wait takes a deadline and raises :class:`BrowserError` quoting what it
waited for, the page's URL and the last console lines, so a failing test says
why.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import websocket

from tests.support.waiting import wait_until

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """The browser could not start, a command failed, or a wait timed out."""


class Browser:
    """One headless Chromium process and its DevTools connection.

    Args:
        executable: path of the Chromium binary (or its wrapper script).
        window_size: ``(width, height)`` of new pages, in CSS pixels.
        startup_timeout: seconds to wait for the DevTools endpoint.
    """

    def __init__(self, executable: str = CHROMIUM, window_size: tuple[int, int] = (1200, 800),
                 startup_timeout: float = 20.0) -> None:
        self.executable = executable
        self.window_size = window_size
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._ws: websocket.WebSocket | None = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.pages: list[Page] = []

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Browser:
        """Start Chromium and connect to it; returns ``self``.

        Raises:
            BrowserError: the binary is missing or did not open its DevTools
                endpoint within ``startup_timeout``.
        """
        if not os.path.exists(self.executable):
            raise BrowserError(f"Chromium not found at {self.executable!r}; install it "
                               "(apt-get install chromium) or pass executable=")
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        width, height = self.window_size
        args = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}", "about:blank"]
        # A new session makes the browser the leader of its own process group,
        # so close() can also reach the renderer and zygote children it forks.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        url = self._wait_for_endpoint()
        self._ws = websocket.create_connection(url, timeout=self.startup_timeout,
                                               suppress_origin=True)
        return self

    def _wait_for_endpoint(self) -> str:
        """Return the browser's DevTools WebSocket URL once Chromium has written it."""
        if self._profile is None or self.process is None:
            raise BrowserError("Browser.start() must run before waiting for its endpoint")
        port_file = Path(self._profile) / "DevToolsActivePort"
        def endpoint() -> str | None:
            if self.process.poll() is not None:
                raise BrowserError(f"Chromium exited with status {self.process.returncode} "
                                   f"before opening DevTools ({self.executable})")
            try:
                lines = port_file.read_text().split("\n")
            except FileNotFoundError:
                return None
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
            return None

        try:
            return wait_until(endpoint, self.startup_timeout, what="Chromium's DevTools port", interval=0.05)
        except AssertionError:
            self.close()
            raise BrowserError(f"Chromium did not open its DevTools port within {self.startup_timeout}s") from None

    def close(self) -> None:
        """Close every page, stop Chromium (politely, then by PID) and delete the profile."""
        if self._ws is not None:
            try:
                self._ws.send(json.dumps({"id": self._new_id(), "method": "Browser.close"}))
            except (OSError, websocket.WebSocketException):
                pass  # already gone: the kill below still runs
            try:
                self._ws.close()
            except (OSError, websocket.WebSocketException):
                pass
            self._ws = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                logger.warning("Chromium (pid %s) did not exit after SIGKILL", self.process.pid)
            self.process = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- protocol ----------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None,
             timeout: float = 15.0) -> dict[str, Any]:
        """Send one DevTools command and return its ``result``.

        Events that arrive meanwhile are kept for :meth:`Page.console` and
        friends.

        Raises:
            BrowserError: the command failed or no answer came within ``timeout``.
        """
        if self._ws is None:
            raise BrowserError(f"browser is not running (sending {method})")
        command: dict[str, Any] = {"id": self._new_id(), "method": method, "params": params or {}}
        if session_id is not None:
            command["sessionId"] = session_id
        self._ws.send(json.dumps(command))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer to {method} within {timeout}s")
            reply = self._read(remaining)
            if reply is None:
                continue
            if reply.get("id") == command["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """Read one frame (``None`` on timeout); events are stored, not returned."""
        if self._ws is None:
            raise BrowserError("browser is not running")
        self._ws.settimeout(max(timeout, 0.01))
        try:
            frame = self._ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        message = json.loads(frame)
        if "id" not in message:
            self._events.append(message)
            del self._events[:-2000]  # bounded: long tests must not grow without end
        return message

    def pump(self, timeout: float) -> None:
        """Collect pending events for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if self._read(remaining) is None:
                return

    def events(self, session_id: str, method: str) -> list[dict[str, Any]]:
        """Return the stored events of one page with the given method name."""
        return [e.get("params", {}) for e in self._events
                if e.get("sessionId") == session_id and e.get("method") == method]

    # -- pages -------------------------------------------------------------

    def new_page(self, url: str = "about:blank", timeout: float = 15.0) -> Page:
        """Open a new tab, wait until ``url`` has loaded, and return its :class:`Page`."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain, session_id=session)
        self.pages.append(page)
        if url != "about:blank":
            page.goto(url, timeout=timeout)
        return page


class Page:
    """One browser tab. Made by :meth:`Browser.new_page`."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id

    def _send(self, method: str, params: dict[str, Any] | None = None,
              timeout: float = 15.0) -> dict[str, Any]:
        return self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    def goto(self, url: str, timeout: float = 15.0) -> None:
        """Navigate to ``url`` (following redirects) and wait until the new document has loaded.

        Raises:
            BrowserError: the navigation failed (e.g. connection refused) or
                the load did not complete within ``timeout``.
        """
        marker = self._mark_document()
        result = self._send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        self._wait_for_new_document(marker, timeout, f"{url} to load")

    def reload(self, timeout: float = 15.0) -> None:
        """Reload the page and wait until the new document has loaded."""
        marker = self._mark_document()
        self._send("Page.reload", {"ignoreCache": True})
        self._wait_for_new_document(marker, timeout, "the reload to finish")

    def _mark_document(self) -> str:
        # A flag on the current document: gone once another document replaced it.
        marker = f"__driver_marker_{time.monotonic_ns()}"
        self.evaluate(f"window.{marker} = true")
        return marker

    def _wait_for_new_document(self, marker: str, timeout: float, what: str) -> None:
        self.wait_for(f"!window.{marker} && document.readyState === 'complete'", timeout=timeout, what=what)

    def evaluate(self, expression: str, await_promise: bool = True, timeout: float = 15.0) -> Any:
        """Evaluate a JavaScript expression in the page and return its JSON value.

        Raises:
            BrowserError: the expression threw (the JS error text is quoted).
        """
        result = self._send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": await_promise,
            "userGesture": True,
        }, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error evaluating {expression!r}: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, what: str | None = None,
                 interval: float = 0.05) -> Any:
        """Evaluate ``expression`` until it is truthy and return its value.

        Raises:
            BrowserError: still falsy when ``timeout`` expires; the message
                names the condition, the URL and the last console lines.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as error:
                # A navigation in progress destroys the context mid-evaluate.
                if "context" not in str(error).lower() and "JavaScript error" not in str(error):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() >= deadline:
                try:
                    url = self.evaluate("location.href")
                except BrowserError:
                    url = "?"
                console = "\n  ".join(self.console()[-10:]) or "(none)"
                raise BrowserError(f"timed out after {timeout}s waiting for {what or expression} "
                                   f"on {url}\n  console:\n  {console}")
            # Polling the page is the only way to observe it; pump events meanwhile.
            self.browser.pump(interval)

    def console(self) -> list[str]:
        """Return the page's console lines and uncaught exceptions seen so far."""
        lines = []
        for event in self.browser._events:
            if event.get("sessionId") != self.session_id:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                lines.append(f"{params.get('type')}: {args}")
            elif event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                lines.append("exception: " + str(details.get("exception", {}).get("description")
                                                 or details.get("text")))
        return lines

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG of the visible page to ``path`` and return the path."""
        data = self._send("Page.captureScreenshot", {"format": "png"})["data"]
        target = Path(path)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        """Close this tab."""
        self.browser.send("Target.closeTarget", {"targetId": self.target_id})
        if self in self.browser.pages:
            self.browser.pages.remove(self)
