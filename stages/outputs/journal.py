"""The journal of a commit in progress: how an output set killed while it was being moved into
place (SIGKILL, power loss) is rolled back by the next run.

Before the first of a set's files is moved, the commit writes one journal per target
(``.<name>.journal`` beside it, each listing the whole set): for every target, its complete
temporary file and the backup (a hard link) of its previous content, if it had one. The
journal files are removed once every move is done, then the backups. A run that claims any
target of the set later finds a journal and rolls the whole set back to its previous content
(what ``dvc.lock`` recorded): a temporary file still there was not moved and is deleted; a
moved target gets its backup back, or is removed if it had no previous content. Rolling back
twice does the same as once, so a recovery that is itself interrupted is finished by the next.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stages.outputs.claims import OutputError, acquire_raw, release_raw

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Move:
    """One target of a commit: its new content's temporary file, its old content's backup."""

    target: Path
    temporary: Path
    backup: Path | None


def journal_path(target: Path) -> Path:
    return target.parent / f".{target.name}.journal"


def backups(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.bak"))


def fsync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` (new names, renames, removals) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_journals(moves: list[Move]) -> None:
    """One durable journal beside each target, each listing every move of the set."""
    record = json.dumps(
        [
            {"target": str(m.target), "temporary": str(m.temporary), "backup": _text(m.backup)}
            for m in moves
        ]
    ).encode("utf-8")
    for move in moves:
        path = journal_path(move.target)
        fresh = path.with_name(f"{path.name}.new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, record)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(fresh, path)
    for directory in {move.target.parent for move in moves}:
        fsync_directory(directory)


def remove_journals(targets: Iterable[Path]) -> None:
    for target in targets:
        journal_path(target).unlink(missing_ok=True)
        journal_path(target).with_name(f"{journal_path(target).name}.new").unlink(missing_ok=True)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _read(path: Path) -> list[Move] | None:
    """The moves a journal lists, or None if it is unreadable (torn before it was complete:
    it was then never used, since journals are complete before the first move)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [
            Move(Path(e["target"]), Path(e["temporary"]), e["backup"] and Path(e["backup"]))
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def roll_back(moves: list[Move]) -> None:
    """Put every target of an interrupted commit back as it was before the commit."""
    for move in moves:
        if move.temporary.exists():  # never moved into place: the target is as it was
            move.temporary.unlink()
            if move.backup is not None:
                move.backup.unlink(missing_ok=True)
        elif move.backup is not None:
            if move.backup.exists():  # else restored by an earlier roll-back
                os.replace(move.backup, move.target)
        else:
            move.target.unlink(missing_ok=True)  # it did not exist before the commit


def recover(target: Path) -> None:
    """Roll back the interrupted commit whose journal lies beside ``target``, if any. The
    caller holds ``target``; the set's other targets are claimed for the roll-back."""
    path = journal_path(target)
    path.with_name(f"{path.name}.new").unlink(missing_ok=True)
    if not path.exists():
        return
    moves = _read(path)
    if moves is None:
        path.unlink()
        return
    keys = []
    try:
        for move in moves:
            keys.append(acquire_raw(move.target))
        roll_back(moves)
        for directory in {move.target.parent for move in moves}:
            fsync_directory(directory)
        remove_journals(move.target for move in moves)
    except OSError as exc:
        raise OutputError(
            f"{target}: cannot roll back an interrupted commit ({exc.strerror}); see {path}"
        ) from None
    finally:
        for key in keys:
            release_raw(key)
    logger.warning(
        "%s: rolled back an interrupted commit of %s",
        target,
        ", ".join(str(m.target) for m in moves),
    )


def clear_leftovers(target: Path) -> None:
    """What killed runs left beside ``target``: roll back an interrupted commit, then remove
    temporaries nobody holds and backups no journal needs. The caller holds ``target``."""
    from stages.outputs.atomic import remove_abandoned

    recover(target)
    for stale in remove_abandoned(target):
        logger.info("removed %s, left over by an interrupted run", stale)
    for stale in backups(target):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
        logger.info("removed %s, left over by an interrupted run", stale)
