"""stages.outputs.atomic: a set of files written beside their targets, then renamed over them."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.stage import stage_environment

from stages.outputs.atomic import OutputError, OutputSet, atomic_write


def write_set(files: dict[Path, str], fail_with: Exception | None = None) -> None:
    """Write ``files`` as one output set; raise ``fail_with`` once all are written."""
    with OutputSet() as outputs:
        for path, text in files.items():
            with outputs.open(path, "w") as handle:
                handle.write(text)
        if fail_with is not None:
            raise fail_with


def contents(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` (temporaries included) and its text."""
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_a_set_replaces_every_file_together(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")
    with OutputSet() as outputs:
        with outputs.open(tmp_path / "a.txt", "w") as handle:
            handle.write("new a")
        with outputs.open(tmp_path / "sub" / "b.txt", "w") as handle:
            handle.write("new b")
        assert (tmp_path / "a.txt").read_text() == "old a"  # nothing moves before the end
        assert not (tmp_path / "sub" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "sub"]
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert contents(tmp_path / "sub") == {"b.txt": "new b"}


def test_a_failure_in_the_block_replaces_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")
    new = {tmp_path / "a.txt": "new a", tmp_path / "b.txt": "new b"}
    with pytest.raises(RuntimeError, match="fails midway"):
        write_set(new, RuntimeError("fails midway"))
    assert contents(tmp_path) == {"a.txt": "old a"}


def test_a_failing_rename_names_its_target_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.txt").write_text("old c")
    replace = os.replace

    def failing(source: object, destination: object) -> None:
        if Path(destination) == tmp_path / "c.txt":
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(destination))
        replace(source, destination)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OutputError, match=r"c\.txt: cannot replace \(Input/output error\)"):
        write_set({tmp_path / "c.txt": "new c"})
    assert contents(tmp_path) == {"c.txt": "old c"}


def test_a_folder_where_an_output_goes_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / "c.txt").mkdir()
    with pytest.raises(OutputError, match=r"c\.txt: is a directory, expected a file path"):
        write_set({tmp_path / "a.txt": "x", tmp_path / "c.txt": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_a_file_where_a_folder_goes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("a file")
    with pytest.raises(OutputError, match=r"cannot write there, .*models is not a directory"):
        write_set({tmp_path / "models" / "model.npz": "x"})


def test_a_write_error_names_the_target(tmp_path: Path) -> None:
    def fill_the_disk() -> None:
        with OutputSet() as outputs, outputs.open(tmp_path / "model.npz") as handle:
            handle.write(b"x")
            raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"^.*model\.npz: cannot write \(No space left"):
        fill_the_disk()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_is_a_set_of_one(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "f.bin") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "f.bin").read_bytes() == b"\x00\x01"
    assert oct((tmp_path / "f.bin").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Writes 600 files as one set with at most 32 files open at once.
MANY_FILES = """
import resource, sys
from pathlib import Path
from stages.outputs.atomic import OutputSet
resource.setrlimit(resource.RLIMIT_NOFILE, (32, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
with OutputSet() as outputs:
    for n in range(600):
        with outputs.open(Path(sys.argv[1]) / f"{n}.txt", "w") as handle:
            handle.write(str(n))
"""


def test_a_set_holds_no_file_open_between_its_files(tmp_path: Path) -> None:
    written = subprocess.run(
        [sys.executable, "-c", MANY_FILES, str(tmp_path)],
        env=stage_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    assert contents(tmp_path) == {f"{n}.txt": str(n) for n in range(600)}


def test_a_target_with_the_longest_name_a_file_may_have(tmp_path: Path) -> None:
    """Its temporary name, ``.<name>.<8 hex>.tmp``, is cut to fit in 255 bytes."""
    target = tmp_path / ("\u00e9" * 127 + "x")  # 255 bytes in UTF-8
    with atomic_write(target, "w") as handle:
        handle.write("whole")
    assert contents(tmp_path) == {target.name: "whole"}
