"""How fast ``python -m stages.serve`` answers a drawn digit: the latency of one client, and
the requests per second of several at once.

The digit is what the page sends: a 280x280 PNG (RGBA, as ``canvas.toBlob`` writes it) of a
"7" drawn with the page's 20-pixel round marker, dark on white. The server runs with
``models/model.npz`` and its defaults (one picture reader per core, at most 4).

- latency: one client on one kept-alive connection, as the page keeps it: ``--warmup``
  requests, then ``--requests`` one after another, each timed from sending to the answer's
  last byte; p50, p95, mean and max in milliseconds;
- throughput: ``--clients`` clients at once, each on its own connection, ``--per-client``
  requests each: requests per second over the wall time, and their latencies;
- for comparison, ``python -m stages.predict`` on the same file as a new process (what a
  program had to do before), the median of 3.

Written to ``bench/serve.json``. Run it on an otherwise idle machine; it takes well under a
minute.

    python bench/serve_speed.py [--model models/model.npz] [--requests 200] [--clients 8]
        [--per-client 100] [--json bench/serve.json]
"""

from __future__ import annotations

import http.client
import io
import json
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image, ImageDraw
from results import run_description

CANVAS = 280
STROKE = 20
SEVEN = [(76, 56), (204, 56), (126, 238)]


def drawn_seven() -> bytes:
    """The PNG the page sends for a "7" drawn on its canvas."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.line(SEVEN, fill=(17, 17, 17, 255), width=STROKE, joint="curve")
    for x, y in (SEVEN[0], SEVEN[-1]):  # round caps
        draw.ellipse(
            (x - STROKE / 2, y - STROKE / 2, x + STROKE / 2, y + STROKE / 2), fill=(17,) * 3
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def timed_requests(host: str, port: int, picture: bytes, n: int) -> list[float]:
    """``n`` requests one after another on one connection: each one's seconds."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        connection.request("POST", "/predict", body=picture)
        response = connection.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body!r}")
    connection.close()
    return times


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def predict_process_s(model: Path, picture: bytes) -> float:
    """Median wall seconds of ``python -m stages.predict FILE --json`` as a new process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seven.png"
        path.write_bytes(picture)
        command = [sys.executable, "-m", "stages.predict", str(path), "--model", str(model)]
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([*command, "--json"], capture_output=True, check=True)
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)


def main(
    model_path: Annotated[Path, typer.Option("--model", help="The trained model.")] = Path(
        "models/model.npz"
    ),
    requests: Annotated[int, typer.Option(min=1, help="Requests timed one by one.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Requests before timing.")] = 20,
    clients: Annotated[int, typer.Option(min=1, help="Clients at once.")] = 8,
    per_client: Annotated[int, typer.Option(min=1, help="Requests per client.")] = 100,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the numbers.")] = Path(
        "bench/serve.json"
    ),
) -> None:
    command = shlex.join(["python", *sys.argv])
    print(command)
    if not model_path.is_file():
        raise typer.BadParameter(f"{model_path}: no model file there (dvc repro writes one)")
    picture = drawn_seven()
    server = subprocess.Popen(
        [sys.executable, "-m", "stages.serve", "--port", "0", "--model", str(model_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[1]
        host, port_text = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        port = int(port_text)
        timed_requests(host, port, picture, warmup)
        latency = summary(timed_requests(host, port, picture, requests))
        print(f"one client, {requests} requests: {latency}", flush=True)

        results: list[list[float]] = [[] for _ in range(clients)]

        def client(n: int) -> None:
            results[n] = timed_requests(host, port, picture, per_client)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        every = [t for times in results for t in times]
        load: dict[str, Any] = {
            "clients": clients,
            "requests": len(every),
            "wall_s": wall,
            "requests_per_s": len(every) / wall,
            **summary(every),
        }
        print(f"{clients} clients: {load}", flush=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait()
    process = predict_process_s(model_path, picture)
    print(f"predict as a new process: {process:.3f} s", flush=True)
    report = {
        **run_description(command),
        "model": str(model_path),
        "picture": f"a drawn 7, {CANVAS}x{CANVAS} RGBA PNG, {len(picture)} bytes",
        "latency": {"requests": requests, "warmup": warmup, **latency},
        "concurrent": load,
        "predict_process_s": process,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
