"""The request handler: ``GET /`` the page, ``GET /model`` the model's class names, ``POST
/predict`` a picture's answer; anything else, and anything refused, a one-line JSON
``{"error": ...}`` with a 4xx status (503 when busy).

``POST /predict`` answers exactly the object ``python -m stages.predict --json`` prints for
the same file, without ``"file"``: the body goes through ``stages.reader.Reader``, as
predict's files do. Query parameters: ``top_k`` (predict's ``--top-k``, 3 by default) and
``seen=1``, which adds ``"seen"``: the 28x28 image the model saw, as a PNG data URL (the
bytes predict's ``--save-inputs`` writes).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image

from stages.serving.body import Deadline, Refusal, content_length, read_body
from stages.serving.gate import Busy

if TYPE_CHECKING:
    from collections.abc import Callable

    from stages.serving.server import ReaderServer

logger = logging.getLogger("stages.serve")

#: predict's ``--top-k`` default
TOP_K = 3
#: path -> the methods it answers
ROUTES = {"/": ("GET", "HEAD"), "/model": ("GET", "HEAD"), "/predict": ("POST",)}
#: the page may run its own inline script and style, show data: and blob: images, and
#: talk to this server only: nothing it does can load from or send to anywhere else
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
#: seconds at most spent draining a closed connection's unread bytes
LINGER = 5.0
_COUNT = re.compile(r"[0-9]{1,6}")
_YES, _NO = ("1", "true", "yes", ""), ("0", "false", "no")


def png_data_url(image: np.ndarray) -> str:
    """The uint8 ``image`` ``(rows, cols)`` as a ``data:image/png;base64,...`` URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def predict_options(query: str) -> tuple[int, bool]:
    """``top_k`` and ``seen`` from ``/predict``'s query; Refusal (400) for anything else."""
    try:
        fields = parse_qsl(query, keep_blank_values=True, max_num_fields=8)
    except ValueError:
        raise Refusal(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
    k, seen = TOP_K, False
    for name, value in fields:
        if name == "top_k" and _COUNT.fullmatch(value) and int(value) >= 1:
            k = int(value)
        elif name == "top_k":
            raise Refusal(HTTPStatus.BAD_REQUEST, f"top_k must be 1 or more, got {value[:20]!r}")
        elif name == "seen" and value.lower() in (*_YES, *_NO):
            seen = value.lower() in _YES
        elif name == "seen":
            raise Refusal(HTTPStatus.BAD_REQUEST, f"seen must be 1 or 0, got {value[:20]!r}")
        else:
            raise Refusal(
                HTTPStatus.BAD_REQUEST, f"unknown query parameter {name[:40]!r}; known: top_k, seen"
            )
    return k, seen


class Handler(BaseHTTPRequestHandler):
    """One connection's requests (HTTP/1.1, kept alive while the requests are whole)."""

    server: ReaderServer
    protocol_version = "HTTP/1.1"
    server_version = "stages.serve"
    disable_nagle_algorithm = True  # a small answer is sent at once, not after an ACK
    wbufsize = 1 << 16  # headers and body leave in one write

    def setup(self) -> None:
        super().setup()
        self._incoming = Deadline(self.connection)
        self.rfile = io.BufferedReader(self._incoming, 1 << 16)
        self._linger = False

    def handle_one_request(self) -> None:
        # The whole request, headers and body, must arrive within the timeout; so must the
        # next one on a kept-alive connection, counted from the end of this answer.
        self._incoming.expires = time.monotonic() + self.server.limits.timeout
        super().handle_one_request()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._linger:
                self._drain()

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server calls do_<METHOD>; every method it has no handler for is refused here.
        if name.startswith("do_"):
            return lambda: self._route(name[3:])
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def handle_expect_100(self) -> bool:
        """Refuse a body that is too large before the client sends it (curl asks first)."""
        try:
            if self.command == "POST" and urlsplit(self.path).path == "/predict":
                content_length(self.headers, self.server.limits.max_body)
        except Refusal as refusal:
            self._refuse(refusal)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too long or too
        many, an unsupported protocol version), as JSON."""
        status = HTTPStatus(code)
        if self.request_version == "HTTP/0.9":  # a request line that did not parse: say so
            self.request_version = "HTTP/1.0"  # with a status line and headers
        self._send_json(status, {"error": message or status.phrase}, close=True)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def _route(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        try:
            allowed = ROUTES.get(path)
            if allowed is None:
                self._refuse(
                    Refusal(
                        HTTPStatus.NOT_FOUND,
                        f"nothing at {path[:60]!r}: the page is at /, pictures go to POST /predict",
                    )
                )
            elif method not in allowed:
                refusal = Refusal(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{method[:20]} {path}: this path answers {' and '.join(allowed)} only",
                )
                self._refuse(refusal, {"Allow": ", ".join(allowed)})
            elif path == "/":
                self._send_page()
            elif path == "/model":
                self._send_json(HTTPStatus.OK, self._model())
            else:
                self._predict(query)
        except Exception as exc:  # a bug: answer it, log it, keep serving
            logger.error("%s %s: unexpected %s: %s", method, path, type(exc).__name__, exc)
            logger.debug("traceback", exc_info=True)
            message = f"unexpected {type(exc).__name__} (the server's log has more)"
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": message}, close=True)

    def _model(self) -> dict[str, Any]:
        described = self.server.reader.described
        return {"dataset": described.dataset, "class_names": list(described.class_names)}

    def _send_page(self) -> None:
        headers = {"Content-Security-Policy": PAGE_POLICY, "Referrer-Policy": "no-referrer"}
        self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", headers)

    def _predict(self, query: str) -> None:
        limits, reader = self.server.limits, self.server.reader
        try:
            if self.headers.get_content_type() == "multipart/form-data":
                raise Refusal(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    "a form upload: send the picture's bytes as the body "
                    "(curl --data-binary @digit.png), not a form (curl -F)",
                )
            body = read_body(self.rfile, self.headers, limits.max_body)
        except Refusal as refusal:
            self._refuse(refusal)
            return
        except TimeoutError:
            message = f"the request took longer than {limits.timeout:g} s to arrive"
            self._refuse(Refusal(HTTPStatus.REQUEST_TIMEOUT, message))
            return
        self.connection.settimeout(limits.timeout)  # for sending the answer
        try:
            k, with_seen = predict_options(query)
            with self.server.gate.slot():
                seen, probabilities = reader.read(body)
        except Refusal as refusal:
            self._send_json(refusal.status, {"error": str(refusal)})
            return
        except Busy as busy:
            self._send_json(
                HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(busy)}, {"Retry-After": "1"}
            )
            return
        answer = reader.result("", seen, probabilities, k).answer()
        if "error" in answer:
            self._send_json(HTTPStatus.UNPROCESSABLE_ENTITY, answer)
            return
        if with_seen:
            answer["seen"] = png_data_url(seen)  # type: ignore[arg-type]
        self._send_json(HTTPStatus.OK, answer)

    def _refuse(self, refusal: Refusal, headers: dict[str, str] | None = None) -> None:
        """Answer ``refusal`` and close the connection."""
        self._send_json(refusal.status, {"error": str(refusal)}, headers, close=True)

    def _send_json(
        self,
        status: HTTPStatus,
        value: dict[str, Any],
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        body = (json.dumps(value, allow_nan=False) + "\n").encode("ascii")
        self._send(status, body, "application/json", headers, close)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
            self._linger = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drain(self) -> None:
        """After an answer that closes the connection, read and drop what the client still
        sends (a body that was not read, the rest of a request), for a moment, so that
        the client reads the answer rather than a reset connection."""
        sock = self.connection
        end = time.monotonic() + min(self.server.limits.timeout, LINGER)
        buffer = bytearray(1 << 16)
        try:
            sock.shutdown(socket.SHUT_WR)
            while (left := end - time.monotonic()) > 0:
                sock.settimeout(left)
                if not sock.recv_into(buffer):
                    break
        except OSError:
            pass
