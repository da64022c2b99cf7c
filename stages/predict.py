"""Predict what a trained model sees in your own images (a command, not a DVC stage).

Run as ``python -m stages.predict PATH...``: image files, or folders of them. Each image
goes through the construction the model's training images were built with (the model file
says which: MNIST's, also for a folder of your own pictures, or Fashion-MNIST's, see
``stages/images/``), then through the
normalization the model was trained with, one picture at a time (``stages.reader``, the
path ``python -m stages.serve`` answers with). Prints a table, or with ``--json`` one JSON
array; ``--save-inputs DIR`` writes the 28x28 image the model saw for each input (checked
before any picture is read: it never writes over an input, nor over a file it did not write
in this run unless ``--overwrite``). An image that cannot be used gets one ``error:`` line
naming it, the others are still predicted, and the exit code is 1. File names that are not
UTF-8 are shown with ``\\xNN`` escapes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

from nnlib.errors import NNLibError
from stages.cli.app import MODEL_PATH, LogLevelOption, ModelOption, new_app, run, stage_errors
from stages.cli.errors import StageError, UsageError
from stages.images.files import find_images
from stages.outputs.atomic import OutputSet
from stages.outputs.errors import OutputError, OutputsBusy
from stages.outputs.predictions import Result, display_path, write_json, write_table
from stages.outputs.saved_inputs import plan_targets
from stages.reader.reader import Outcome, Reader

logger = logging.getLogger("stages.predict")

app = new_app("Predict the class of your own images (files or folders) with a trained model.")


def save_inputs(targets: list[Path], images: list[np.ndarray]) -> None:
    """Write each 28x28 image ``(28, 28)`` uint8 as the PNG ``targets`` says, as one set."""
    with OutputSet() as outputs:
        for target, pixels in zip(targets, images, strict=True):
            with outputs.open(target) as handle:
                Image.fromarray(pixels).save(handle, format="PNG")


@app.command()
def main(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="Image files, or folders of them (searched recursively).",
            show_default=False,
            readable=False,  # an unreadable file is that file's error, not a usage error
        ),
    ],
    model_path: ModelOption = MODEL_PATH,
    k: Annotated[
        int, typer.Option("--top-k", "--top_k", min=1, help="How many classes to list per image.")
    ] = 3,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON array instead of a table.")
    ] = False,
    inputs_dir: Annotated[
        Path | None,
        typer.Option(
            "--save-inputs",
            "--save_inputs",
            help="Write the 28x28 image the model saw for each input here, as PNG.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Let --save-inputs replace files already there (never inputs)."
        ),
    ] = False,
    log_level: LogLevelOption = "WARNING",
) -> None:
    """Predict the class of each image and print it with the model's confidence."""
    with stage_errors(log_level, NNLibError) as stage:
        if sys.stdout is None:  # started with its standard output closed (`>&-`)
            raise StageError("standard output is closed: nowhere to print the answers")
        # A file name the terminal cannot show must not cost the whole table.
        sys.stdout.reconfigure(errors="backslashreplace")
        reader = Reader.load(model_path)
        names = list(reader.class_names)

        entries = find_images(paths)
        readable = [entry for entry in entries if entry.error is None]
        targets: dict[Path, Path] = {}
        if inputs_dir is not None:
            planned = plan_targets(inputs_dir, [e.path for e in readable], overwrite)
            targets = dict(zip([e.path for e in readable], planned, strict=True))
            try:  # locking the folder creates it: the folder's test
                stage.claim(*planned)
            except OutputsBusy:
                raise
            except OutputError as exc:
                raise UsageError(f"--save-inputs {display_path(inputs_dir)}: {exc}") from None

        outcomes: Iterable[Outcome] = reader.outcomes(entries)
        if targets:  # saved as one set, before anything is printed
            outcomes = list(outcomes)
            seen = [(entry.path, o) for entry, o, _ in outcomes if isinstance(o, np.ndarray)]
            save_inputs([targets[file] for file, _ in seen], [image for _, image in seen])
        failed: list[Result] = []

        def results() -> Iterator[Result]:
            for entry, outcome, probabilities in outcomes:
                result = reader.result(display_path(entry.path), outcome, probabilities, k)
                if result.error is not None:
                    failed.append(result)
                yield result

        if as_json:
            write_json(results(), sys.stdout)
        else:
            files = [display_path(entry.path) for entry in entries]
            write_table(results(), min(k, len(names)), files, names, sys.stdout)
        sys.stdout.flush()  # a reader gone (`| head`) is met here, not at the interpreter's exit
        for result in failed:
            print(f"error: {result.file}: {result.error}", file=sys.stderr)
        if failed:
            raise typer.Exit(1)


if __name__ == "__main__":
    run(app)
