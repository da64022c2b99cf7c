"""stages.data.fetch: mirrors, retries and the classification of failed attempts, against real
HTTP servers on 127.0.0.1 serving the small generated dataset."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from support.idx import assert_verified, wrong_payload
from support.mirror_server import (
    CHUNK,
    MirrorServer,
    closed_port,
    connections,
    random_gzip_forever,
)

from stages.data.checksums import BadPayload, GzipDigest
from stages.data.errors import DataError
from stages.data.fetch import (
    AttemptFailed,
    FetchError,
    MirrorFailure,
    RetryPolicy,
    compressed_limit,
    download_files,
    download_once,
    failure_summary,
    fetch_file,
    human_size,
)
from stages.data.mirrors import Mirror
from stages.data.sources import DATA_SOURCES, IDX_FILES, MNIST_FORMAT_SIZES

#: what the kernel may hold between the server's writes and the client's reads (the
#: server's send buffer is 64 kB; the rest is the client's receive buffer)
IN_FLIGHT = 4 << 20


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the retry policy asked for, in order."""
    return []


@pytest.fixture
def policy(sleeps: list[float]) -> RetryPolicy:
    """Two retries, short timeouts, and no real waiting: the delays are recorded instead."""
    return RetryPolicy(retries=2, timeout=2.0, backoff=0.5, sleep=sleeps.append)


def test_files_that_verify_are_kept_when_others_fail(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], policy: RetryPolicy
) -> None:
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "corrupt")
        with pytest.raises(DataError) as caught:
            download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert str(caught.value).startswith(f"could not get 1 of 4 files ({server.url}: checksum ")
    assert_verified(tmp_path, {n: d for n, d in files.items() if n != IDX_FILES.train_images})


def test_every_mirror_bad_names_each_mirror(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], policy: RetryPolicy
) -> None:
    with (
        MirrorServer(files, default="404") as first,
        MirrorServer(files, default="corrupt") as second,
    ):
        mirrors = [Mirror(first.url), Mirror(second.url)]
        with pytest.raises(DataError) as caught:
            download_files(table, mirrors, tmp_path / "raw", policy)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"could not get 4 of 4 files ({first.url}: HTTP 404; {second.url}: checksum mismatch "
        "(sha256 of the decompressed data is "
    )
    assert "other problems" not in message  # the same kind of failure for every file
    assert list((tmp_path / "raw").iterdir()) == []


def test_404_on_first_mirror_then_second_serves(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    with MirrorServer(files, default="404") as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)  # 404: no retry
    assert second.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []


def test_500_then_success_on_retry(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "500", "503")
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert server.requests[IDX_FILES.train_images] == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_persistent_500_moves_to_next_mirror_after_retries(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    with MirrorServer(files, default="500") as first, MirrorServer(files) as second:
        got = fetch_file(
            IDX_FILES.train_images,
            table[IDX_FILES.train_images],
            [Mirror(first.url), Mirror(second.url)],
            tmp_path / IDX_FILES.train_images,
            policy,
        )
    assert got.location == f"{second.url}/{IDX_FILES.train_images}"
    assert first.requests[IDX_FILES.train_images] == 1 + policy.retries
    assert sleeps == [0.5, 1.0]


def test_connection_dropped_mid_body_is_retried(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "drop")
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert server.requests[IDX_FILES.train_images] == 2
    assert sleeps == [0.5]


def test_connection_dropped_every_time_reports_the_short_body(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], policy: RetryPolicy
) -> None:
    with MirrorServer(files, default="drop") as server, pytest.raises(DataError) as caught:
        fetch_file(
            IDX_FILES.train_images,
            table[IDX_FILES.train_images],
            [Mirror(server.url)],
            tmp_path / "f.gz",
            policy,
        )
    size = len(files[IDX_FILES.train_images])
    assert f"connection dropped after {size // 2} of {size} bytes (3 attempts)" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_stalled_body_times_out_and_is_retried(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], sleeps: list[float]
) -> None:
    policy = RetryPolicy(retries=1, timeout=0.3, backoff=0.0, sleep=sleeps.append)
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "stall")
        got = fetch_file(
            IDX_FILES.train_images,
            table[IDX_FILES.train_images],
            [Mirror(server.url)],
            tmp_path / IDX_FILES.train_images,
            policy,
        )
    assert got.size == len(files[IDX_FILES.train_images])
    assert server.requests[IDX_FILES.train_images] == 2
    assert sleeps == [0.0]


@pytest.mark.slow
def test_a_dripping_mirror_is_given_up_at_its_deadline_for_the_next(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], sleeps: list[float]
) -> None:
    """Each byte arrives within the read timeout; the attempt's deadline (timeout plus the
    announced length at min_rate) ends it, without retry, and the next mirror serves."""
    name = IDX_FILES.train_labels
    policy = RetryPolicy(retries=2, timeout=0.5, backoff=0.0, min_rate=100.0, sleep=sleeps.append)
    deadline = policy.timeout + len(files[name]) / policy.min_rate
    with MirrorServer(files, drip_seconds=0.2) as slow, MirrorServer(files) as fast:
        slow.script(name, "drip")
        started = time.monotonic()
        got = fetch_file(
            name, table[name], [Mirror(slow.url), Mirror(fast.url)], tmp_path / name, policy
        )
        elapsed = time.monotonic() - started
    assert got.location == f"{fast.url}/{name}"
    assert (tmp_path / name).read_bytes() == files[name]
    assert slow.requests[name] == 1  # too slow is not transient: no retry
    assert sleeps == []
    assert deadline < elapsed < deadline + 1.0
    assert slow.sent[name] < len(files[name])


def test_truncated_gzip_moves_to_next_mirror_without_retry(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    with MirrorServer(files, default="truncated") as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []


@pytest.mark.parametrize("action", ["corrupt", "garbage"])
def test_bad_data_then_good_mirror(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
    action: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with MirrorServer(files, default=action) as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []
    reason = "checksum mismatch" if action == "corrupt" else "not a valid gzip file"
    assert f"{first.url}/{IDX_FILES.train_images}: {reason}" in caplog.text


def test_unreachable_mirror_is_not_asked_again(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    sleeps: list[float],
) -> None:
    dead = Mirror(f"http://127.0.0.1:{closed_port()}")
    with MirrorServer(files) as server:
        download_files(table, [dead, Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert sleeps == [0.5, 1.0]  # retried for the first file only


def test_unreachable_everywhere_names_each_file(
    tmp_path: Path, table: Mapping[str, str], policy: RetryPolicy
) -> None:
    dead = Mirror(f"http://127.0.0.1:{closed_port()}/mnist/")
    with pytest.raises(DataError) as caught:
        download_files(table, [dead], tmp_path, policy)
    message = str(caught.value)
    assert message.startswith(
        f"could not get 4 of 4 files ({dead.prefix}: cannot connect (Connection refused) "
        "(3 attempts)); give another mirror with --mirror or MNIST_MIRROR"
    )
    assert list(tmp_path.iterdir()) == []


def test_present_but_invalid_file_is_replaced(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], policy: RetryPolicy
) -> None:
    (tmp_path / IDX_FILES.train_images).write_bytes(wrong_payload(files[IDX_FILES.train_images]))
    (tmp_path / IDX_FILES.train_labels).write_bytes(files[IDX_FILES.train_labels])
    with MirrorServer(files) as server:
        summary = download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert summary.present == [IDX_FILES.train_labels]
    assert IDX_FILES.train_labels not in server.requests


def test_present_but_invalid_file_is_removed_when_no_mirror_has_it(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], policy: RetryPolicy
) -> None:
    (tmp_path / IDX_FILES.train_images).write_bytes(b"not gzip")
    with MirrorServer(files, default="404") as server, pytest.raises(DataError):
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert not (tmp_path / IDX_FILES.train_images).exists()


def test_interrupt_mid_download_leaves_nothing(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupt(self: GzipDigest, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(GzipDigest, "update", interrupt)
    with MirrorServer(files) as server, pytest.raises(KeyboardInterrupt):
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert server.requests[IDX_FILES.train_images] == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("action", "transient", "reason"),
    [
        ("404", False, "HTTP 404"),
        ("403", False, "HTTP 403"),
        ("500", True, "HTTP 500"),
        ("503", True, "HTTP 503"),
        ("429", True, "HTTP 429"),
        ("drop", True, "connection dropped after"),
        ("truncated", False, "truncated gzip data"),
        ("corrupt", False, "checksum mismatch"),
        ("garbage", False, "not a valid gzip file"),
    ],
)
def test_attempt_classification(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    action: str,
    transient: bool,
    reason: str,
) -> None:
    with MirrorServer(files, default=action) as server, pytest.raises(AttemptFailed) as caught:
        download_once(
            Mirror(server.url),
            IDX_FILES.train_images,
            tmp_path / "f.gz",
            table[IDX_FILES.train_images],
            2,
        )
    assert caught.value.transient is transient
    assert caught.value.reason.startswith(reason)
    assert list(tmp_path.iterdir()) == []


def test_refused_connection_is_transient_and_unreachable(
    tmp_path: Path, table: Mapping[str, str]
) -> None:
    mirror = Mirror(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(AttemptFailed) as caught:
        download_once(
            mirror, IDX_FILES.train_images, tmp_path / "f.gz", table[IDX_FILES.train_images], 2
        )
    assert caught.value.transient
    assert caught.value.unreachable


def test_missing_file_in_directory_mirror(
    tmp_path: Path, table: Mapping[str, str], policy: RetryPolicy, sleeps: list[float]
) -> None:
    with pytest.raises(DataError, match=rf"{re.escape(IDX_FILES.train_images)}: no such file$"):
        fetch_file(
            IDX_FILES.train_images,
            table[IDX_FILES.train_images],
            [Mirror(str(tmp_path))],
            tmp_path / "x",
            policy,
        )
    assert sleeps == []


def test_retry_policy_backoff_doubles() -> None:
    assert [RetryPolicy(backoff=1.5).delay(k) for k in range(4)] == [1.5, 3.0, 6.0, 12.0]


def test_human_size() -> None:
    assert [human_size(n) for n in (512, 4542, 9_719_438, 3_200_000_000)] == [
        "512 B",
        "4.5 kB",
        "9.7 MB",
        "3.2 GB",
    ]


@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_a_redirect_to_another_scheme_is_not_followed(
    tmp_path: Path,
    files: Mapping[str, bytes],
    table: Mapping[str, str],
    listener: socket.socket,
    scheme: str,
) -> None:
    name = IDX_FILES.train_images
    port = listener.getsockname()[1]
    target = f"ftp://127.0.0.1:{port}/{name}" if scheme == "ftp" else f"file:///etc/{name}"
    with MirrorServer(files) as server:
        server.script(name, f"redirect {target}")
        with pytest.raises(AttemptFailed) as caught:
            download_once(Mirror(server.url), name, tmp_path / name, table[name], 2)
    assert caught.value.reason == f"redirected to {target}, which is not an http(s) URL"
    assert not caught.value.transient  # the next mirror, at once
    assert connections(listener) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_to_http_is_followed(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str]
) -> None:
    name = IDX_FILES.train_images
    with MirrorServer(files) as server:
        server.script(name, f"redirect {server.url}/moved/{name}")
        download_once(Mirror(server.url), name, tmp_path / name, table[name], 2)
    assert server.requests[name] == 2
    assert_verified(tmp_path, {name: files[name]})


@pytest.mark.parametrize("action", ["endless", "inflating"])
@pytest.mark.parametrize("name", [IDX_FILES.train_images, IDX_FILES.test_labels])
def test_an_endless_body_stops_near_the_files_size_cap(
    tmp_path: Path, files: Mapping[str, bytes], table: Mapping[str, str], action: str, name: str
) -> None:
    """No Content-Length and a body without end: the download stops once it has read more
    than the file's known size can take, compressed (zero padding) or not (random data)."""
    size = MNIST_FORMAT_SIZES[name]
    with MirrorServer(files, default=action) as server, pytest.raises(AttemptFailed) as caught:
        download_once(Mirror(server.url), name, tmp_path / "f.gz", table[name], 2, size)
    assert not caught.value.transient
    assert caught.value.reason in (
        f"sent more than the {compressed_limit(size)} bytes this file can take",
        f"decompresses to more than the {size} bytes this file holds",
    )
    assert compressed_limit(size) < server.sent[name] < compressed_limit(size) + IN_FLIGHT
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_stream_inflating_beyond_the_size_stops_at_the_size() -> None:
    """The decompressed cap on its own: 1 MB of random data, then more."""
    digest = GzipDigest(limit=1_000_000)
    stream = random_gzip_forever()

    def feed(n_chunks: int) -> None:
        for _ in range(n_chunks):
            digest.update(next(stream))

    with pytest.raises(BadPayload, match="decompresses to more than the 1000000 bytes"):
        feed(100)
    assert 1_000_000 < digest.size < 1_000_000 + 2 * CHUNK


def unreachable_failures(mirror: str, files: list[str], reason: str) -> list[MirrorFailure]:
    """``mirror`` never answered for the first file and was not asked for the others."""
    first, *rest = files
    later = "not tried, unreachable for an earlier file"
    return [MirrorFailure(mirror, f"{mirror}/{first}", reason)] + [
        MirrorFailure(mirror, f"{mirror}/{name}", later) for name in rest
    ]


def test_the_summary_of_unreachable_default_mirrors_is_short_and_says_what_to_do() -> None:
    """Offline with the public mirrors: every file fails on every mirror. The one line names
    each mirror once with its reason and the way out (--mirror, MNIST_MIRROR)."""
    mirrors = DATA_SOURCES["mnist"].mirrors
    reason = "cannot connect (Temporary failure in name resolution) (4 attempts)"
    names = list(IDX_FILES)
    errors = []
    for name in names:
        failures = []
        for mirror in mirrors:
            failures += unreachable_failures(mirror, names, reason)
        errors.append(FetchError(name, [f for f in failures if f.location.endswith(name)]))
    message = failure_summary(errors, len(names))
    assert message == (
        f"could not get 4 of 4 files ({mirrors[0]}: {reason}; {mirrors[1]}: {reason}); "
        "give another mirror with --mirror or MNIST_MIRROR (a folder or URL holding the .gz "
        "files), --log-level DEBUG shows every attempt"
    )
    assert len(message) < 400
    assert not any(name in message for name in names)
