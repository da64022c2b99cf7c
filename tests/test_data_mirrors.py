"""stages.data.mirrors: where the download command fetches from."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.data import sources
from stages.data.errors import DataError
from stages.data.mirrors import Mirror, parse_mirror, resolve_mirrors


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("http://h/mnist", "http://h/mnist/f.gz"),
        ("https://h/mnist/", "https://h/mnist/f.gz"),
        ("file:///srv/mnist/", "file:///srv/mnist/f.gz"),
        ("/srv/mnist/", "/srv/mnist/f.gz"),
    ],
)
def test_mirror_location_has_no_double_slash(prefix: str, expected: str) -> None:
    assert Mirror(prefix).location("f.gz") == expected


def test_parse_mirror(tmp_path: Path) -> None:
    assert parse_mirror(f" {tmp_path} ", "--mirror") == Mirror(str(tmp_path))
    assert parse_mirror(tmp_path.as_uri(), "X").local_path("f.gz") == tmp_path / "f.gz"
    assert parse_mirror("https://h/p", "X").local_path("f.gz") is None
    for bad, message in [
        ("http://", "has no host"),
        ("s3://bucket/mnist", "unsupported mirror"),
        (str(tmp_path / "missing"), "is not a directory"),
        ("file://otherhost/dir", "only local file:// URLs"),
    ]:
        with pytest.raises(DataError, match=message):
            parse_mirror(bad, "X")


def test_mirror_resolution_order(tmp_path: Path) -> None:
    mnist = sources.get_source("mnist")
    public = [Mirror(prefix) for prefix in mnist.mirrors]
    env = {"MNIST_MIRROR": str(tmp_path)}
    assert resolve_mirrors(None, {}, mnist) == public
    assert resolve_mirrors(None, {"MNIST_MIRROR": ""}, mnist) == public  # empty means unset
    assert resolve_mirrors(None, env, mnist) == [Mirror(str(tmp_path))]
    assert resolve_mirrors("https://h/m", env, mnist) == [Mirror("https://h/m")]
    with pytest.raises(DataError, match="--mirror: empty"):
        resolve_mirrors("", env, mnist)
