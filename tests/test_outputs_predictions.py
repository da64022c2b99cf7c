"""What predict prints, a result at a time: the JSON array and the table."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from stages.outputs.predictions import Result, top_k, write_json, write_table

NAMES = [str(k) for k in range(10)]


def results(count: int) -> list[Result]:
    """``count`` results, every third an error, with made-up probabilities."""
    rng = np.random.default_rng(count)
    out = []
    for n in range(count):
        if n % 3 == 2:
            out.append(Result(f"bad{n}.png", error="no ink found"))
        else:
            p = rng.dirichlet(np.ones(10))
            out.append(Result(f"digits/d{n}.png", top_k=top_k(p, NAMES, 3)))
    return out


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_the_json_is_what_one_dump_of_the_array_makes(count: int) -> None:
    out = io.StringIO()
    write_json(iter(results(count)), out)
    expected = json.dumps([r.to_json() for r in results(count)], indent=2, allow_nan=False)
    assert out.getvalue() == expected + "\n"
    assert len(json.loads(out.getvalue())) == count


def test_the_table_has_aligned_columns_and_only_the_predictions() -> None:
    rows = results(7)
    files = [r.file for r in rows]
    out = io.StringIO()
    assert write_table(iter(rows), 3, files, NAMES, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["file", "prediction", "confidence", "top-3"]
    predicted = [r for r in rows if r.error is None]
    assert [line.split()[0] for line in lines[1:]] == [r.file for r in predicted]
    # the columns start at the same place on every line, as wide as the longest file name
    width = max(len(f) for f in files)
    assert {line.index(line.split()[1], width) for line in lines} == {width + 2}
    for line, result in zip(lines[1:], predicted, strict=True):
        name, probability = result.top_k[0]
        assert line.split()[1:3] == [name, f"{probability:.3f}"]


def test_no_predictions_no_table() -> None:
    out = io.StringIO()
    rows = [Result("bad.png", error="not an image")]
    assert not write_table(iter(rows), 3, ["bad.png"], NAMES, out)
    assert out.getvalue() == ""
