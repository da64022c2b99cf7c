"""A request's body, read within bounds: its size (by Content-Length before a byte of it is
read, or as chunks arrive), and the time the client takes to send it (``Deadline``)."""

from __future__ import annotations

import io
import math
import re
import socket
import time
from email.message import Message
from http import HTTPStatus
from typing import BinaryIO

#: longest chunk-size or trailer line accepted in a chunked body, and trailer lines
MAX_LINE = 1024
MAX_TRAILERS = 32
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class Refusal(Exception):
    """The request cannot be answered as asked: ``status`` and one line saying why."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Deadline(io.RawIOBase):
    """A connection's incoming bytes, each read allowed only the time left until
    ``expires`` (``time.monotonic()``): past it, reads raise TimeoutError, however slowly
    the bytes drip in."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.expires = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self.expires - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client took too long")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def content_length(headers: Message, limit: int) -> int | None:
    """The body's length as the headers give it, None for a chunked body; Refusal for a
    body that is too large, has no stated length, or states it twice or badly."""
    encoding = headers.get("Transfer-Encoding")
    lengths = headers.get_all("Content-Length") or []
    if encoding is not None:
        if lengths:
            raise Refusal(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")
        if encoding.strip().lower() != "chunked":
            raise Refusal(
                HTTPStatus.NOT_IMPLEMENTED,
                f"Transfer-Encoding {encoding.strip()[:40]!r} is not supported; send the "
                "picture's bytes with a Content-Length",
            )
        return None
    if not lengths:
        raise Refusal(
            HTTPStatus.LENGTH_REQUIRED,
            "no Content-Length: send the picture's bytes as the body "
            "(curl --data-binary @digit.png)",
        )
    if len(set(lengths)) > 1 or not _DIGITS.fullmatch(lengths[0].strip()):
        raise Refusal(HTTPStatus.BAD_REQUEST, "the Content-Length is not one number of bytes")
    length = int(lengths[0])
    if length > limit:
        raise Refusal(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the body is {length} bytes; the limit is {limit} bytes",
        )
    return length


def read_body(rfile: BinaryIO, headers: Message, limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes, by its Content-Length or its chunks.
    Refusal for a body that is too large, malformed or ends early; TimeoutError (from
    ``Deadline``) for one that does not arrive in time."""
    length = content_length(headers, limit)
    if length is None:
        return _read_chunked(rfile, limit)
    body = rfile.read(length)
    if len(body) < length:
        raise Refusal(
            HTTPStatus.BAD_REQUEST,
            f"the body ended after {len(body)} of the {length} bytes its Content-Length says",
        )
    return body


def _read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = rfile.readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
            raise Refusal(HTTPStatus.BAD_REQUEST, "a malformed chunked body (a chunk size)")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the chunked body exceeds the limit of {limit} bytes",
            )
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.read(2) != b"\r\n":
            raise Refusal(HTTPStatus.BAD_REQUEST, "a malformed chunked body (a chunk's end)")
        body += chunk
    for _ in range(MAX_TRAILERS):
        line = rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return bytes(body)
        if not line.endswith(b"\n"):
            break
    raise Refusal(HTTPStatus.BAD_REQUEST, "a malformed chunked body (its trailer)")
