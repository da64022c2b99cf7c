"""Debian's Chromium, headless and cut off from any network, driven over the DevTools protocol.

The browser runs in a network namespace of its own (``unshare --net``: no interface but a
loopback that is down) when the machine allows one, and always behind a proxy that refuses
everything with every host name unresolvable, so that nothing it is asked to load can reach
another machine. It talks DevTools over two pipes (``--remote-debugging-pipe``), which need no
socket and so work inside the namespace; every request the page makes is recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
# The flags a closed machine needs (no sync, component updates or other background fetches),
# and the ones that make any fetch fail fast: a proxy on the discard port, which nothing
# serves, and no name resolution at all.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1400,2000",
    "--remote-debugging-pipe",
)
NAMESPACES = (("unshare", "--net"), ("unshare", "--user", "--map-root-user", "--net"))


def find_chromium() -> str | None:
    """The Chromium executable on PATH, if any."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    return None


def network_namespace() -> tuple[str, ...]:
    """A command prefix that runs a program with no network, or ``()`` where none works."""
    for prefix in NAMESPACES:
        if shutil.which(prefix[0]) is None:
            continue
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return ()


class BrowserError(Exception):
    """The browser died, or did not answer in time."""


@dataclass
class PageVisit:
    """What happened while a page was open."""

    requests: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class Chromium:
    """One headless browser; ``visit`` a URL, then ``evaluate`` JavaScript in the page."""

    def __init__(self, executable: str, profile: Path, isolation: tuple[str, ...]) -> None:
        self.isolation = isolation
        self.log_path = profile.parent / f"{profile.name}.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads DevTools commands on fd 3 and writes on fd 4: move our ends high,
        # so that the shell's redirections cannot clobber one with the other.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        command = [
            *isolation,
            "bash",  # dash takes single-digit descriptors only
            "-c",
            script,
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(child_in, child_out),
            )
        os.close(child_in)
        os.close(child_out)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self._send("Browser.close")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self, method: str, params: dict[str, Any] | None = None, session: bool = False
    ) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer from the browser in time; its log: {self.log_path}")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise BrowserError(f"the browser exited; its log: {self.log_path}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        request_id = self._send(method, params, session=session and self._session is not None)
        deadline = time.monotonic() + 30
        while True:
            message = self._read_message(deadline)
            if message.get("id") == request_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def visit(self, url: str) -> None:
        """Open ``url`` in a new tab, recording its requests, exceptions and console errors."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self._session = attached["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def recorded(self) -> PageVisit:
        """What the page has done so far: requests, uncaught exceptions, console errors."""
        visit = PageVisit()
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                visit.exceptions.append(
                    details.get("exception", {}).get("description") or details.get("text", "")
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                visit.console_errors.append(
                    " ".join(
                        str(arg.get("value", arg.get("description"))) for arg in params["args"]
                    )
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                visit.console_errors.append(params["entry"]["text"])
        return visit

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate ``expression`` until it is truthy; its last value either way."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)
