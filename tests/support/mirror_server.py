"""A scriptable HTTP mirror on 127.0.0.1 for download tests.

Each path answers with the next scripted action, then with the default action
(``serve`` unless set otherwise). Actions:

- ``serve``: 200 with the file and its Content-Length (404 if there is no such file);
- ``404``, ``500``, ``503``, ...: that status with a short body;
- ``drop``: 200 with the full Content-Length, half the body, then the connection closes;
- ``stall``: 200 with the full Content-Length, half the body, then silence until ``stall_seconds``;
- ``truncated``: 200 serving the first half of the file (a consistent, but cut gzip stream);
- ``corrupt``: 200 serving a valid gzip file with different content (checksum mismatch);
- ``garbage``: 200 serving bytes that are not gzip.

``requests`` counts GET requests per file name, so a test can assert what was fetched.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from support.idx import garbage, truncated, wrong_payload


class MirrorServer:
    """``with MirrorServer(files) as server:`` serves ``files`` at ``server.url``."""

    def __init__(self, files: dict[str, bytes], default: str = "serve", stall_seconds: float = 5):
        self.files = dict(files)
        self.default = default
        self.stall_seconds = stall_seconds
        self.requests: collections.Counter[str] = collections.Counter()
        self._scripts: dict[str, collections.deque[str]] = collections.defaultdict(
            collections.deque
        )
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, name: str, *actions: str) -> None:
        """Answer the next requests for ``name`` with ``actions``, in order."""
        with self._lock:
            self._scripts[name].extend(actions)

    def script_all(self, names: Iterable[str], *actions: str) -> None:
        for name in names:
            self.script(name, *actions)

    def _next_action(self, name: str) -> str:
        with self._lock:
            self.requests[name] += 1
            queue = self._scripts[name]
            return queue.popleft() if queue else self.default

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                action = mirror._next_action(name)
                data = mirror.files.get(name)
                if action.isdigit():
                    self._reply(int(action), b"scripted failure\n")
                elif data is None:
                    self._reply(404, b"no such file\n")
                elif action == "serve":
                    self._reply(200, data)
                elif action == "truncated":
                    self._reply(200, truncated(data))
                elif action == "corrupt":
                    self._reply(200, wrong_payload(data))
                elif action == "garbage":
                    self._reply(200, garbage(len(data)))
                elif action in ("drop", "stall"):
                    self._headers(200, len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if action == "stall":
                        mirror._stopping.wait(mirror.stall_seconds)
                    self.close_connection = True
                else:
                    raise ValueError(f"unknown scripted action {action!r}")

            def _headers(self, status: int, length: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _reply(self, status: int, body: bytes) -> None:
                self._headers(status, len(body))
                self.wfile.write(body)

        return Handler
