"""stages.outputs.atomic: a set of files replaced all together or not at all."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages.outputs.atomic import OutputError, OutputSet, atomic_write, remove_abandoned


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


def fail_moves_onto(monkeypatch: pytest.MonkeyPatch, bad: Path) -> None:
    """From now on, moving a file onto ``bad`` fails as a failing disk fails it."""
    replace = os.replace

    def failing(source: object, destination: object) -> None:
        if Path(destination) == bad:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(destination))
        replace(source, destination)

    monkeypatch.setattr(os, "replace", failing)


def test_a_failing_move_puts_the_replaced_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third target cannot be replaced: the first two get their old bytes."""
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    fail_moves_onto(monkeypatch, tmp_path / "c.txt")
    new = {tmp_path / name: f"new {name}" for name in ("a.txt", "b.txt", "c.txt")}
    with pytest.raises(OutputError, match=r"c\.txt: cannot replace \(Input/output error\)"):
        write_set(new)
    assert contents(tmp_path) == {"a.txt": "old a", "b.txt": "old b"}


def test_a_new_file_is_removed_again_when_the_set_fails_to_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_moves_onto(monkeypatch, tmp_path / "c.txt")
    with pytest.raises(OutputError):
        write_set({tmp_path / "new.txt": "x", tmp_path / "c.txt": "x"})
    assert list(tmp_path.iterdir()) == []


def test_a_folder_where_an_output_goes_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / "c.txt").mkdir()
    with pytest.raises(OutputError, match=r"c\.txt: is a directory, expected a file path"):
        write_set({tmp_path / "a.txt": "x", tmp_path / "c.txt": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


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


def test_abandoned_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    """A temporary nobody holds was left by a killed writer; a held one belongs to a live one."""
    target = tmp_path / "metrics.json"
    abandoned = tmp_path / ".metrics.json.dead0000.tmp"
    abandoned.write_text("left by a killed run")
    live = tmp_path / ".metrics.json.live0000.tmp"
    live.write_text("being written")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(live)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert remove_abandoned(target) == [abandoned]
        with atomic_write(target, "w") as handle:  # its own clean-up keeps the live file too
            handle.write("{}")
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "metrics.json"]
    finally:
        holder.kill()
        holder.wait()
    assert remove_abandoned(target) == [live]  # the writer died: its file is abandoned now


def test_a_set_cleans_up_temporaries_of_its_targets_left_by_a_killed_run(tmp_path: Path) -> None:
    script = (
        "import os, sys, time\n"
        "from stages.outputs.atomic import OutputSet\n"
        "with OutputSet() as outputs, outputs.open(sys.argv[1], 'w') as handle:\n"
        "    handle.write('partial'); handle.flush(); print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    target = tmp_path / "history.csv"
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == "writing\n"
    writer.kill()  # SIGKILL: no clean-up runs
    writer.wait()
    assert len([p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]) == 1
    with atomic_write(target, "w") as handle:
        handle.write("complete")
    assert contents(tmp_path) == {"history.csv": "complete"}
