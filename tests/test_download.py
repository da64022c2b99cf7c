"""The download command, run as a user runs it, against a real HTTP server on 127.0.0.1 (or a
folder) serving the small generated dataset."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from support.idx import assert_verified, write_checksums, write_files
from support.in_process import invoke_stage
from support.mirror_server import MirrorServer, closed_port, connections
from support.params import write_params
from support.stage import error_lines, temporaries

from stages.data.fetch import compressed_limit
from stages.data.sources import IDX_FILES, MNIST_FORMAT_SIZES

FAST = ("--backoff", "0.01", "--timeout", "2", "--retries", "2")


@pytest.fixture
def project(tmp_path: Path, table: Mapping[str, str]) -> Path:
    """A scratch directory with params.yaml and a checksum table for the generated dataset."""
    write_params(tmp_path, data={"dataset": "mnist"})
    write_checksums(tmp_path / "sums", "mnist", table)
    return tmp_path


def test_clean_download(project: Path, files: Mapping[str, bytes]) -> None:
    with MirrorServer(files) as server:
        result = invoke_stage(
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


def test_second_run_fetches_nothing(project: Path, files: Mapping[str, bytes]) -> None:
    with MirrorServer(files) as server:
        args = ("--checksums", "sums", "--mirror", server.url, *FAST)
        first = invoke_stage("download", project, *args)
        before = dict(server.requests)
        second = invoke_stage("download", project, *args)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert before == dict.fromkeys(IDX_FILES, 1)
    assert dict(server.requests) == before
    assert second.stderr.count("not fetched again") == 4
    assert_verified(project / "data/raw/mnist", files)


def test_a_killed_runs_temporary_file_is_removed(project: Path, files: Mapping[str, bytes]) -> None:
    stale = project / "data/raw/mnist" / f".{IDX_FILES.train_images}.abc12345.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"partial")
    with MirrorServer(files) as server:
        result = invoke_stage(
            "download", project, "--checksums", "sums", "--mirror", server.url, *FAST
        )
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)
    assert temporaries(project) == []


BAD_EVERYWHERE = {
    IDX_FILES.train_images: ("corrupt", "checksum mismatch (sha256 of the decompressed data is "),
    IDX_FILES.train_labels: ("404", "HTTP 404"),
    IDX_FILES.test_images: ("truncated", "truncated gzip data"),
    IDX_FILES.test_labels: ("garbage", "not a valid gzip file"),
}


@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_every_mirror_bad_exits_with_one_line_and_no_file(
    project: Path, files: Mapping[str, bytes], log_level: str
) -> None:
    """One short line says what failed where and what to do; DEBUG shows every attempt."""
    with MirrorServer(files) as server:
        for name, (action, _) in BAD_EVERYWHERE.items():
            server.script(name, action)
        result = invoke_stage(
            "download",
            project,
            "--checksums",
            "sums",
            "--mirror",
            server.url,
            "--log-level",
            log_level,
            *FAST,
        )
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith(f"error: could not get 4 of 4 files ({server.url}: checksum mismatch ")
    assert "(and 3 other problems)" in line
    assert "--mirror or MNIST_MIRROR" in line
    assert len(line) < 400
    for name, (_, reason) in BAD_EVERYWHERE.items():
        shown = f"{server.url}/{name}: {reason}" in result.stderr
        assert shown == (log_level == "DEBUG")
    assert ("Traceback" in result.stderr) == (log_level == "DEBUG")
    assert not (project / "data").exists()  # nor the folders made for the files


def test_plain_directory_mirror(project: Path, files: Mapping[str, bytes]) -> None:
    mirror = write_files(project / "mirror", files)
    result = invoke_stage("download", project, "--checksums", "sums", "--mirror", str(mirror))
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)


def test_file_url_mirror_from_environment(project: Path, files: Mapping[str, bytes]) -> None:
    mirror = write_files(project / "mirror dir", files)  # a space, quoted in the URL
    result = invoke_stage(
        "download", project, "--checksums", "sums", env={"MNIST_MIRROR": mirror.as_uri()}
    )
    assert result.returncode == 0, result.stderr
    assert_verified(project / "data/raw/mnist", files)


def test_mirror_option_beats_environment(project: Path, files: Mapping[str, bytes]) -> None:
    mirror = write_files(project / "mirror", files)
    result = invoke_stage(
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
    ("args", "env", "expected", "code"),
    [
        (("--mirror", "nowhere"), {}, "error: --mirror: 'nowhere' is not a directory", 1),
        ((), {"MNIST_MIRROR": "ftp://example.com/"}, "error: MNIST_MIRROR: unsupported mirror", 1),
        (("--mirror", "ftp://example.com/"), {}, "error: --mirror: unsupported mirror", 2),
        (("--mirror", "http://[::1"), {}, "error: --mirror: 'http://[::1' is not a valid URL", 2),
        ((), {"MNIST_MIRROR": "http://[::1"}, "error: MNIST_MIRROR: 'http://[::1' is not a val", 1),
        (("--mirror", "file:///no/such/dir"), {}, "is not a directory", 1),
        (("--checksums", "nowhere"), {}, "mnist.sha256: no checksum table for dataset 'mnist'", 1),
    ],
)
def test_bad_mirror_or_table_is_one_line(
    project: Path, args: tuple[str, ...], env: dict[str, str], expected: str, code: int
) -> None:
    """A malformed --mirror is the command line's fault (2); a mirror or table that is not
    there, or a malformed MNIST_MIRROR, is not (1)."""
    result = invoke_stage("download", project, *args, env=env)
    assert result.returncode == code
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
def test_bad_params_is_one_line_per_problem(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "params.yaml").write_text(text)
    result = invoke_stage("download", tmp_path, "--mirror", str(tmp_path))
    assert result.returncode == 1
    lines = error_lines(result)
    assert lines[0].startswith(f"error: {expected}")
    assert all(line.startswith("error: params.yaml: ") for line in lines)
    assert len(result.stderr.splitlines()) == len(lines)  # nothing else
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--timeout", "0"), "error: Invalid value for '--timeout': must be > 0, got 0"),
        (("--retries", "-1"), "error: Invalid value for '--retries'"),
    ],
)
def test_bad_option_is_a_usage_error(project: Path, args: tuple[str, ...], expected: str) -> None:
    result = invoke_stage("download", project, *args)
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)


def test_a_mirror_with_a_bad_port_is_refused_at_once(tmp_path: Path) -> None:
    write_params(tmp_path)
    result = invoke_stage("download", tmp_path, "--mirror", "http://127.0.0.1:abc/")
    assert result.returncode == 2
    assert error_lines(result) == ["error: --mirror: 'http://127.0.0.1:abc/' has an invalid port"]


def test_a_stray_top_level_key_is_refused_with_a_hint(project: Path) -> None:
    with (project / "params.yaml").open("a", encoding="utf-8") as params:
        params.write("dataset: mnist\n")
    result = invoke_stage("download", project, "--mirror", str(project))
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: params.yaml: unknown key dataset (did you mean data.dataset?)"
    ]
    assert not (project / "data").exists()


def test_a_redirect_to_ftp_is_refused_without_connecting(
    project: Path, files: Mapping[str, bytes], listener: socket.socket
) -> None:
    name = IDX_FILES.train_images
    target = f"ftp://127.0.0.1:{listener.getsockname()[1]}/{name}"
    with MirrorServer(files) as server:
        server.script(name, f"redirect {target}")
        result = invoke_stage("download", project, "--checksums", "sums", "--mirror", server.url)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: could not get 1 of 4 files ({server.url}: redirected to {target}, which is "
        "not an http(s) URL); give another mirror with --mirror or MNIST_MIRROR (a folder or "
        "URL holding the .gz files), --log-level DEBUG shows every attempt"
    ]
    assert server.requests[name] == 1  # refused at once, not retried
    assert connections(listener) == 0
    assert sorted(p.name for p in (project / "data/raw/mnist").iterdir()) == sorted(
        set(IDX_FILES) - {name}
    )


def test_an_endless_body_is_cut_at_the_size_cap(project: Path, files: Mapping[str, bytes]) -> None:
    """A mirror that sends the training images followed by zero padding without end (no
    Content-Length): read up to the cap MNIST's known size gives, then dropped."""
    name = IDX_FILES.train_images
    limit = compressed_limit(MNIST_FORMAT_SIZES[name])
    with MirrorServer(files) as server:
        server.script(name, "endless")
        result = invoke_stage("download", project, "--checksums", "sums", "--mirror", server.url)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line.startswith(
        f"error: could not get 1 of 4 files ({server.url}: sent more than the {limit} bytes "
        "this file can take); "
    )
    assert limit < server.sent[name] < limit + (4 << 20)  # the cap, and what was in flight
    assert server.requests[name] == 1
    assert temporaries(project) == []
    assert not (project / "data/raw/mnist" / name).exists()


def test_offline_the_failure_is_one_short_line_naming_the_way_out(project: Path) -> None:
    """No mirror answers (a closed port on 127.0.0.1): one line that names the mirror once and
    the --mirror option and MNIST_MIRROR; every attempt is shown with --log-level DEBUG."""
    mirror = f"http://127.0.0.1:{closed_port()}"
    args = ("--checksums", "sums", "--mirror", mirror, *FAST)
    result = invoke_stage("download", project, *args)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: could not get 4 of 4 files ({mirror}: cannot connect (Connection refused) "
        "(3 attempts)); give another mirror with --mirror or MNIST_MIRROR (a folder or URL "
        "holding the .gz files), --log-level DEBUG shows every attempt"
    ]
    debug = invoke_stage("download", project, *args, "--log-level", "DEBUG")
    assert error_lines(debug) == error_lines(result)
    assert f"{mirror}/{IDX_FILES.train_images}: cannot connect (Connection refused)" in (
        debug.stderr
    )
    assert "Traceback" in debug.stderr


@pytest.mark.slow
def test_a_mirror_that_drips_is_given_up_within_its_deadline(
    project: Path, files: Mapping[str, bytes]
) -> None:
    """One byte a second: every read returns within --timeout, the whole never would. The
    attempt's deadline is --timeout plus the file's size at --min-rate."""
    name = IDX_FILES.train_labels
    with MirrorServer(files, drip_seconds=0.5) as server:
        server.script(name, "drip")
        timeout, min_rate = 1.0, 0.05  # seconds, kB/s: about 2 s for this file
        deadline = timeout + len(files[name]) / (min_rate * 1000)
        started = time.monotonic()
        result = invoke_stage(
            "download",
            project,
            *FAST[:2],  # --backoff
            "--retries",
            "0",
            "--timeout",
            str(timeout),
            "--min-rate",
            str(min_rate),
            "--checksums",
            "sums",
            "--mirror",
            server.url,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"{server.url}: too slow: not done within {deadline:.3g} s" in line
    # given up at its deadline (plus the start and the other three files), long before the
    # drip would end
    assert deadline < elapsed < deadline + 5 < len(files[name]) * server.drip_seconds
    assert not (project / "data/raw/mnist" / name).exists()
    assert temporaries(project) == []


@pytest.mark.slow
def test_a_slow_mirror_that_sends_no_length_is_given_up_once_behind_the_minimum_rate(
    project: Path, files: Mapping[str, bytes]
) -> None:
    """No Content-Length, ten bytes a second: the deadline cannot come from the length.
    From the largest size the file may have (47 MB decompressed for the training images) it
    would be 40 minutes at the default 20 kB/s; instead the attempt must keep up --min-rate
    once --timeout has passed, and is given up as soon as it falls behind."""
    name = IDX_FILES.train_images
    timeout, min_rate = 1.0, 0.05  # seconds, kB/s: behind after about 1.25 s
    with MirrorServer(files, drip_seconds=0.1) as server:
        server.script(name, "trickle")
        started = time.monotonic()
        result = invoke_stage(
            "download",
            project,
            "--retries",
            "0",
            "--timeout",
            str(timeout),
            "--min-rate",
            str(min_rate),
            "--checksums",
            "sums",
            "--mirror",
            server.url,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"{server.url}: too slow: no length announced, and " in line
    assert f"below {min_rate:g} kB/s (--min-rate) once --timeout had passed" in line
    assert elapsed < 10  # the deadline of its largest size would be 40 minutes or more
    assert server.sent[name] < 100
    assert not (project / "data/raw/mnist" / name).exists()
    assert temporaries(project) == []


def test_a_folder_of_pictures_has_nothing_to_download(
    tmp_path: Path, files: Mapping[str, bytes]
) -> None:
    """data.dataset images: no mirror is asked; data/raw (the stage's DVC output) exists,
    empty, and the log says where preprocess reads instead."""
    write_params(tmp_path, data={"dataset": "images", "images": "my-pictures"})
    with MirrorServer(files) as server:
        result = invoke_stage("download", tmp_path, env={"MNIST_MIRROR": server.url})
    assert result.returncode == 0, result.stderr
    assert server.requests == {}
    assert list((tmp_path / "data/raw").iterdir()) == []
    assert "images: nothing to download; preprocess builds the pictures of my-pictures" in (
        result.stderr
    )
