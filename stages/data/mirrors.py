"""Where the download stage fetches from: ``--mirror``, else ``MNIST_MIRROR``, else the public
mirrors of the data source.

A mirror is an ``http://``, ``https://`` or ``file://`` URL prefix, or a local directory,
holding the four ``.gz`` files.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stages.cli.errors import preview
from stages.data.errors import DataError
from stages.data.sources import DataSource

MIRROR_ENV = "MNIST_MIRROR"
URL_SCHEMES = ("http", "https", "file")


class MalformedMirror(DataError):
    """A mirror that is not a usable URL or path as written (before anything is looked up)."""


@dataclass(frozen=True)
class Mirror:
    """Where to fetch from: a URL prefix (``http``, ``https``, ``file``) or a directory."""

    prefix: str

    @property
    def is_url(self) -> bool:
        return urllib.parse.urlsplit(self.prefix).scheme in URL_SCHEMES

    def location(self, name: str) -> str:
        """The URL (or path) of file ``name`` on this mirror, without doubled slashes."""
        if self.is_url:
            return f"{self.prefix.rstrip('/')}/{name}"
        return str(Path(self.prefix) / name)

    def local_path(self, name: str) -> Path | None:
        """The local file behind ``name`` for ``file://`` and directory mirrors, else None."""
        split = urllib.parse.urlsplit(self.prefix)
        if split.scheme == "file":
            return Path(urllib.request.url2pathname(split.path)) / name
        if self.is_url:
            return None
        return Path(self.prefix) / name


def parse_mirror(text: str, origin: str) -> Mirror:
    """Check a user-given mirror (``origin`` names where it came from, for the error).

    Accepts ``http(s)://host/...``, ``file:///dir`` and plain directory paths; a local
    directory must exist. Raises MalformedMirror (one line) for text that is no usable URL
    or path, DataError for a directory that is not there.
    """
    text = text.strip()
    try:
        split = urllib.parse.urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise MalformedMirror(f"{origin}: {preview(text)} is not a valid URL ({exc})") from None
    if split.scheme in ("http", "https"):
        if not split.hostname:
            raise MalformedMirror(f"{origin}: {preview(text)} has no host")
        try:
            split.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise MalformedMirror(f"{origin}: {preview(text)} has an invalid port") from None
        return Mirror(text)
    if split.scheme == "file":
        if split.netloc not in ("", "localhost"):
            raise MalformedMirror(
                f"{origin}: {preview(text)}: only local file:// URLs are supported"
            )
        directory = Path(urllib.request.url2pathname(split.path))
    elif "://" in text:
        raise MalformedMirror(
            f"{origin}: unsupported mirror {preview(text)}; use an http://, https:// or file:// "
            "URL or a local directory"
        )
    else:
        directory = Path(text)
    if not directory.is_dir():
        raise DataError(f"{origin}: {preview(text)} is not a directory")
    return Mirror(text)


def resolve_mirrors(
    option: str | None, environ: Mapping[str, str], source: DataSource
) -> list[Mirror]:
    """``--mirror`` beats ``MNIST_MIRROR`` (empty counts as unset) beats the public list."""
    if option is not None:
        if not option.strip():
            raise MalformedMirror("--mirror: empty; give a URL prefix or a directory")
        return [parse_mirror(option, "--mirror")]
    from_env = environ.get(MIRROR_ENV, "").strip()
    if from_env:
        return [parse_mirror(from_env, MIRROR_ENV)]
    return [Mirror(prefix) for prefix in source.mirrors]
