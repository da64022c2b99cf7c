"""Draw a digit and see what the model reads: a local web server (a command, not a DVC
stage).

Run as ``python -m stages.serve``: ``GET /`` is a page to draw on (or to drop a picture
on) that shows the model's answer as you draw, with the 28x28 picture the model saw;
``POST /predict`` with a picture's bytes as the body answers the JSON object ``python -m
stages.predict --json`` prints for that file, without ``"file"`` (``stages/serving/``,
``docs/serve.md``). It listens on 127.0.0.1 unless ``--host`` says otherwise, and stops
with Ctrl-C. A model file that is missing or unusable stops it at the start with one
``error:`` line, as predict does.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from nnlib.errors import NNLibError
from stages.cli.app import MODEL_PATH, LogLevelOption, ModelOption, new_app, run, stage_errors
from stages.reader.reader import Reader
from stages.serving.limits import TIMEOUT, Limits, default_workers
from stages.serving.server import open_server

logger = logging.getLogger("stages.serve")

app = new_app("Serve a page to draw a digit on and see what the model reads, and POST /predict.")


@app.command()
def main(
    host: Annotated[
        str,
        typer.Option(
            help="The address to listen on; anything but 127.0.0.1 (or ::1) lets "
            "other machines use the model."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The port; 0 picks a free one.")
    ] = 8000,
    model_path: ModelOption = MODEL_PATH,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Pictures read at once (default: one per core, at most 4)."
        ),
    ] = default_workers(),
    timeout: Annotated[
        float,
        typer.Option(min=0.1, max=3600, help="Seconds a client may take to send a request."),
    ] = TIMEOUT,
    log_level: LogLevelOption = "WARNING",
) -> None:
    """Serve the draw-a-digit page and the predict endpoint until Ctrl-C."""
    with stage_errors(log_level, NNLibError):
        reader = Reader.load(model_path)
        with open_server(reader, host, port, Limits(workers=workers, timeout=timeout)) as server:
            if not server.local_only:
                logger.warning("%s: other machines can reach this server and its model", host)
            print(f"serving {server.url} with {model_path} (Ctrl-C stops)", flush=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                print("stopped", file=sys.stderr)


if __name__ == "__main__":
    run(app)
