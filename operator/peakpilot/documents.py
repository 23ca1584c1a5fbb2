"""Reading the files the CLI is given: bounded in size, strict UTF-8, YAML or JSON, and bounded in
shape (nesting, alias expansion, integer digits), so that no file can make a traceback, a hang or
a memory blow-up; every problem is an `InputError` line that names the place and the fix.

The limits (docs/cli.md, "Input limits"):
- size: a policy at most 1 MiB (the API server stores at most 1.5 MiB per object), a snapshot
  32 MiB, a trace 64 MiB; checked while reading, so /dev/zero is refused too;
- nesting at most 64 levels, aliases may add at most 10,000 nodes (no billion laughs), no
  recursive aliases, no duplicate mapping keys (what `kubectl apply` refuses too);
- integers at most 100 digits (a Kubernetes integer has at most 19), finite numbers only, dates
  within years 0001-9999.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MiB = 1 << 20
POLICY_LIMIT = 1 * MiB
SNAPSHOT_LIMIT = 32 * MiB
TRACE_LIMIT = 64 * MiB
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000
MAX_INT_DIGITS = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class InputError(Exception):
    """Invalid user input; `lines` each name a field and the fix."""

    def __init__(self, source: str, lines: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(lines))
        self.source = source
        self.lines = lines


def size_text(limit: int) -> str:
    return f"{limit / MiB:g} MiB" if limit >= MiB else f"{limit // 1024} KiB"


def read_text(path: Path, limit: int, what: str, source: str | None = None) -> str:
    """The text: at most `limit` bytes (read no further), UTF-8 (a leading BOM is dropped)."""
    where = source or str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(where, [f"cannot read the file: {reason}: check the path"]) from exc
    return _decode(data, limit, what, where)


STDIN = "stdin"  # how `-` is named in messages


def read_stdin(limit: int, what: str, stream: BinaryIO | None = None) -> str:
    """Standard input (`-`), bounded like a file: never more than `limit` + 1 bytes are read."""
    source = stream if stream is not None else sys.stdin.buffer
    try:
        data = source.read(limit + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(STDIN, [f"cannot read standard input: {reason}"]) from exc
    return _decode(data, limit, what, STDIN)


def _decode(data: bytes, limit: int, what: str, where: str) -> str:
    if len(data) > limit:
        raise InputError(
            where, [f"larger than {size_text(limit)}, the limit for {what}: give a smaller file"]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            where,
            [f"not UTF-8 text (byte {exc.start}, line {line}): save the file as UTF-8"],
        ) from exc


@dataclass(frozen=True)
class Invalid:
    """A value the loader refused to build (a 5000-digit integer, year 0); reported by path."""

    problem: str


# libyaml's parser when PyYAML has it (about 20x faster than the pure-Python one: a 32 MiB
# snapshot in seconds); the constructor, and so every check below, is Python either way.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """PyYAML's safe loader with no duplicate keys, and integers and timestamps that cannot fail
    with a bare ValueError (a 5000-digit integer, year 0)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # nodes being composed, from the document's root to the current one
        self._scalar_tags: dict[tuple[str, Any], str] = {}

    # The composer calls these two around each node. PyYAML's own only follow path resolvers,
    # which a safe loader has none of (`resolve` counts on that too), so they are not called.

    def descend_resolver(self, current_node: Node | None, current_index: Any) -> None:
        """The composer (recursive, in C) announces each node here before it composes it: past
        the limit it is stopped before it recurses any deeper. A node one level below a
        collection at the limit is a scalar, or an empty collection, which `check_values`
        refuses (a collection holds values: any more depth is refused here)."""
        self._depth += 1
        if self._depth > MAX_DEPTH + 1:
            mark = current_node.start_mark if current_node is not None else None
            line = mark.line + 1 if mark is not None else "?"
            raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels at line {line}")

    def ascend_resolver(self) -> None:
        self._depth -= 1

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        """PyYAML's tag, remembered per scalar text: a safe loader has no path resolvers, so a
        scalar's tag depends on its text alone, and a policy repeats the same keys and values
        per workload (its regular expressions were a third of the composing)."""
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        key = (value, implicit)
        tag = self._scalar_tags.get(key)
        if tag is None:
            tag = self._scalar_tags[key] = super().resolve(kind, value, implicit)
        return tag

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A string is its text, as PyYAML's constructor would return it, without its book-keeping
        (a memo and a recursion check per node, for a value that holds nothing): two thirds of a
        policy's values, ~0.02 s at 1000 workloads."""
        if type(node) is ScalarNode and node.tag == _STR_TAG:
            return node.value
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
        keys = self._unique_keys(node)
        if len(keys) < len(node.value):  # merge keys (`<<`): PyYAML merges, then builds it all
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]
        # What PyYAML's construct_mapping does, with the keys just built (it would look each up
        # again, ~0.02 s for a policy of 1000 workloads).
        mapping: dict[Any, Any] = {}
        for key, (key_node, value_node) in zip(keys, node.value, strict=True):
            if not isinstance(key, Hashable):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def _unique_keys(self, node: MappingNode) -> list[Any]:
        """The mapping's own keys (merge keys left out), built; a duplicate is refused."""
        keys: list[Any] = []
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            keys.append(key)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: refused once the keys are all known to be unique
            if duplicate:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}: keep one of them",
                    key_node.start_mark,
                )
            seen.add(key)
        return keys

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        text = str(self.construct_scalar(node))
        if len(text) > MAX_INT_DIGITS:  # a shorter text cannot have too many digits
            digits = sum(c.isalnum() for c in text)
            if digits > MAX_INT_DIGITS:
                return Invalid(f"an integer of {digits} digits: use at most {MAX_INT_DIGITS}")
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            text = self.construct_scalar(node)
            return Invalid(f"{text!r} is not a real date and time (years 0001-9999): fix it")


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _measure(node: Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> int:
    """The node's height in collections; `memo` keeps (height, expanded size) per node. Raises on
    recursion and on nesting past the limit through aliases (a deep node inside another)."""
    key = id(node)
    if key in memo:
        height = memo[key][0]
        if depth + height > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels (through an alias)", node)
        return height
    if key in active:
        raise _Refused("a recursive alias (a node that contains itself): remove it", node)
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        memo[key] = (0, 1)
        return 0
    if depth + 1 > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels (through an alias)", node)
    active.add(key)
    height, size = 1, 1
    for child in children:
        height = max(height, 1 + _measure(child, depth + 1, memo, active))
        size += memo[id(child)][1]
    active.discard(key)
    memo[key] = (height, size)
    return height


class _Refused(Exception):
    def __init__(self, problem: str, node: Node) -> None:
        super().__init__(problem)
        self.problem = problem
        self.node = node


def _check_aliases(node: Node) -> None:
    memo: dict[int, tuple[int, int]] = {}
    try:
        _measure(node, 0, memo, set())
    except _Refused as exc:
        mark = exc.node.start_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise yaml.YAMLError(exc.problem + where) from None
    expanded = memo[id(node)][1]
    if expanded - len(memo) > MAX_ALIAS_NODES:
        raise yaml.YAMLError(
            f"aliases expand the document to {expanded:,} nodes: at most {MAX_ALIAS_NODES:,} "
            "may come from aliases; write the values out or use fewer aliases"
        )


def _yaml_documents(text: str) -> list[Any]:
    # An alias is written with a `*`. Without one every node is composed once: a tree, whose
    # nesting the composer has checked, with nothing to expand or recurse (walking the nodes of
    # 1000 workloads took ~0.025 s).
    aliased = "*" in text
    loader = _Loader(text)
    try:
        out = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if aliased:
                _check_aliases(node)
            out.append(loader.construct_document(node))
        return out
    finally:
        loader.dispose()


class _DuplicateKey(Exception):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_int(text: str) -> Any:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return Invalid(f"an integer of {digits} digits: use at most {MAX_INT_DIGITS}")
    return int(text)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def parse_documents(text: str, source: str, is_json: bool) -> list[Any]:
    """Every document in `text` (YAML, or JSON when `is_json`), empty ones left out; bounded as
    the module says. Values are not yet checked: `check_values` the one that is used."""
    try:
        if is_json:
            return [json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)]
        return [d for d in _yaml_documents(text) if d is not None]
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InputError(source, [f"not valid JSON at {where}: {exc.msg}"]) from exc
    except _DuplicateKey as exc:
        raise InputError(source, [f"duplicate key {exc.args[0]!r}: keep one of them"]) from exc
    except RecursionError as exc:
        raise InputError(source, [f"nested deeper than {MAX_DEPTH} levels: flatten it"]) from exc
    except yaml.YAMLError as exc:
        raise InputError(source, [f"not valid YAML: {_yaml_problem(exc)}"]) from exc


def check_values(document: Any, source: str) -> Any:
    """`document`, when every value in it is one the core can take (see `_problems`)."""
    bad = list(_problems(document, "", 1))
    if bad:
        raise InputError(source, [f"{where}: {problem}" for where, problem in bad])
    return document


def parse_document(text: str, source: str, is_json: bool) -> Any:
    """The one document in `text` (YAML, or JSON when `is_json`), checked as the module says."""
    docs = parse_documents(text, source, is_json)
    if len(docs) != 1:
        raise InputError(source, [f"expected one document, found {len(docs)}"])
    return check_values(docs[0], source)


def load_document(path: Path, limit: int, what: str) -> Any:
    """The one document of a YAML or JSON file (JSON when it is named *.json)."""
    return parse_document(read_text(path, limit, what), str(path), path.suffix == ".json")


def _problems(value: Any, where: str, depth: int) -> Iterator[tuple[str, str]]:
    """(path, problem) of each value the core cannot take: .inf and .nan (YAML and Python's JSON
    accept them, the API does not), refused integers and dates, nesting past the limit."""
    here = where or "(top level)"
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        yield here, f"nested deeper than {MAX_DEPTH} levels: flatten it"
    elif isinstance(value, Invalid):
        yield here, value.problem
    elif isinstance(value, float) and not math.isfinite(value):
        yield here, f"{value!r} is not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _problems(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _problems(item, f"{where}[{i}]", depth + 1)


def as_kubectl_would(value: Any, prune_nulls: bool = True) -> Any:
    """What the API server makes of a manifest with a structural schema: a null field is pruned
    (then defaulted), an integral float such as 30.0 is an integer."""
    if isinstance(value, dict):
        return {
            k: as_kubectl_would(v, prune_nulls)
            for k, v in value.items()
            if v is not None or not prune_nulls
        }
    if isinstance(value, list):
        return [as_kubectl_would(v, prune_nulls) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)  # JSON 30.0 is an integer to the API server (int64 at most)
    return value
