"""Finding a user's image files: the paths given, and the image files inside folders.

Only regular files (or links to them) are pictures: a FIFO, a device or a socket is never
opened, whatever its name (opening a FIFO waits for a writer for ever; /dev/zero never ends).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


@dataclass(frozen=True)
class Entry:
    """One input: a file to read, or a path that gave no file (``error`` says why)."""

    path: Path
    error: str | None = None


def image_extensions() -> frozenset[str]:
    """File name endings (lower case, with the dot) of every format Pillow can open."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """What a file of ``mode`` (``st_mode``) is when it is neither a regular file nor a
    folder ("a named pipe", "a character device", ...); None when it is one of those."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), "a special file")


def is_special(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (links followed) is there and is neither a regular file nor a folder."""
    try:
        return special_kind(os.stat(path).st_mode) is not None
    except OSError:
        return False


@dataclass(frozen=True)
class FolderTree:
    """What ``walk_files(root)`` found: ``files``, every file below ``root`` (not folders;
    links to folders are not followed), sorted by path; ``unreadable``, the folders that could
    not be listed, each with why (their files are not in ``files``)."""

    files: tuple[Path, ...]
    unreadable: tuple[tuple[Path, str], ...]


def walk_files(root: Path) -> FolderTree:
    """The files below ``root``, recursively, and the folders that could not be read."""
    files: list[Path] = []
    unreadable: list[tuple[Path, str]] = []

    def failed(exc: OSError) -> None:
        unreadable.append((Path(exc.filename), exc.strerror or str(exc)))

    for folder, _, names in os.walk(root, onerror=failed):
        files.extend(Path(folder, name) for name in names)
    return FolderTree(tuple(sorted(files)), tuple(sorted(unreadable)))


def unreadable_folder(why: str) -> str:
    """The error of a folder that cannot be listed."""
    return f"cannot read this folder ({why})"


def is_hidden(path: Path, root: Path) -> bool:
    """Whether a part of ``path`` below ``root`` starts with ``.``."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_images(paths: Iterable[Path]) -> list[Entry]:
    """One entry per file named in ``paths``, and per image file in a folder (recursively,
    by name, skipping hidden ones), in order; a missing path, a folder without image files
    and a folder that cannot be read (named, or inside one) are entries with an error.
    Files named directly are kept whatever their name."""
    extensions = image_extensions()
    entries: list[Entry] = []
    for path in paths:
        if path.is_dir():
            tree = walk_files(path)
            found = [
                Entry(p)
                for p in tree.files
                if p.suffix.lower() in extensions and p.is_file() and not is_hidden(p, path)
            ]
            unreadable = [
                Entry(folder, unreadable_folder(why))
                for folder, why in tree.unreadable
                if not is_hidden(folder, path)
            ]
            if not found and not unreadable:
                entries.append(Entry(path, "no image files in this folder"))
            entries.extend(sorted([*found, *unreadable], key=lambda entry: entry.path))
        elif path.exists():
            entries.append(Entry(path))
        else:
            entries.append(Entry(path, "no such file or directory"))
    return entries
