"""The server: bound to a host and port, a thread per connection up to ``Limits.connections``
(more wait in the listen queue), the pictures read by at most ``Limits.workers`` of them at
once (``Gate``), the page loaded once from the package."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from importlib import resources

from stages.cli.errors import StageError, UsageError
from stages.reader.reader import Reader
from stages.serving.gate import Gate
from stages.serving.handler import Handler
from stages.serving.limits import Limits

logger = logging.getLogger("stages.serve")

#: connections waiting to be accepted, beyond those served
LISTEN_QUEUE = 128


def is_loopback(host: str) -> bool:
    """Whether the address ``host`` (numeric) reaches this machine only."""
    return ipaddress.ip_address(host.split("%")[0]).is_loopback


def load_page() -> bytes:
    """The page, ``page.html``, as shipped in this package."""
    return resources.files("stages.serving").joinpath("page.html").read_bytes()


class ReaderServer(ThreadingHTTPServer):
    """Answers ``Handler``'s requests with ``reader``, within ``limits``."""

    daemon_threads = True
    request_queue_size = LISTEN_QUEUE

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, reader: Reader, limits: Limits
    ) -> None:
        self.address_family = family
        self.reader = reader
        self.limits = limits
        self.gate = Gate(limits.workers, limits.waiting, limits.wait)
        self.page = load_page()
        self._connections = threading.BoundedSemaphore(limits.connections)
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (socket.getfqdn), which can wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        # Waits, not accepting more, while as many connections as allowed are served.
        self._connections.acquire()
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            self._connections.release()

    def handle_error(self, request: object, client_address: object) -> None:  # type: ignore[override]
        """A connection that failed: a client gone away is a line of INFO, anything else
        one line of ERROR; the traceback only at DEBUG (socketserver prints it to stderr)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.info("%s: the client went away (%s)", client_address, exc)
        else:
            logger.error("%s: unexpected %s: %s", client_address, type(exc).__name__, exc)
        logger.debug("traceback", exc_info=True)

    @property
    def url(self) -> str:
        """The page's address, as a browser takes it."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"

    @property
    def local_only(self) -> bool:
        """Whether only this machine can reach the server (a loopback address)."""
        return is_loopback(str(self.server_address[0]))


def open_server(reader: Reader, host: str, port: int, limits: Limits) -> ReaderServer:
    """A server bound to ``host``:``port`` (0: any free port). UsageError for a host that
    is no address of this machine, StageError for a port already in use."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror or exc}") from None
    try:
        return ReaderServer(address[:2], family, reader, limits)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StageError(
                f"{host}:{port}: the port is in use (another server?); choose another --port"
            ) from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise UsageError(f"--host {host}: not an address of this machine") from None
        raise StageError(f"{host}:{port}: cannot listen there ({exc.strerror or exc})") from None
