"""``python -m stages.serve`` started as a user starts it, on a free port of 127.0.0.1, and
real HTTP requests to it (``http.client``: no mock between the test and the server)."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.stage import stage_command, stage_environment


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names) and body; ``json`` parsed."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A running ``python -m stages.serve``: its address, its process and its stderr file."""

    url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    @property
    def host(self) -> str:
        return str(urlsplit(self.url).hostname)

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 80)

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request on a new connection, and its answer."""
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            return read_answer(connection.getresponse())
        finally:
            connection.close()

    def predict(self, picture: bytes, query: str = "") -> Answer:
        """``POST /predict`` with ``picture`` as the body (as ``curl --data-binary`` sends)."""
        return self.request("POST", f"/predict{'?' + query if query else ''}", picture)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def read_answer(response: http.client.HTTPResponse) -> Answer:
    headers = {name.lower(): value for name, value in response.getheaders()}
    return Answer(response.status, headers, response.read())


def start_server(cwd: Path, *args: str, timeout: float = 60) -> Server:
    """Start ``python -m stages.serve --port 0 *args`` in ``cwd`` and wait for the line that
    says where it serves; AssertionError with its stderr if it ends first."""
    stderr_path = cwd / f"serve-{time.monotonic_ns()}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            stage_command("serve", "--port", "0", *args),
            cwd=cwd,
            env=stage_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("serving http://"):
        process.kill()
        process.wait()
        raise AssertionError(f"the server did not start: {line!r} {stderr_path.read_text()}")
    return Server(line.split()[1], process, stderr_path)


def stop_server(server: Server, timeout: float = 15) -> int:
    """Ctrl-C, as a user stops it; its exit code (killed if it does not end in time)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    assert server.process.stdout is not None
    server.process.stdout.close()
    return server.process.returncode


@contextlib.contextmanager
def serving(cwd: Path, *args: str) -> Iterator[Server]:
    """A server for the block, stopped with Ctrl-C after it."""
    server = start_server(cwd, *args)
    try:
        yield server
    finally:
        stop_server(server)
