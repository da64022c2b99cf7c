"""The download stage against a real HTTP server on 127.0.0.1 serving a small generated dataset."""

from __future__ import annotations

import gzip
import hashlib
import socket
from pathlib import Path

import pytest
from support.idx import (
    assert_verified,
    garbage,
    gz,
    truncated,
    write_checksums,
    write_files,
    wrong_payload,
)
from support.mirror_server import MirrorServer
from support.params import write_params
from support.stage import error_lines, run_stage

from stages.data import checksums, sources
from stages.data.checksums import BadPayload, GzipDigest, verify_file
from stages.data.errors import DataError
from stages.data.fetch import (
    AttemptFailed,
    RetryPolicy,
    download_files,
    download_once,
    fetch_file,
    human_size,
)
from stages.data.mirrors import Mirror, parse_mirror, resolve_mirrors
from stages.data.sources import IDX_FILES

FAST = ("--backoff", "0.01", "--timeout", "2", "--retries", "2")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def policy(sleeps) -> RetryPolicy:
    """Two retries, short timeouts, and no real waiting: the delays are recorded instead."""
    return RetryPolicy(retries=2, timeout=2.0, backoff=0.5, sleep=sleeps.append)


@pytest.fixture
def project(tmp_path, table) -> Path:
    """A scratch directory with params.yaml and a checksum table for the generated dataset."""
    write_params(tmp_path, data={"dataset": "mnist"})
    write_checksums(tmp_path / "sums", "mnist", table)
    return tmp_path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the command line, end to end -------------------------------------------------------------


def test_clean_download(project, files):
    with MirrorServer(files) as server:
        result = run_stage(
            "download",
            project,
            "--checksums",
            "sums",
            *FAST,
            env={"MNIST_MIRROR": server.url + "/"},
        )
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)
    assert server.requests == dict.fromkeys(IDX_FILES, 1)
    for name in IDX_FILES:
        assert f"downloaded {name} " in result.stderr
        assert f"from {server.url}/{name} in " in result.stderr  # no doubled slash


def test_second_run_fetches_nothing(project, files):
    with MirrorServer(files) as server:
        args = ("--checksums", "sums", "--mirror", server.url, *FAST)
        first = run_stage("download", project, *args)
        before = dict(server.requests)
        second = run_stage("download", project, *args)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert before == dict.fromkeys(IDX_FILES, 1)
    assert dict(server.requests) == before
    assert second.stderr.count("not fetched again") == 4
    assert_verified(project / "data/raw/mnist", files)


def test_every_mirror_bad_exits_with_one_line_and_no_file(project, files):
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "corrupt")
        server.script(IDX_FILES.train_labels, "404")
        server.script(IDX_FILES.test_images, "truncated")
        server.script(IDX_FILES.test_labels, "garbage")
        result = run_stage(
            "download", project, "--checksums", "sums", "--mirror", server.url, *FAST
        )
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: could not get {IDX_FILES.train_images} from any mirror: ")
    for name, reason in [
        (IDX_FILES.train_images, "checksum mismatch (sha256 of the decompressed data is "),
        (IDX_FILES.train_labels, "HTTP 404"),
        (IDX_FILES.test_images, "truncated gzip data"),
        (IDX_FILES.test_labels, "not a valid gzip file"),
    ]:
        assert f"could not get {name} from any mirror: {server.url}/{name}: {reason}" in lines[0]
    assert "Traceback" not in result.stderr
    assert list((project / "data/raw/mnist").iterdir()) == []


def test_files_that_verify_are_kept_when_others_fail(tmp_path, files, table, policy):
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "corrupt")
        with pytest.raises(DataError) as caught:
            download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert str(caught.value).startswith(f"could not get {IDX_FILES.train_images} from any mirror: ")
    assert " | " not in str(caught.value)  # only the one file failed
    assert_verified(tmp_path, {n: d for n, d in files.items() if n != IDX_FILES.train_images})


def test_every_mirror_bad_names_each_mirror(tmp_path, files, table, policy):
    with (
        MirrorServer(files, default="404") as first,
        MirrorServer(files, default="corrupt") as second,
    ):
        mirrors = [Mirror(first.url), Mirror(second.url)]
        with pytest.raises(DataError) as caught:
            download_files(table, mirrors, tmp_path / "raw", policy)
    message = str(caught.value)
    assert "\n" not in message
    for name in IDX_FILES:
        assert f"could not get {name} from any mirror: {first.url}/{name}: HTTP 404; " in message
        assert (
            f"{second.url}/{name}: checksum mismatch (sha256 of the decompressed data is "
            in message
        )
    assert list((tmp_path / "raw").iterdir()) == []


def test_plain_directory_mirror(project, files):
    mirror = write_files(project / "mirror", files)
    result = run_stage("download", project, "--checksums", "sums", "--mirror", str(mirror))
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)


def test_file_url_mirror_from_environment(project, files):
    mirror = write_files(project / "mirror dir", files)  # a space, quoted in the URL
    result = run_stage(
        "download", project, "--checksums", "sums", env={"MNIST_MIRROR": mirror.as_uri()}
    )
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)


def test_mirror_option_beats_environment(project, files):
    mirror = write_files(project / "mirror", files)
    result = run_stage(
        "download",
        project,
        "--checksums",
        "sums",
        "--mirror",
        str(mirror),
        env={"MNIST_MIRROR": str(project / "nowhere")},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--mirror", "nowhere"), {}, "error: --mirror: 'nowhere' is not a directory"),
        ((), {"MNIST_MIRROR": "ftp://example.com/"}, "error: MNIST_MIRROR: unsupported mirror"),
        (("--mirror", "file:///no/such/dir"), {}, "is not a directory"),
        (("--checksums", "nowhere"), {}, "mnist.sha256: no checksum table for dataset 'mnist'"),
    ],
)
def test_bad_mirror_or_table_is_one_line(project, args, env, expected):
    result = run_stage("download", project, *args, env=env)
    assert result.returncode == 1
    assert len(error_lines(result)) == 1, result.stderr
    assert expected in result.stderr
    assert not (project / "data").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "data:\n  dataset: cifar\n",
            "params.yaml: data.dataset must be one of mnist, fashion-mnist",
        ),
        ("data: [\n", "params.yaml: not valid YAML"),
        ("model: {}\n", "params.yaml: section 'data' is missing"),
    ],
)
def test_bad_params_is_one_line(tmp_path, text, expected):
    (tmp_path / "params.yaml").write_text(text)
    result = run_stage("download", tmp_path, "--mirror", str(tmp_path))
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--timeout", "0"), "error: Invalid value for '--timeout': must be > 0, got 0"),
        (("--retries", "-1"), "error: Invalid value for '--retries'"),
    ],
)
def test_bad_option_is_a_usage_error(project, args, expected):
    result = run_stage("download", project, *args)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)


# --- mirrors and retries, through download_dataset and fetch_file ------------------------------


def test_404_on_first_mirror_then_second_serves(tmp_path, files, table, policy, sleeps):
    with MirrorServer(files, default="404") as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)  # 404: no retry
    assert second.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []


def test_500_then_success_on_retry(tmp_path, files, table, policy, sleeps):
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "500", "503")
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert server.requests[IDX_FILES.train_images] == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_persistent_500_moves_to_next_mirror_after_retries(tmp_path, files, table, policy, sleeps):
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


def test_connection_dropped_mid_body_is_retried(tmp_path, files, table, policy, sleeps):
    with MirrorServer(files) as server:
        server.script(IDX_FILES.train_images, "drop")
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert server.requests[IDX_FILES.train_images] == 2
    assert sleeps == [0.5]


def test_connection_dropped_every_time_reports_the_short_body(tmp_path, files, table, policy):
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


def test_stalled_body_times_out_and_is_retried(tmp_path, files, table, sleeps):
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


def test_truncated_gzip_moves_to_next_mirror_without_retry(tmp_path, files, table, policy, sleeps):
    with MirrorServer(files, default="truncated") as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []


@pytest.mark.parametrize("action", ["corrupt", "garbage"])
def test_bad_data_then_good_mirror(tmp_path, files, table, policy, sleeps, action, caplog):
    with MirrorServer(files, default=action) as first, MirrorServer(files) as second:
        download_files(table, [Mirror(first.url), Mirror(second.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert first.requests == dict.fromkeys(IDX_FILES, 1)
    assert sleeps == []
    reason = "checksum mismatch" if action == "corrupt" else "not a valid gzip file"
    assert f"{first.url}/{IDX_FILES.train_images}: {reason}" in caplog.text


def test_unreachable_mirror_is_not_asked_again(tmp_path, files, table, policy, sleeps):
    dead = Mirror(f"http://127.0.0.1:{closed_port()}")
    with MirrorServer(files) as server:
        download_files(table, [dead, Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert sleeps == [0.5, 1.0]  # retried for the first file only


def test_unreachable_everywhere_names_each_file(tmp_path, table, policy):
    dead = Mirror(f"http://127.0.0.1:{closed_port()}/mnist/")
    with pytest.raises(DataError) as caught:
        download_files(table, [dead], tmp_path, policy)
    message = str(caught.value)
    assert (
        f"{dead.prefix}{IDX_FILES.train_images}: cannot connect (Connection refused) (3 attempts)"
        in message
    )
    assert (
        f"{dead.prefix}{IDX_FILES.train_labels}: not tried, unreachable for an earlier file"
        in message
    )
    assert list(tmp_path.iterdir()) == []


def test_present_but_invalid_file_is_replaced(tmp_path, files, table, policy):
    (tmp_path / IDX_FILES.train_images).write_bytes(wrong_payload(files[IDX_FILES.train_images]))
    (tmp_path / IDX_FILES.train_labels).write_bytes(files[IDX_FILES.train_labels])
    with MirrorServer(files) as server:
        summary = download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)
    assert summary.present == [IDX_FILES.train_labels]
    assert IDX_FILES.train_labels not in server.requests


def test_present_but_invalid_file_is_removed_when_no_mirror_has_it(tmp_path, files, table, policy):
    (tmp_path / IDX_FILES.train_images).write_bytes(b"not gzip")
    with MirrorServer(files, default="404") as server, pytest.raises(DataError):
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert not (tmp_path / IDX_FILES.train_images).exists()


def test_stale_temporary_files_are_removed(tmp_path, files, table, policy):
    stale = tmp_path / f".{IDX_FILES.train_images}.abc123.tmp"
    stale.write_bytes(b"partial")
    with MirrorServer(files) as server:
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert_verified(tmp_path, files)


def test_interrupt_mid_download_leaves_nothing(tmp_path, files, table, policy, monkeypatch):
    def interrupt(self, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(GzipDigest, "update", interrupt)
    with MirrorServer(files) as server, pytest.raises(KeyboardInterrupt):
        download_files(table, [Mirror(server.url)], tmp_path, policy)
    assert server.requests[IDX_FILES.train_images] == 1
    assert list(tmp_path.iterdir()) == []


# --- classification of single attempts -----------------------------------------------------------


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
def test_attempt_classification(tmp_path, files, table, action, transient, reason):
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


def test_refused_connection_is_transient_and_unreachable(tmp_path, table):
    mirror = Mirror(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(AttemptFailed) as caught:
        download_once(
            mirror, IDX_FILES.train_images, tmp_path / "f.gz", table[IDX_FILES.train_images], 2
        )
    assert caught.value.transient
    assert caught.value.unreachable


def test_missing_file_in_directory_mirror(tmp_path, table, policy, sleeps):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: no such file$"):
        fetch_file(
            IDX_FILES.train_images,
            table[IDX_FILES.train_images],
            [Mirror(str(tmp_path))],
            tmp_path / "x",
            policy,
        )
    assert sleeps == []


# --- pieces -------------------------------------------------------------------------------------


def test_gzip_digest_follows_gzip_module_rules(files):
    data = files[IDX_FILES.train_labels]
    two_members = data + data + b"\0" * 7  # concatenated members, zero padding
    digest = GzipDigest()
    for start in range(0, len(two_members), 100):
        digest.update(two_members[start : start + 100])
    assert digest.hexdigest() == hashlib.sha256(gzip.decompress(two_members)).hexdigest()


@pytest.mark.parametrize("chunk", [1, 1000, 1 << 20])
def test_gzip_digest_of_highly_compressed_data(chunk):
    # A few kB that inflate to MBs: output arrives in bounded pieces across many calls.
    payload = b"\0" * 3_000_017 + b"abc" * 700_000
    data = gz(payload)
    digest = GzipDigest()
    for start in range(0, len(data), chunk):
        digest.update(data[start : start + chunk])
    assert digest.size == len(payload)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (truncated(gz(b"x" * 5000)), "truncated gzip data"),
        (garbage(), "not a valid gzip file"),
        (b"", "empty file"),
        (gz(b"abc") + b"trailing junk", "not a valid gzip file"),
    ],
)
def test_gzip_digest_refuses_bad_streams(data, reason):
    def digest_of(data: bytes) -> str:
        digest = GzipDigest()
        digest.update(data)
        return digest.hexdigest()

    with pytest.raises(BadPayload, match=reason):
        digest_of(data)


def test_verify_file(tmp_path, files, table):
    path = write_files(tmp_path, files) / IDX_FILES.train_images
    assert verify_file(path, table[IDX_FILES.train_images]) is None
    assert verify_file(path, table[IDX_FILES.train_labels]).startswith("checksum mismatch")
    assert verify_file(tmp_path / "missing.gz", table[IDX_FILES.train_images]).startswith(
        "cannot read"
    )


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("http://h/mnist", "http://h/mnist/f.gz"),
        ("https://h/mnist/", "https://h/mnist/f.gz"),
        ("file:///srv/mnist/", "file:///srv/mnist/f.gz"),
        ("/srv/mnist/", "/srv/mnist/f.gz"),
    ],
)
def test_mirror_location_has_no_double_slash(prefix, expected):
    assert Mirror(prefix).location("f.gz") == expected


def test_parse_mirror(tmp_path):
    assert parse_mirror(f" {tmp_path} ", "--mirror") == Mirror(str(tmp_path))
    assert parse_mirror(tmp_path.as_uri(), "X").local_path("f.gz") == tmp_path / "f.gz"
    assert parse_mirror("https://h/p", "X").local_path("f.gz") is None
    for bad, message in [
        ("http://", "has no host"),
        ("s3://bucket/mnist", "unsupported mirror"),
        (str(tmp_path / "missing"), "is not a directory"),
        ("file://otherhost/dir", "only local file:// URLs"),
    ]:
        with pytest.raises(DataError, match=message):
            parse_mirror(bad, "X")


def test_mirror_resolution_order(tmp_path):
    mnist = sources.get_source("mnist")
    public = [Mirror(prefix) for prefix in mnist.mirrors]
    env = {"MNIST_MIRROR": str(tmp_path)}
    assert resolve_mirrors(None, {}, mnist) == public
    assert resolve_mirrors(None, {"MNIST_MIRROR": ""}, mnist) == public  # empty means unset
    assert resolve_mirrors(None, env, mnist) == [Mirror(str(tmp_path))]
    assert resolve_mirrors("https://h/m", env, mnist) == [Mirror("https://h/m")]
    with pytest.raises(DataError, match="--mirror: empty"):
        resolve_mirrors("", env, mnist)


def test_retry_policy_backoff_doubles():
    assert [RetryPolicy(backoff=1.5).delay(k) for k in range(4)] == [1.5, 3.0, 6.0, 12.0]


def test_human_size():
    assert [human_size(n) for n in (512, 4542, 9_719_438, 3_200_000_000)] == [
        "512 B",
        "4.5 kB",
        "9.7 MB",
        "3.2 GB",
    ]


def test_registry_matches_params_choices():
    for dataset in sources.DATA_SOURCES.values():
        assert dataset.n_classes == 10
        assert all(m.startswith(("http://", "https://")) for m in dataset.mirrors)


def test_shipped_checksum_tables_cover_every_file():
    for dataset in sources.DATA_SOURCES.values():
        table = checksums.read_checksums(dataset)
        assert list(table) == list(dataset.files)
        assert all(len(digest) == 64 for digest in table.values())


def test_parse_checksums_formats():
    digest = "ab" * 32
    text = f"# comment\n\n{digest}  a.gz\n{digest.upper()} *b\n"
    assert checksums.parse_checksums(text, "t") == {"a.gz": digest, "b.gz": digest}
    with pytest.raises(DataError, match=r"^t:2: expected '<sha256 hex>  <file name>'"):
        checksums.parse_checksums(f"{digest}  a.gz\nnot a line\n", "t")


def test_checksum_table_missing_an_entry(tmp_path, table):
    write_checksums(tmp_path, "mnist", {IDX_FILES.train_images: table[IDX_FILES.train_images]})
    with pytest.raises(DataError, match=f"no checksum for {IDX_FILES.train_labels}, "):
        checksums.read_checksums(sources.get_source("mnist"), tmp_path)
