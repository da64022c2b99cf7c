"""Predict what a trained model sees in your own images (a command, not a DVC stage).

Run as ``python -m stages.predict PATH...``: image files, or folders of them. Each image
goes through the construction of the dataset the model was trained on (the model file
says which: MNIST's or Fashion-MNIST's, see ``stages/images/``), then through the
normalization the model was trained with. Prints a table, or with ``--json`` one JSON
array; ``--save-inputs DIR`` writes the 28x28 image the model saw for each input. An
image that cannot be used gets one ``error:`` line naming it, the others are still
predicted, and the exit code is 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

from nnlib.errors import NNLibError
from nnlib.model import Model
from stages.cli.app import LogLevelOption, new_app, run, stage_errors
from stages.cli.errors import StageError
from stages.images.batches import Outcome, classified
from stages.images.constructions import IMAGE_SHAPE, construction_for, normalize
from stages.images.errors import ImageError
from stages.images.files import Entry, find_images
from stages.images.reading import Picture, read_image
from stages.outputs.atomic import OutputSet
from stages.outputs.predictions import Result, top_k, write_json, write_table

logger = logging.getLogger("stages.predict")

app = new_app("Predict the class of your own images (files or folders) with a trained model.")


def load_model(path: Path) -> Model:
    """The model at ``path``, checked to take 28x28 images of a dataset predict knows."""
    if not path.is_file():
        raise StageError(f"{path}: no model file there; train one first (dvc repro)")
    model = Model.load(path)
    shape = tuple(model.image_shape or IMAGE_SHAPE)
    problem = None
    if shape != IMAGE_SHAPE or model.input_size != int(np.prod(IMAGE_SHAPE)):
        problem = f"takes {model.input_size} inputs of {list(shape)} images, predict makes 28x28"
    elif model.normalization is None:
        problem = "does not say how its inputs were normalized"
    elif model.class_names is not None and len(model.class_names) != model.output_size:
        problem = f"has {len(model.class_names)} class names for {model.output_size} outputs"
    if problem is None:
        try:
            construction_for(model.dataset)
            normalize(np.zeros((1, *IMAGE_SHAPE), dtype=np.uint8), model.normalization)
        except ImageError as exc:
            problem = str(exc)
    if problem is not None:
        raise StageError(f"{path}: the model {problem}; retrain it (dvc repro)")
    return model


def construct_all(
    entries: list[Entry], construct: Callable[[Picture], np.ndarray]
) -> list[np.ndarray | str]:
    """The 28x28 uint8 image of each entry, or the one line saying why it has none."""
    outcomes: list[np.ndarray | str] = []
    for entry in entries:
        if entry.error is not None:
            outcomes.append(entry.error)
            continue
        try:
            outcomes.append(construct(read_image(entry.path)))
        except ImageError as exc:
            outcomes.append(str(exc))
        except Exception as exc:  # a bug shown on this image should not cost the others
            logger.debug("%s failed", entry.path, exc_info=True)
            outcomes.append(f"unexpected {type(exc).__name__}: {exc} (--log-level DEBUG traces)")
    return outcomes


def prepare_output_dir(directory: Path) -> None:
    """Create ``directory`` now, so a bad path fails before any work."""
    if directory.exists() and not directory.is_dir():
        raise StageError(f"{directory}: --save-inputs needs a folder, this is a file")
    directory.mkdir(parents=True, exist_ok=True)


def save_inputs(directory: Path, files: list[Path], images: list[np.ndarray]) -> None:
    """Write each 28x28 image as ``<file stem>.png`` in ``directory`` (``-2``, ``-3``... when
    two inputs share a stem)."""
    taken: set[str] = set()
    with OutputSet() as outputs:
        for file, pixels in zip(files, images, strict=True):
            name, n = f"{file.stem}.png", 1
            while name in taken:
                n += 1
                name = f"{file.stem}-{n}.png"
            taken.add(name)
            with outputs.open(directory / name) as handle:
                Image.fromarray(pixels).save(handle, format="PNG")


@app.command()
def main(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="Image files, or folders of them (searched recursively).",
            show_default=False,
        ),
    ],
    model_path: Annotated[
        Path, typer.Option("--model", help="The trained model.", dir_okay=False)
    ] = Path("models/model.npz"),
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
    log_level: LogLevelOption = "WARNING",
) -> None:
    """Predict the class of each image and print it with the model's confidence."""
    with stage_errors(log_level, NNLibError):
        model = load_model(model_path)
        construct = construction_for(model.dataset)
        names = model.class_names or [str(i) for i in range(model.output_size)]
        if inputs_dir is not None:
            prepare_output_dir(inputs_dir)

        entries = find_images(paths)
        outcomes: Iterable[Outcome] = classified(
            entries,
            lambda batch: construct_all(batch, construct),
            lambda images: model.predict(normalize(images, model.normalization)),
        )
        if inputs_dir is not None:  # saved as one set, before anything is printed
            outcomes = list(outcomes)
            seen = [(entry.path, o) for entry, o, _ in outcomes if isinstance(o, np.ndarray)]
            save_inputs(inputs_dir, [file for file, _ in seen], [image for _, image in seen])
        failed: list[Result] = []

        def results() -> Iterator[Result]:
            for entry, outcome, probabilities in outcomes:
                if isinstance(outcome, str):
                    failed.append(Result(str(entry.path), error=outcome))
                    yield failed[-1]
                else:
                    yield Result(str(entry.path), top_k=top_k(probabilities, names, k))

        if as_json:
            write_json(results(), sys.stdout)
        else:
            files = [str(entry.path) for entry in entries]
            write_table(results(), min(k, len(names)), files, names, sys.stdout)
        for result in failed:
            print(f"error: {result.file}: {result.error}", file=sys.stderr)
        if failed:
            raise typer.Exit(1)


if __name__ == "__main__":
    run(app)
