"""Debian's Chromium, headless and cut off from any network, driven over the DevTools protocol.

The browser runs in a network namespace of its own (``unshare --net``: no interface but a
loopback that is down) when the machine allows one, and always behind a proxy that refuses
everything with every host name unresolvable, so that nothing it is asked to load can reach
another machine. It talks DevTools over two pipes (``--remote-debugging-pipe``), which need no
socket and so work inside the namespace; every request the page makes is recorded.

A page served by a local server (``companion``): the server starts inside the browser's
namespace, whose loopback is then brought up, so that 127.0.0.1 is the one address there
and it is theirs alone; 127.0.0.1 alone resolves, and Chromium sends loopback requests past
the proxy. Without a namespace both use the machine's loopback, and only the recorded
requests show where the page went.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.processes import exited

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
    "--window-size=1400,2000",
    "--remote-debugging-pipe",
)
#: no host name resolves; with a companion, 127.0.0.1 is left as it is
NO_NAMES = "--host-resolver-rules=MAP * ~NOTFOUND"
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
NAMESPACES = (("unshare", "--net"), ("unshare", "--user", "--map-root-user", "--net"))
# Brings the namespace's loopback interface up (SIOCGIFFLAGS, SIOCSIFFLAGS with IFF_UP), as
# `ip link set lo up` would without needing iproute2.
LOOPBACK_UP = """
import fcntl, socket, struct
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
"""


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


class Companion:
    """A program started beside the browser, in its network namespace: a server for the
    page. Its stdout and stderr go to ``log``; its pid is written to ``pid_file``."""

    def __init__(self, command: Sequence[str], directory: Path) -> None:
        self.command = list(command)
        self.log = directory / "companion.log"
        self.pid_file = directory / "companion.pid"

    def shell(self) -> str:
        """The shell words that start it in the background and record its pid."""
        return (
            f"{{ {shlex.join(self.command)} >{shlex.quote(str(self.log))} 2>&1 & "
            f"echo $! >{shlex.quote(str(self.pid_file))}; }}"
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pid(self) -> int | None:
        text = self.pid_file.read_text().strip() if self.pid_file.exists() else ""
        return int(text) if text else None

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first match of ``pattern`` in its output; BrowserError if none comes in time
        or it ends first."""
        deadline = time.monotonic() + timeout
        while True:
            if found := re.search(pattern, self.output()):
                return found
            pid = self.pid()
            if time.monotonic() > deadline or (pid is not None and exited(pid, timeout=0)):
                raise BrowserError(f"{self.command[:3]}...: no {pattern!r}: {self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """Ctrl-C, then SIGKILL if it has not ended within ``timeout`` seconds."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
            if not exited(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                exited(pid, timeout)


@dataclass
class PageVisit:
    """What happened while a page was open."""

    requests: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class Chromium:
    """One headless browser; ``visit`` a URL, then ``evaluate`` JavaScript in the page.

    ``companion``: a command (a local server) started first, in the browser's network
    namespace, with that namespace's loopback up; the browser then reaches 127.0.0.1 and
    no other address.
    """

    def __init__(
        self,
        executable: str,
        profile: Path,
        isolation: tuple[str, ...],
        companion: Sequence[str] | None = None,
    ) -> None:
        self.isolation = isolation
        self.log_path = profile.parent / f"{profile.name}.log"
        self.companion = None if companion is None else Companion(companion, profile.parent)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads DevTools commands on fd 3 and writes on fd 4: move our ends high,
        # so that the shell's redirections cannot clobber one with the other.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        script = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        if self.companion is not None:
            up = (
                f"{shlex.quote(sys.executable)} -c {shlex.quote(LOOPBACK_UP)} && "
                if isolation
                else ""
            )
            script = f"{up}{self.companion.shell()} && {script}"
        command = [
            *isolation,
            "bash",  # dash takes single-digit descriptors only
            "-c",
            script,
            executable,
            *FLAGS,
            NO_NAMES if self.companion is None else LOOPBACK_ONLY,
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
        """Ask the browser to quit; kill it if it does not. Stop the companion."""
        if self.companion is not None:
            self.companion.stop()
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

    def mouse(self, kind: str, x: float, y: float, pressed: bool = False) -> None:
        """One mouse event at page coordinates (CSS pixels): ``kind`` is ``mouseMoved``,
        ``mousePressed`` or ``mouseReleased``; ``pressed`` holds the left button down."""
        event: dict[str, Any] = {"type": kind, "x": x, "y": y}
        if pressed or kind != "mouseMoved":
            event.update(button="left", buttons=1 if kind != "mouseReleased" else 0)
        if kind != "mouseMoved":
            event["clickCount"] = 1
        self.call("Input.dispatchMouseEvent", event)

    def mouse_stroke(self, points: Sequence[tuple[float, float]], pause: float = 0.0) -> None:
        """Press the left button at the first point, move through the others (``pause``
        seconds apart), release at the last: a hand drawing with a mouse."""
        first, *rest = points
        self.mouse("mouseMoved", *first)
        self.mouse("mousePressed", *first)
        for x, y in rest:
            time.sleep(pause)
            self.mouse("mouseMoved", x, y, pressed=True)
        self.mouse("mouseReleased", *points[-1])

    def click(self, x: float, y: float) -> None:
        """A left click at page coordinates ``x``, ``y``."""
        self.mouse_stroke([(x, y)])

    def key(self, key: str) -> None:
        """Press and release ``key`` (a DOM key name such as ``Escape``) where the focus is."""
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key})

    def choose_file(self, selector: str, path: Path) -> None:
        """Set the file input ``selector`` to ``path``, as choosing it in the dialog does."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(path)]})

    def drop_file(self, x: float, y: float, path: Path) -> None:
        """Drag the file ``path`` in from outside the page and drop it at ``x``, ``y``."""
        data = {"items": [], "files": [str(path)], "dragOperationsMask": 1}
        for kind in ("dragEnter", "dragOver", "drop"):
            self.call("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> None:
        """Save the page (or the ``clip`` rectangle: x, y, width, height) as a PNG."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
