"""Reading a small YAML settings file (params.yaml) that a user or a careless script wrote.

PyYAML's ``safe_load`` takes a key given twice silently (the last wins, while DVC refuses
the file) and builds aliases as shared references, so a 2 kB file of nested aliases ("billion
laughs") stands for millions of values that any later walk over it expands. Here the file is
composed into nodes first, then checked before any Python object is built:

- a key given twice in one mapping is refused, naming both lines;
- the values the document stands for, aliases expanded, are counted on the node graph
  (each node once, so counting is linear in the file) and refused past ``MAX_VALUES``;
  an alias that contains itself is refused;
- nesting deeper than PyYAML's recursive composer can take is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stages.cli.errors import preview

#: values (scalars, lists and mappings, aliases expanded) a settings file may stand for;
#: params.yaml has about 30; dvc itself takes seconds per thousand expanded values
MAX_VALUES = 1_000
#: bytes of a settings file read at most
MAX_BYTES = 1 << 20
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """The file cannot be taken; the message says why and where, without the file name."""


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _key_text(node: Node) -> str:
    return node.value if isinstance(node, ScalarNode) else f"<{node.id}>"


def _children(node: Node) -> list[tuple[str | None, Node]]:
    """(key, child) pairs: a mapping's values by key (its keys too, unnamed), a list's items."""
    if isinstance(node, MappingNode):
        pairs: list[tuple[str | None, Node]] = []
        for key, value in node.value:
            pairs.append((None, key))
            pairs.append((_key_text(key), value))
        return pairs
    if isinstance(node, SequenceNode):
        return [(None, item) for item in node.value]
    return []


def _check_duplicates(node: MappingNode, path: str) -> None:
    seen: dict[tuple[str, str], Node] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            dotted = f"{path}.{key.value}" if path else key.value
            shown = dotted if len(dotted) <= 60 else preview(dotted)
            raise YamlProblem(
                f"key {shown} is given twice (lines {_line(first)} and {_line(key)}); keep one"
            )


def check_nodes(root: Node) -> int:
    """The number of values ``root`` stands for, aliases expanded; YamlProblem for a key
    given twice, an alias that contains itself, or more than ``MAX_VALUES`` values."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # An explicit stack (node, dotted path, children visited?): no recursion, however deep.
    stack: list[tuple[Node, str, bool]] = [(root, "", False)]
    while stack:
        node, path, visited = stack.pop()
        ident = id(node)
        if visited:
            on_path.discard(ident)
            size = 1 + sum(sizes[id(child)] for _, child in _children(node))
            if size > MAX_VALUES:
                raise YamlProblem(
                    f"the values at line {_line(node)} expand to more than {MAX_VALUES:,} "
                    "(aliases repeat what they point to); write the values out"
                )
            sizes[ident] = size
            continue
        if ident in sizes:
            continue
        if ident in on_path:
            raise YamlProblem(f"an alias at line {_line(node)} contains itself")
        if isinstance(node, MappingNode):
            _check_duplicates(node, path)
        on_path.add(ident)
        stack.append((node, path, True))
        for key, child in reversed(_children(node)):
            if id(child) in on_path:
                raise YamlProblem(f"an alias at line {_line(child)} contains itself")
            child_path = path if key is None else (f"{path}.{key}" if path else key)
            stack.append((child, child_path, False))
    return sizes[id(root)]


def parse_yaml(text: str) -> Any:
    """The document in ``text``, checked by ``check_nodes`` before it is built; YamlProblem
    for YAML that does not parse (with its line) or that ``check_nodes`` refuses."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_nodes(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise YamlProblem(f"not valid YAML{at}: {preview(problem)[1:-1]}") from None
    except RecursionError:
        raise YamlProblem("nested too deeply to be a settings file") from None
    finally:
        loader.dispose()


def read_yaml_mapping(path: Path, error: type[Exception]) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``error`` (one line naming ``path``) if it is missing,
    unreadable, not UTF-8, too large, not YAML, or refused by ``check_nodes``."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such params file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a params file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_BYTES:
        raise error(f"{path}: larger than {MAX_BYTES // 1024} kB, not a settings file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    try:
        raw = parse_yaml(text)
    except YamlProblem as exc:
        raise error(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw
