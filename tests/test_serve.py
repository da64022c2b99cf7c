"""``python -m stages.serve``: a real server on a free port of 127.0.0.1, real HTTP requests.

``POST /predict`` must answer, for every file, exactly the object ``predict --json`` prints
for it (the file name aside); every hostile request a one-line JSON error with a 4xx (or
503) status, in bounded time and memory, after which the server still answers.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.in_process import invoke_stage
from support.models import digit_model
from support.optdigits import mnist_like, optdigits
from support.serve_process import Answer, Server, serving, start_server, stop_server
from support.stage import error_lines
from support.user_images import png_header_only, seven_digit
from support.user_looks import LOOKS

from stages.serving.limits import MAX_BODY
from stages.serving.server import is_loopback

pytestmark = pytest.mark.slow  # a server process per module, requests of a second or more

OWN_CLASSES = ["circle", "cross", "dash"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model (random weights, MNIST's metadata) and pictures of every look in ``users/``:
    optdigits' handwriting redrawn as users' files look, three per look, and files predict
    cannot use."""
    root = tmp_path_factory.mktemp("serve")
    digit_model(seed=5).save(root / "model.npz")
    users = root / "users"
    users.mkdir()
    images, _ = optdigits()
    rng = np.random.default_rng(0)
    for n, (name, look) in enumerate(LOOKS.items()):
        for i in range(3):
            look(
                mnist_like(images[3 * n + i]), rng, users / f"{n:02d}-{i}-{name.replace(' ', '_')}"
            )
    (users / "notes.png").write_text("a text file named as a picture\n")
    (users / "empty.png").write_bytes(b"")
    Image.new("L", (60, 40), 255).save(users / "blank.png")
    (users / "bomb.png").write_bytes(png_header_only(30_000, 30_000))
    return root


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[Server]:
    with serving(folder, "--model", "model.npz") as running:
        yield running


def predicted(folder: Path, *args: str) -> dict[str, dict]:
    """``predict --json`` on ``args`` in ``folder``: file name -> its object."""
    result = invoke_stage("predict", folder, *args, "--model", "model.npz", "--json")
    assert result.returncode in (0, 1), result.stderr
    return {Path(item.pop("file")).name: item for item in json.loads(result.stdout)}


def raw_exchange(server: Server, data: bytes, *, close_write: bool = False) -> bytes:
    """Send ``data`` as it is on a new connection; everything the server sends until it
    closes the connection (at most 30 s)."""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def parse(raw: bytes) -> Answer:
    """The first HTTP answer in ``raw``."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split()[1]), headers, body[: int(headers["content-length"])])


def assert_json_error(answer: Answer, status: int, message: str = "") -> None:
    """``answer`` is ``status`` with one line of JSON ``{"error": ...}`` holding ``message``."""
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.body.endswith(b"\n")
    assert answer.body.count(b"\n") == 1
    assert list(answer.json) == ["error"]
    assert message in answer.json["error"]


def still_serving(server: Server, folder: Path) -> None:
    picture = (folder / "users" / "notes.png").read_bytes()
    assert server.predict(picture).status == 422
    answer = server.request("GET", "/model")
    assert answer.status == 200
    assert server.process.poll() is None


# --- what it answers


def test_every_file_is_answered_as_predict_prints_it(server: Server, folder: Path) -> None:
    expected = predicted(folder, "users")
    files = sorted((folder / "users").iterdir())
    assert len(expected) == len(files) == 3 * len(LOOKS) + 4
    for path in files:
        answer = server.predict(path.read_bytes())
        assert answer.json == expected[path.name], path.name
        assert answer.status == (422 if "error" in answer.json else 200), path.name
        assert answer.headers["content-type"] == "application/json"
    assert sum("error" in item for item in expected.values()) == 4  # notes, empty, blank, bomb


def test_top_k_is_predicts_top_k(server: Server, folder: Path) -> None:
    path = next((folder / "users").glob("00-0-*"))
    for k in (1, 3, 10, 50):
        expected = predicted(folder, str(path), "--top-k", str(k))[path.name]
        assert server.predict(path.read_bytes(), f"top_k={k}").json == expected


def test_seen_is_the_picture_predict_saves(server: Server, folder: Path, tmp_path: Path) -> None:
    paths = sorted((folder / "users").glob("0[0-4]-0-*"))
    saved = tmp_path / "seen"
    result = invoke_stage(
        "predict", folder, *map(str, paths), "--model", "model.npz", "--save-inputs", str(saved)
    )
    assert result.returncode == 0, result.stderr
    for path in paths:
        answer = server.predict(path.read_bytes(), "seen=1")
        assert answer.status == 200
        prefix = "data:image/png;base64,"
        assert answer.json["seen"].startswith(prefix)
        png = base64.b64decode(answer.json["seen"][len(prefix) :])
        assert png == (saved / f"{path.stem}.png").read_bytes()
        without = server.predict(path.read_bytes(), "seen=0").json
        assert {k: v for k, v in answer.json.items() if k != "seen"} == without


def test_the_model_endpoint_names_the_classes(tmp_path: Path) -> None:
    model = digit_model(dataset="images", class_names=OWN_CLASSES)
    model.metadata["construction"] = "mnist"
    model.save(tmp_path / "own.npz")
    with serving(tmp_path, "--model", "own.npz") as server:
        answer = server.request("GET", "/model")
        assert answer.json == {"dataset": "images", "class_names": OWN_CLASSES}
        Image.fromarray(np.rint(250 - 230 * seven_digit()).astype(np.uint8)).save(
            tmp_path / "a.png"
        )
        reading = server.predict((tmp_path / "a.png").read_bytes(), "top_k=3").json
        assert {entry["class"] for entry in reading["top_k"]} == set(OWN_CLASSES)
        assert reading["prediction"] in OWN_CLASSES


def test_the_page_is_one_self_contained_file(server: Server) -> None:
    answer = server.request("GET", "/")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    page = answer.body.decode()
    # Nothing to fetch from elsewhere: every src and href is inline data, the page's own
    # fetches are relative ("model", "predict"), and no address names another host.
    attributes = re.findall(r"""\s(?:src|href)=["']([^"']*)["']""", page)
    assert len(attributes) >= 2  # the icon and the seen picture's placeholder
    assert [value for value in attributes if not value.startswith("data:")] == []
    assert re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page) == []
    assert "<canvas" in page
    assert 'fetch("predict' in page
    head = server.request("HEAD", "/")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-length"] == str(len(answer.body))


# --- hostile requests


def test_a_30_mb_body_is_refused_unread_and_the_server_still_answers(
    server: Server, folder: Path
) -> None:
    peak_before = peak_memory_kb(server)
    started = time.monotonic()
    answer = server.predict(b"\0" * (30 * 2**20))
    assert_json_error(answer, 413, f"the limit is {MAX_BODY} bytes")
    assert answer.headers["connection"] == "close"
    assert time.monotonic() - started < 5
    assert peak_memory_kb(server) - peak_before < 8 * 1024  # never held: drained and dropped
    # A client that asks first (Expect: 100-continue, as curl does) is refused before sending.
    raw = raw_exchange(
        server,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 31457280\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    assert not raw.startswith(b"HTTP/1.1 100")
    assert_json_error(parse(raw), 413)
    still_serving(server, folder)


def peak_memory_kb(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def test_a_text_file_is_refused_and_the_server_still_answers(server: Server, folder: Path) -> None:
    answer = server.predict(b"Dear server, this is not a picture.\n")
    assert_json_error(answer, 422, "not an image (no format Pillow reads)")
    assert "connection" not in answer.headers  # the request was whole: the connection lives
    still_serving(server, folder)


def test_a_decompression_bomb_is_refused_from_its_header(server: Server, folder: Path) -> None:
    started = time.monotonic()
    answer = server.predict(png_header_only(30_000, 30_000))
    assert_json_error(answer, 422, "image too large")
    assert time.monotonic() - started < 2
    still_serving(server, folder)


def test_a_chunked_body_is_read_within_the_limit(server: Server, folder: Path) -> None:
    path = next((folder / "users").glob("01-0-*"))
    picture = path.read_bytes()
    chunks = b"".join(
        f"{len(picture[i : i + 1000]):x}\r\n".encode() + picture[i : i + 1000] + b"\r\n"
        for i in range(0, len(picture), 1000)
    )
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = parse(raw_exchange(server, head + chunks + b"0\r\n\r\n"))
    assert answer.status == 200
    assert answer.json == predicted(folder, str(path))[path.name]

    # Chunks adding up to more than the limit are refused as they arrive.
    big = b"".join(f"{2**20:x}\r\n".encode() + b"\0" * 2**20 + b"\r\n" for _ in range(12))
    assert_json_error(parse(raw_exchange(server, head + big + b"0\r\n\r\n")), 413)
    for malformed in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef", b"-1\r\n\r\n"):
        assert_json_error(parse(raw_exchange(server, head + malformed, close_write=True)), 400)
    still_serving(server, folder)


@pytest.mark.parametrize(
    ("request_head", "status", "message"),
    [
        (b"Content-Length: 1000", 400, "the body ended after 10 of the 1000 bytes"),
        (b"Content-Length: ten", 400, "Content-Length"),
        (b"Content-Length: 10\r\nContent-Length: 12", 400, "Content-Length"),
        (b"Content-Length: 10\r\nTransfer-Encoding: chunked", 400, "both"),
        (b"Transfer-Encoding: gzip", 501, "not supported"),
        (b"Connection: close", 411, "no Content-Length"),
    ],
)
def test_a_body_that_lies_about_its_length_is_refused(
    server: Server, folder: Path, request_head: bytes, status: int, message: str
) -> None:
    raw = raw_exchange(
        server,
        b"POST /predict HTTP/1.1\r\nHost: x\r\n" + request_head + b"\r\n\r\n" + b"0123456789",
        close_write=True,
    )
    answer = parse(raw)
    assert_json_error(answer, status, message)
    assert answer.headers["connection"] == "close"
    still_serving(server, folder)


def test_bytes_beyond_the_length_are_a_bad_next_request(server: Server, folder: Path) -> None:
    raw = raw_exchange(
        server,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nGIF8 and then some more",
        close_write=True,
    )
    first, second = raw.split(b"HTTP/1.1 ", 2)[1:]
    assert_json_error(parse(b"HTTP/1.1 " + first), 422)
    assert_json_error(parse(b"HTTP/1.1 " + second), 400)
    still_serving(server, folder)


def test_a_client_that_goes_away_costs_no_traceback(server: Server, folder: Path) -> None:
    """Requests sent, the answers never read, the connection reset: the server logs at
    most a line and answers the next client."""
    for _ in range(3):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 500)
            time.sleep(0.2)  # answers pile up unread
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    still_serving(server, folder)
    assert "Traceback" not in server.stderr()
    assert "Exception" not in server.stderr()


def test_a_form_upload_is_refused_with_what_to_send(server: Server, folder: Path) -> None:
    answer = server.request(
        "POST",
        "/predict",
        b"--x\r\nContent-Disposition: form-data; name=f\r\n\r\nabc\r\n--x--\r\n",
        {"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert_json_error(answer, 415, "--data-binary")
    still_serving(server, folder)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/predict", 405, "POST"),
        ("PUT", "/predict", 405, "POST"),
        ("DELETE", "/predict", 405, "POST"),
        ("PATCH", "/predict", 405, "POST"),
        ("OPTIONS", "/predict", 405, "POST"),
        ("BREW", "/predict", 405, "POST"),
        ("POST", "/", 405, "GET, HEAD"),
        ("DELETE", "/model", 405, "GET, HEAD"),
        ("GET", "/nothing", 404, None),
        ("POST", "/predict/", 404, None),
        ("GET", "/../../etc/passwd", 404, None),
    ],
)
def test_wrong_methods_and_paths_are_json_errors(
    server: Server, folder: Path, method: str, path: str, status: int, allow: str | None
) -> None:
    answer = server.request(method, path, b"x" * 100 if method != "GET" else None)
    assert_json_error(answer, status)
    assert answer.headers.get("allow") == allow
    still_serving(server, folder)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("top_k=0", "top_k must be 1 or more"),
        ("top_k=three", "top_k must be 1 or more"),
        ("seen=maybe", "seen must be 1 or 0"),
        ("colour=red", "unknown query parameter 'colour'"),
        ("&".join(f"seen=1&top_k={k}" for k in range(9)), "too many query parameters"),
    ],
)
def test_bad_query_parameters_are_400_and_keep_the_connection(
    server: Server, folder: Path, query: str, message: str
) -> None:
    picture = next((folder / "users").glob("02-0-*")).read_bytes()
    connection = server.connection()
    try:
        connection.request("POST", f"/predict?{query}", body=picture)
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 400
        assert message in json.loads(body)["error"]
        connection.request("POST", "/predict", body=picture)  # the same connection, again
        assert connection.getresponse().status == 200
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
    ],
)
def test_malformed_requests_are_json_errors(
    server: Server, folder: Path, raw: bytes, status: int
) -> None:
    assert_json_error(parse(raw_exchange(server, raw, close_write=True)), status)
    still_serving(server, folder)


@pytest.fixture(scope="module")
def slow_server(folder: Path) -> Iterator[Server]:
    """A server that gives each request 1 s to arrive and reads one picture at a time."""
    with serving(folder, "--model", "model.npz", "--timeout", "1", "--workers", "1") as running:
        yield running


def test_a_slow_client_is_cut_off_and_others_are_served(slow_server: Server, folder: Path) -> None:
    stalled = socket.create_connection((slow_server.host, slow_server.port), timeout=10)
    dripping = socket.create_connection((slow_server.host, slow_server.port), timeout=10)
    silent = socket.create_connection((slow_server.host, slow_server.port), timeout=10)
    with stalled, dripping, silent:
        started = time.monotonic()
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        dripping.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        still_serving(slow_server, folder)  # meanwhile, others are answered

        def drip() -> None:  # a byte every 0.2 s would take 20 s
            for _ in range(100):
                try:
                    dripping.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.2)

        threading.Thread(target=drip, daemon=True).start()
        for sock in (stalled, dripping):
            answer = parse(sock.recv(65536))
            assert_json_error(answer, 408, "took longer than 1 s")
        assert time.monotonic() - started < 3
        # A connection that never says a word is closed after the timeout, unanswered.
        assert silent.recv(100) == b""
        assert time.monotonic() - started < 3
    still_serving(slow_server, folder)


def test_many_requests_at_once_get_answers_or_busy(slow_server: Server, folder: Path) -> None:
    """One reader and 8 places to wait: of 30 requests for a large picture sent at once,
    some are told the server is busy (503 with JSON); the others get the picture's answer."""
    big = np.full((2400, 2400), 255, dtype=np.uint8)
    big[300:2100, 1000:1400] = 0  # a "1", drawn large: a second or so to read
    path = folder / "big-one.png"
    Image.fromarray(big).save(path, compress_level=1)
    expected = predicted(folder, str(path))[path.name]
    picture = path.read_bytes()
    answers: list[Answer] = []

    def ask() -> None:
        answers.append(slow_server.predict(picture))

    threads = [threading.Thread(target=ask) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 30
    busy = [answer for answer in answers if answer.status == 503]
    assert all(answer.json == expected for answer in answers if answer.status == 200)
    assert {answer.status for answer in answers} == {200, 503}
    assert 1 + 8 <= len(answers) - len(busy) <= 30
    for answer in busy:
        assert_json_error(answer, 503, "busy")
        assert answer.headers["retry-after"] == "1"
    still_serving(slow_server, folder)
    path.unlink()


# --- the command


def test_ctrl_c_stops_it(folder: Path) -> None:
    server = start_server(folder, "--model", "model.npz")
    assert server.url.startswith("http://127.0.0.1:")  # loopback unless --host says otherwise
    assert server.request("GET", "/model").status == 200
    assert stop_server(server) == 0
    assert server.stderr().strip() == "stopped"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (None, "no model file there; train one first"),
        (b"not a model", "model.npz"),
        ("cifar", "dataset must be"),
    ],
)
def test_a_missing_or_bad_model_fails_at_the_start(
    tmp_path: Path, damage: bytes | str | None, message: str
) -> None:
    model = tmp_path / "model.npz"
    if isinstance(damage, bytes):
        model.write_bytes(damage)
    elif damage == "cifar":
        digit_model(dataset="cifar").save(model)
    result = invoke_stage("serve", tmp_path, "--model", "model.npz", "--port", "0")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(error_lines(result)) == len(result.stderr.splitlines()) == 1
    assert error_lines(result)[0].startswith("error: model.npz")
    assert message in result.stderr


def test_a_port_in_use_and_a_foreign_host_are_one_line(folder: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = invoke_stage("serve", folder, "--model", "model.npz", "--port", port)
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: 127.0.0.1:{port}: the port is in use (another server?); choose another --port"
    ]
    # An address of another machine (TEST-NET-3, documentation only) cannot be listened on.
    result = invoke_stage("serve", folder, "--model", "model.npz", "--host", "203.0.113.7")
    assert result.returncode == 2
    assert error_lines(result) == ["error: --host 203.0.113.7: not an address of this machine"]


def test_only_loopback_addresses_count_as_this_machine_alone() -> None:
    """Anything else makes the command warn that other machines can reach the model."""
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.20", "fe80::1%eth0"]))
