"""Stage 1: fetch the four IDX files of ``data.dataset`` into ``data/raw/<dataset>/``, verified.

Run as ``python -m stages.download``. Mirrors: ``--mirror``, else the ``MNIST_MIRROR``
environment variable (for Fashion-MNIST too), else the dataset's public mirrors in order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from nnlib.atomicfile import stale_temporaries
from stages.cli import LogLevelOption, ParamsOption, StageError, new_app, run, stage_errors
from stages.datasets import CHECKSUM_DIR, Dataset, get_dataset, read_checksums
from stages.fetch import FetchError, Mirror, RetryPolicy, fetch_file, parse_mirror, verify_file
from stages.params import load_params, read_keys

MIRROR_ENV = "MNIST_MIRROR"

logger = logging.getLogger("stages.download")

app = new_app("Fetch and verify the four IDX files of data.dataset.")


def resolve_mirrors(
    option: str | None, environ: Mapping[str, str], dataset: Dataset
) -> list[Mirror]:
    """``--mirror`` beats ``MNIST_MIRROR`` (empty counts as unset) beats the public list."""
    if option is not None:
        if not option.strip():
            raise StageError("--mirror: empty; give a URL prefix or a directory")
        return [parse_mirror(option, "--mirror")]
    from_env = environ.get(MIRROR_ENV, "").strip()
    if from_env:
        return [parse_mirror(from_env, MIRROR_ENV)]
    return [Mirror(prefix) for prefix in dataset.mirrors]


def human_size(n_bytes: int) -> str:
    """``9719438`` -> ``'9.7 MB'`` (decimal units)."""
    size = float(n_bytes)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{n_bytes} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _remove_stale_temp_files(directory: Path, names: list[str]) -> None:
    # A killed run (SIGKILL, power loss) can leave atomic_write's temporary files behind.
    for name in names:
        for stale in stale_temporaries(directory / name):
            logger.info("removing %s, left over by an interrupted run", stale)
            stale.unlink(missing_ok=True)


@dataclass(frozen=True)
class Summary:
    downloaded: list[str]
    present: list[str]


def download_dataset(
    checksums: Mapping[str, str],
    mirrors: list[Mirror],
    target_dir: Path,
    policy: RetryPolicy,
) -> Summary:
    """Make ``target_dir`` hold every file of ``checksums`` (name -> decompressed SHA-256).

    A present file that verifies is kept; one that does not is deleted, then fetched.
    Every file is attempted even after one fails; StageError at the end names each
    file that no mirror could give, on one line.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_files(target_dir, list(checksums))
    unreachable: set[Mirror] = set()
    downloaded: list[str] = []
    present: list[str] = []
    errors: list[FetchError] = []
    for name, expected in checksums.items():
        target = target_dir / name
        if target.exists():
            problem = verify_file(target, expected)
            if problem is None:
                logger.info("%s is present and verified, not fetched again", target)
                present.append(name)
                continue
            logger.warning(
                "%s is present but fails verification (%s); replacing it", target, problem
            )
            target.unlink()
        try:
            got = fetch_file(name, expected, mirrors, target, policy, unreachable)
        except FetchError as exc:
            errors.append(exc)
            continue
        logger.info(
            "downloaded %s (%s) from %s in %.1f s",
            name,
            human_size(got.size),
            got.location,
            got.seconds,
        )
        downloaded.append(name)
    if errors:
        raise StageError(" | ".join(str(error) for error in errors))
    return Summary(downloaded, present)


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"must be > 0, got {value:g}")
    return value


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
    backoff: Annotated[
        float,
        typer.Option(min=0, help="Seconds before the first retry, doubled for each next one."),
    ] = 1.0,
    checksums: Annotated[
        Path | None,
        typer.Option(
            help="Directory of <dataset>.sha256 tables (SHA-256 of the decompressed files). "
            "Default: stages/checksums.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Fetch the four IDX .gz files of data.dataset into <raw-dir>/<dataset>/.

    Each is verified by the SHA-256 of its decompressed bytes; a file already present and
    valid is not fetched again. Mirrors: --mirror, else $MNIST_MIRROR, else the public ones.
    """
    with stage_errors(log_level):
        name = read_keys(load_params(params), params, "data", keys=("dataset",))["dataset"]
        dataset = get_dataset(name)
        table = read_checksums(dataset, checksums if checksums is not None else CHECKSUM_DIR)
        mirrors = resolve_mirrors(mirror, os.environ, dataset)
        policy = RetryPolicy(retries=retries, timeout=timeout, backoff=backoff)
        target_dir = raw_dir / dataset.name
        logger.info(
            "%s: fetching into %s from %s", name, target_dir, ", ".join(m.prefix for m in mirrors)
        )
        summary = download_dataset(table, mirrors, target_dir, policy)
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
