"""Where predict's ``--save-inputs`` writes the 28x28 image the model saw for each input:
one ``<input stem>.png`` per input in the folder, ``-2``, ``-3``... when stems repeat, the
stem cut where the name would be longer than a file name may be.

The targets are planned from the list of inputs before any picture is read, so that a
folder predict cannot use is refused before the work: a file where the folder goes, a target
that is one of the inputs (never written, even with ``--overwrite``), or a file already
there, which predict did not write in this run (unless ``overwrite``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from stages.cli.errors import UsageError, preview
from stages.outputs.atomic import NAME_MAX, cut_name
from stages.outputs.predictions import display_path


def _fitted(stem: str, ending: str) -> str:
    return cut_name(stem, NAME_MAX - len(os.fsencode(ending))) + ending


def target_names(inputs: Sequence[Path]) -> list[str]:
    """``<stem>.png`` for each input, ``<stem>-2.png``... for a stem seen before; the stem
    cut so that the name fits in ``NAME_MAX`` bytes (a long name's temporary file is cut
    further, ``stages.outputs.atomic``)."""
    taken: set[str] = set()
    names = []
    for path in inputs:
        name, n = _fitted(path.stem, ".png"), 1
        while name in taken:
            n += 1
            name = _fitted(path.stem, f"-{n}.png")
        taken.add(name)
        names.append(name)
    return names


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def plan_targets(directory: Path, inputs: Sequence[Path], overwrite: bool) -> list[Path]:
    """The file each of ``inputs`` is saved to in ``directory``; UsageError (exit code 2)
    for a folder that cannot take them. Creates nothing."""
    for folder in (directory, *directory.parents):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--save-inputs {display_path(directory)}: {folder} is a file")
    targets = [directory / name for name in target_names(inputs)]
    existing = [target for target in targets if target.exists()]
    inputs_hit = [
        (target, source) for target in existing for source in inputs if _same_file(target, source)
    ]
    if inputs_hit:
        target, source = inputs_hit[0]
        raise UsageError(
            f"--save-inputs {display_path(directory)}: would write {display_path(target)} over "
            f"the input {display_path(source)}; save the inputs into another folder"
        )
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UsageError(
            f"--save-inputs {display_path(directory)}: {display_path(existing[0])}{more} "
            "already there, and predict replaces no file it did not write in this run; "
            "choose an empty folder, or add --overwrite"
        )
    for target in existing:
        if target.is_dir():
            raise UsageError(f"--save-inputs: {preview(str(target))} is a folder")
    return targets
