"""A scriptable HTTP mirror on 127.0.0.1 for download tests.

Each path answers with the next scripted action, then with the default action
(``serve`` unless set otherwise). Actions:

- ``serve``: 200 with the file and its Content-Length (404 if there is no such file);
- ``404``, ``500``, ``503``, ...: that status with a short body;
- ``drop``: 200 with the full Content-Length, half the body, then the connection closes;
- ``stall``: 200 with the full Content-Length, half the body, then silence until ``stall_seconds``;
- ``drip``: 200 with the full Content-Length, then the body one byte every ``drip_seconds``
  (each read of the client returns in time, the whole never does);
- ``trickle``: the same without Content-Length (the client cannot know how much is to come);
- ``truncated``: 200 serving the first half of the file (a consistent, but cut gzip stream);
- ``corrupt``: 200 serving a valid gzip file with different content (checksum mismatch);
- ``garbage``: 200 serving bytes that are not gzip;
- ``endless``: 200 without Content-Length, the file followed by zero padding that never
  ends (valid to gzip readers, so only a cap on the compressed size stops it);
- ``inflating``: 200 without Content-Length, a gzip stream of random bytes that never ends
  (only a cap on the decompressed size stops it);
- ``redirect <url>``: 302 to ``url`` (another path of this server, or another scheme).

Endless bodies are produced lazily, chunk by chunk, and stop at ``endless_ceiling`` bytes
so that a client without a cap fails a test instead of hanging it.

``requests`` counts GET requests per file name, so a test can assert what was fetched;
``sent`` counts the body bytes the server handed to the socket per file name.
"""

from __future__ import annotations

import collections
import socket
import threading
import zlib
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import numpy as np

from support.idx import garbage, truncated, wrong_payload

CHUNK = 1 << 16
#: where an endless body stops anyway: far beyond any MNIST file
ENDLESS_CEILING = 1 << 28


def zero_padded_forever(data: bytes) -> Iterator[bytes]:
    """``data``, then zero bytes for ever, in chunks."""
    yield data
    zeros = bytes(CHUNK)
    while True:
        yield zeros


def random_gzip_forever(seed: int = 0) -> Iterator[bytes]:
    """A gzip stream (stored, uncompressible blocks) of random bytes that never ends."""
    block = np.random.default_rng(seed).bytes(CHUNK)
    deflate = zlib.compressobj(0, zlib.DEFLATED, 31)  # level 0, gzip wrapper
    while True:
        yield deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_socket() -> socket.socket:
    """A non-blocking socket listening on 127.0.0.1 that never answers: where a redirect to
    another scheme points, so that a test can tell whether it was followed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


def connections(sock: socket.socket) -> int:
    """How many connections reached ``sock`` (each accepted and closed)."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


class MirrorServer:
    """``with MirrorServer(files) as server:`` serves ``files`` at ``server.url``."""

    def __init__(
        self,
        files: dict[str, bytes],
        default: str = "serve",
        stall_seconds: float = 5,
        endless_ceiling: int = ENDLESS_CEILING,
        drip_seconds: float = 1.0,
    ):
        self.files = dict(files)
        self.default = default
        self.stall_seconds = stall_seconds
        self.drip_seconds = drip_seconds
        self.endless_ceiling = endless_ceiling
        self.requests: collections.Counter[str] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
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

    def _count_sent(self, name: str, n_bytes: int) -> None:
        with self._lock:
            self.sent[name] += n_bytes

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
                elif action.startswith("redirect "):
                    self.send_response(302)
                    self.send_header("Location", action.split(" ", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
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
                elif action == "endless":
                    self._stream(name, zero_padded_forever(data))
                elif action == "inflating":
                    self._stream(name, random_gzip_forever())
                elif action in ("drip", "trickle"):
                    self._drip(name, data, sized=action == "drip")
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
                mirror._count_sent(self.path.rsplit("/", 1)[-1], len(body))

            def _drip(self, name: str, data: bytes, sized: bool) -> None:
                if sized:
                    self._headers(200, len(data))
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                self.close_connection = True
                try:
                    for offset in range(len(data)):
                        if mirror._stopping.wait(mirror.drip_seconds):
                            break
                        self.wfile.write(data[offset : offset + 1])
                        self.wfile.flush()
                        mirror._count_sent(name, 1)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up

            def _stream(self, name: str, chunks: Iterator[bytes]) -> None:
                """A 200 whose body is ``chunks`` until the client hangs up (no length:
                the end of the connection would end it)."""
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.close_connection = True
                # A small send buffer keeps what the kernel holds for the client (and so
                # what ``sent`` counts beyond what the client read) small and fixed.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
                sent = 0
                try:
                    for chunk in chunks:
                        if sent >= mirror.endless_ceiling or mirror._stopping.is_set():
                            break
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        mirror._count_sent(name, len(chunk))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a cap does

        return Handler
