"""Stage 1: fetch the four IDX files of ``data.dataset`` into ``data/raw/<dataset>/``, verified.

Run as ``python -m stages.download``. Mirrors: ``--mirror``, else the ``MNIST_MIRROR``
environment variable (for Fashion-MNIST too), else the dataset's public mirrors in order.
For ``data.dataset: images`` (a folder of your own pictures) there is nothing to fetch: the
stage leaves ``data/raw`` empty, and preprocess reads the folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from stages.cli.app import LogLevelOption, ParamsOption, new_app, run, stage_errors
from stages.cli.errors import UsageError
from stages.cli.params import load_params
from stages.data.checksums import CHECKSUM_DIR, read_checksums
from stages.data.fetch import MIN_RATE, RetryPolicy, download_files
from stages.data.mirrors import MIRROR_ENV, MalformedMirror, Mirror, resolve_mirrors
from stages.data.sources import IMAGE_FOLDER, DataSource, get_source

logger = logging.getLogger("stages.download")

app = new_app("Fetch and verify the four IDX files of data.dataset.")


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"must be > 0, got {value:g}")
    return value


def mirrors_from(option: str | None, source: DataSource) -> list[Mirror]:
    """The mirrors to try; a malformed --mirror is a usage error (exit code 2)."""
    try:
        return resolve_mirrors(option, os.environ, source)
    except MalformedMirror as exc:
        if option is None:  # MNIST_MIRROR: not the command line
            raise
        raise UsageError(str(exc)) from None


@app.command()
def main(
    params: ParamsOption = Path("params.yaml"),
    log_level: LogLevelOption = "INFO",
    mirror: Annotated[
        str | None,
        typer.Option(
            help="Fetch from here instead of the public mirrors: an http(s):// or file:// URL "
            f"prefix, or a local directory holding the .gz files. Default: ${MIRROR_ENV} if set.",
            show_default=False,
        ),
    ] = None,
    raw_dir: Annotated[
        Path,
        typer.Option(
            "--raw-dir", "--raw_dir", help="Files go to <raw-dir>/<dataset>/.", file_okay=False
        ),
    ] = Path("data/raw"),
    retries: Annotated[
        int,
        typer.Option(min=0, help="Retries per mirror after a transient failure (5xx, timeout)."),
    ] = 3,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a connection or a read.", callback=_positive)
    ] = 30.0,
    min_rate: Annotated[
        float,
        typer.Option(
            "--min-rate",
            "--min_rate",
            help="kB/s below which a download is given up for the next mirror: each attempt "
            "must end within --timeout plus the file's size at this rate (without a length "
            "announced, keep this rate once --timeout has passed).",
            callback=_positive,
        ),
    ] = MIN_RATE / 1000,
    backoff: Annotated[
        float,
        typer.Option(min=0, help="Seconds before the first retry, doubled for each next one."),
    ] = 1.0,
    checksums: Annotated[
        Path | None,
        typer.Option(
            help="Directory of <dataset>.sha256 tables (SHA-256 of the decompressed files). "
            "Default: stages/data/sha256.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch the four IDX .gz files of data.dataset into <raw-dir>/<dataset>/.

    Each is verified by the SHA-256 of its decompressed bytes; a file already present and
    valid is not fetched again. Mirrors: --mirror, else $MNIST_MIRROR, else the public ones.
    Nothing to fetch for data.dataset images (your own folder, read by preprocess).
    """
    with stage_errors(log_level) as stage:
        data = load_params(params).data
        name = data.dataset
        if name == IMAGE_FOLDER:
            raw_dir.mkdir(parents=True, exist_ok=True)
            logger.info(
                "%s: nothing to download; preprocess builds the pictures of %s", name, data.images
            )
            return
        source = get_source(name)
        table = read_checksums(source, checksums if checksums is not None else CHECKSUM_DIR)
        mirrors = mirrors_from(mirror, source)
        policy = RetryPolicy(
            retries=retries, timeout=timeout, backoff=backoff, min_rate=min_rate * 1000
        )
        target_dir = raw_dir / source.name
        stage.claim(*(target_dir / file_name for file_name in table))
        logger.info(
            "%s: fetching into %s from %s", name, target_dir, ", ".join(m.prefix for m in mirrors)
        )
        summary = download_files(table, mirrors, target_dir, policy, source.sizes)
        logger.info(
            "%s: all %d files verified in %s (%d downloaded, %d already present)",
            name,
            len(table),
            target_dir,
            len(summary.downloaded),
            len(summary.present),
        )


if __name__ == "__main__":
    run(app)
