"""A real PostgreSQL server on 127.0.0.1, started for a test and stopped after it.

Debian's ``postgresql`` package (installed by ``.ci/run``) provides ``initdb`` and ``pg_ctl``
under ``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so when the
tests run as root the server runs as the package's own ``postgres`` user (or a dedicated
user this module creates); its data and socket folders live in a fresh temporary folder that
user owns. Password authentication over TCP, as a team's server would have.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # created by Debian's package
FALLBACK_USER = "mnist-search-pg"
ROLE = "searcher"
DATABASE = "search"


class Unavailable(Exception):
    """PostgreSQL cannot run here; the message says why."""


def binaries() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``pg_ctl``."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise Unavailable("Debian's postgresql is not installed (.ci/run installs it)")
    return found[-1].parent


def server_user() -> str | None:
    """The user the server runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in (SERVER_USER, FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        raise Unavailable(
            f"running as root and cannot create a user for PostgreSQL: {created.stderr}"
        )
    return FALLBACK_USER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    """A running server: ``url`` reaches database ``search`` as role ``searcher``."""

    host: str
    port: int
    password: str
    folder: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{ROLE}:{self.password}@{self.host}:{self.port}/{DATABASE}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def new_database(self, name: str) -> str:
        """Create an empty database ``name``; the URL that reaches it."""
        import psycopg

        with psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start a server in a temporary folder; stop it and remove the folder afterwards."""
    bindir = binaries()
    user = server_user()
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    password = secrets.token_hex(12)
    (folder / "password").write_text(password + "\n")
    if user is not None:
        for path in (folder, sockets, folder / "password"):
            shutil.chown(path, user, user)

    def as_server(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, user=user, group=user, capture_output=True, text=True, check=check, timeout=120
        )

    port = free_port()
    server = Postgres("127.0.0.1", port, password, folder)
    try:
        as_server(
            str(bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            ROLE,
            "--pwfile",
            str(folder / "password"),
            "--auth-local",
            "trust",
            "--auth-host",
            "scram-sha-256",
            "--no-sync",
        )
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c full_page_writes=off"
        started = as_server(
            str(bindir / "pg_ctl"),
            "--pgdata",
            str(data),
            "--log",
            str(server.log),
            "--options",
            options,
            "--wait",
            "start",
            check=False,
        )
        if started.returncode != 0:
            log = server.log.read_text() if server.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log}")
        as_server(
            str(bindir / "createdb"),
            "--host",
            str(sockets),
            "--port",
            str(port),
            "--username",
            ROLE,
            DATABASE,
        )
        yield server
    finally:
        if data.exists():
            as_server(
                str(bindir / "pg_ctl"),
                "--pgdata",
                str(data),
                "--mode",
                "immediate",
                "--wait",
                "stop",
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
