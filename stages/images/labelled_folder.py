"""A folder of labelled pictures: one sub-folder per class, named for it.

``scan_labelled_folder`` lists the pictures (files whose name ends in an extension Pillow
opens, as ``files.image_extensions``) of each class sub-folder, searched recursively, in a
fixed order: classes sorted by name, pictures by path. Hidden files and folders (names
starting with ``.``), files of other kinds and files outside the class sub-folders are
skipped and counted, never silently; so are special files (FIFOs, devices, sockets, links to
them), whatever their name, which are never opened.

The folder's state (every file's name, size and modification time) is noted before it is
listed; ``check_unchanged`` compares it again once the pictures are read, since DVC records
the folder as it is after the stage, whatever the stage read.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from stages.data.errors import DataError
from stages.images.files import (
    image_extensions,
    is_hidden,
    is_special,
    unreadable_folder,
    walk_files,
)
from stages.outputs.predictions import display_path


@dataclass(frozen=True)
class LabelledFolder:
    """The pictures of ``root``: ``pictures[i]`` is of class ``labels[i]``, which names
    ``class_names[labels[i]]``; ``skipped`` are the files (and hidden folders at the top)
    that are not pictures of a class."""

    root: Path
    class_names: tuple[str, ...]
    pictures: tuple[Path, ...]
    labels: tuple[int, ...]
    skipped: tuple[Path, ...]
    #: ``folder_state(root)`` before the folder was listed
    state: dict[Path, tuple[int, ...]] = field(repr=False, compare=False)

    def class_folder(self, label: int) -> Path:
        return self.root / self.class_names[label]


def folder_state(root: Path) -> dict[Path, tuple[int, ...]]:
    """Every file below ``root`` (links followed; a broken one as itself): its inode, size
    and modification time in ns, and those of each folder that cannot be listed."""
    state: dict[Path, tuple[int, ...]] = {}
    tree = walk_files(root)
    for path in (*tree.files, *(folder for folder, _ in tree.unreadable)):
        try:
            found = path.stat()
        except OSError:
            try:
                found = path.lstat()
            except OSError:  # gone already: a change the next look sees
                continue
        state[path] = (found.st_ino, found.st_size, found.st_mtime_ns)
    return state


def check_unchanged(folder: LabelledFolder) -> None:
    """DataError naming a file added, removed or changed below ``folder.root`` since it was
    listed: the pictures read would not be the folder DVC records after the stage."""
    now = folder_state(folder.root)
    before = folder.state
    changes = sorted(
        [(path, "added") for path in now.keys() - before.keys()]
        + [(path, "removed") for path in before.keys() - now.keys()]
        + [(path, "changed") for path in now.keys() & before.keys() if now[path] != before[path]]
    )
    if changes:
        path, how = changes[0]
        more = f" and {len(changes) - 1} more" if len(changes) > 1 else ""
        raise DataError(
            f"{display_path(folder.root)}: the folder changed while preprocess read it "
            f"({display_path(path)} {how}{more}); nothing was written: run again once it "
            "holds still"
        )


def look_alike(name: str) -> str:
    """What ``name`` looks like: Unicode compatibility form (NFKC: ``é`` whether one
    character or two, a no-break space as a space), invisible characters (format, e.g. a
    zero-width space) left out, runs of white space as one space, none at either end."""
    text = unicodedata.normalize("NFKC", name)
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Cf").split())


def check_class_names(folders: list[Path]) -> None:
    """DataError for a class folder whose name is not UTF-8 text, or two whose names look
    the same (``look_alike``): each would silently be a class of its own. Names differing
    in case only stay apart: they are different classes (``a`` and ``A``)."""
    seen: dict[str, Path] = {}
    for folder in folders:
        try:
            os.fsencode(folder.name).decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"{display_path(folder)}: the class folder's name is not UTF-8 text; rename it "
                "(the name is the class's name, kept as text in meta.json and the model)"
            ) from None
        key = look_alike(folder.name)
        if key in seen:
            first = seen[key]
            raise DataError(
                f"{display_path(first.parent)}: the class folders {first.name!a} and "
                f"{folder.name!a} have names that look the same (they differ only in "
                "Unicode form, white space or invisible characters), and each would be a class "
                "of its own: rename one, or merge them"
            )
        seen[key] = folder


def scan_labelled_folder(root: Path) -> LabelledFolder:
    """List the pictures of each class sub-folder of ``root``.

    DataError (one line naming the folder) when ``root`` is missing or not a folder, holds
    no class sub-folder, fewer than two, class sub-folders whose names are not UTF-8 or look
    the same (``check_class_names``), or a class sub-folder that holds no picture or a folder
    that cannot be read.
    """
    if not root.exists():
        raise DataError(f"{root}: no such folder (data.images names the folder of pictures)")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (data.images names the folder of pictures)")
    state = folder_state(root)
    entries = sorted(root.iterdir())
    folders = [path for path in entries if path.is_dir() and not path.name.startswith(".")]
    skipped = [path for path in entries if path not in folders]
    if not folders:
        raise DataError(
            f"{root}: holds no class sub-folders; expected one sub-folder of pictures per "
            f"class, named for it (e.g. {root / 'cat'}/*.jpg)"
        )
    check_class_names(folders)
    extensions = image_extensions()
    pictures: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        tree = walk_files(folder)
        for unreadable, why in tree.unreadable:
            if is_hidden(unreadable, folder):
                skipped.append(unreadable)
                continue
            raise DataError(
                f"{display_path(unreadable)}: {unreadable_folder(why)}; its pictures would be "
                f"left out: make it readable, or move it out of {display_path(root)}"
            )
        found = []
        for path in tree.files:
            if (
                path.suffix.lower() in extensions
                and not is_hidden(path, folder)
                and not is_special(path)
            ):
                found.append(path)
            else:
                skipped.append(path)
        if not found:
            raise DataError(
                f"{folder}: holds no pictures; every class sub-folder needs at least one "
                "(files Pillow reads: .png, .jpg, .bmp, .gif, .tif, .webp, ...)"
            )
        pictures.extend(found)
        labels.extend([label] * len(found))
    if len(folders) < 2:
        raise DataError(
            f"{root}: holds one class sub-folder ({folders[0].name}); at least 2 classes are "
            "needed, one sub-folder each"
        )
    return LabelledFolder(
        root=root,
        class_names=tuple(folder.name for folder in folders),
        pictures=tuple(pictures),
        labels=tuple(labels),
        skipped=tuple(skipped),
        state=state,
    )
