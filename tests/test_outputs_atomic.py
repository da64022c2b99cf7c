"""stages.outputs.atomic: files replaced all at once or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.outputs.atomic import staged_files


def test_staged_files_replace_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old a")

    def write_then_fail() -> None:
        with staged_files(tmp_path) as staging:
            (staging / "a.txt").write_text("new a")
            (staging / "b.txt").write_text("new b")
            raise RuntimeError("fails midway")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old a"

    (tmp_path / ".staging-left-by-a-killed-run.tmp").mkdir()
    with staged_files(tmp_path) as staging:
        (staging / "a.txt").write_text("new a")
        (staging / "b.txt").write_text("new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "new a"
