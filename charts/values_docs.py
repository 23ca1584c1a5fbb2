"""Write the chart's values documentation from one source: the "# --" comments in values.yaml.

The helm-docs convention, read by this script (no helm-docs binary): a "# -- text" comment block
right above a key documents that key (continuation lines are plain "#" lines), and
"# path.to.key -- text" documents a key values.yaml does not set (list items as "key[].field").
From them it writes

- the values table in charts/peakpilot/README.md, between the VALUES_START and VALUES_END markers
  (key, type from values.schema.json, default from values.yaml, description), and
- the "description" of every property in charts/peakpilot/values.schema.json.

Every schema property must be documented and every comment must name a schema property, so a new
value cannot go in undocumented. `python charts/values_docs.py` rewrites both files; `--check`
only compares (exit 1 naming what differs), as tests/chart/test_chart_docs.py does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "peakpilot"
VALUES_START = "<!-- values:start (written by charts/values_docs.py from values.yaml) -->"
VALUES_END = "<!-- values:end -->"
REGENERATE = "python charts/values_docs.py"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_-]+):(?: |$)")
_DOC = re.compile(r"^#\s*--\s?(?P<text>.*)$")
_PATH_DOC = re.compile(
    r"^#\s*(?P<path>[A-Za-z0-9_-]+(?:\[\])?(?:\.[A-Za-z0-9_-]+(?:\[\])?)*)\s+--\s?(?P<text>.*)$"
)


class DocsError(ValueError):
    """values.yaml and values.schema.json disagree on what is documented."""


@dataclass(frozen=True)
class Doc:
    path: str
    text: str
    line: int  # 1-based line of values.yaml the comment starts on


def parse_docs(values_yaml: str) -> dict[str, Doc]:
    """Every documented key of values.yaml by dotted path, in the file's order."""
    docs: dict[str, Doc] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    block: tuple[str | None, list[str], int] | None = None  # (path or None for "# --", lines, line)

    def close_path_block() -> None:
        nonlocal block
        if block is not None and block[0] is not None:
            add(block[0], block[1], block[2])
            block = None

    def add(path: str, lines: list[str], line: int) -> None:
        if path in docs:
            raise DocsError(f"values.yaml:{line}: {path} is documented twice")
        docs[path] = Doc(path, " ".join(" ".join(lines).split()), line)

    for number, raw in enumerate(values_yaml.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            close_path_block()
            block = None  # a comment documents only the key right below it
        elif stripped.startswith("#"):
            if doc := _DOC.match(stripped):
                close_path_block()
                block = (None, [doc["text"]], number)
            elif path_doc := _PATH_DOC.match(stripped):
                close_path_block()
                block = (path_doc["path"], [path_doc["text"]], number)
            elif block is not None:
                block[1].append(stripped.lstrip("#").strip())
        elif key := _KEY.match(raw):
            close_path_block()
            indent = len(key["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([k for _, k in stack] + [key["key"]])
            if block is not None:
                add(path, block[1], block[2])
            block = None
            stack.append((indent, key["key"]))
        else:
            close_path_block()
            block = None
    close_path_block()
    return docs


def schema_properties(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, schema node) of every property, list items as "key[]"."""
    for key, child in node.get("properties", {}).items():
        child_path = f"{path}.{key}" if path else key
        yield child_path, child
        yield from schema_properties(child, child_path)
    if isinstance(node.get("items"), dict):
        yield from schema_properties(node["items"], f"{path}[]")


def check(docs: dict[str, Doc], schema: dict[str, Any]) -> None:
    properties = dict(schema_properties(schema))
    problems = [
        f"values.yaml: {path} has no '# --' comment (add one above the key, or "
        f"'# {path} -- text' if values.yaml does not set it)"
        for path in properties
        if path not in docs
    ] + [
        f"values.yaml:{doc.line}: {path} is documented but values.schema.json has no such property"
        for path, doc in docs.items()
        if path not in properties
    ]
    if problems:
        raise DocsError("\n".join(problems))


def described_schema(schema: dict[str, Any], docs: dict[str, Doc]) -> dict[str, Any]:
    """A copy of the schema with each property's description from its comment."""
    check(docs, schema)
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    for path, node in schema_properties(copy):
        node["description"] = docs[path].text
    return copy


def schema_type(node: dict[str, Any]) -> str:
    if "type" in node:
        return str(node["type"])
    if "enum" in node:
        return " or ".join(dict.fromkeys(_json_type(v) for v in node["enum"]))
    if "anyOf" in node:
        types = [schema_type(o) for o in node["anyOf"] if "const" not in o]
        return " or ".join(dict.fromkeys(types))
    return "any"


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), "object"
    )


def default(values: dict[str, Any], path: str, node: dict[str, Any]) -> str:
    """The default as JSON; structured objects are shown by their own keys' rows."""
    if "[]" in path:
        return ""  # a field of list items: no default of its own
    value: Any = values
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return "unset"
        value = value[key]
    if isinstance(value, dict) and value and "properties" in node:
        return ""
    return f"`{json.dumps(value)}`"


def values_table(schema: dict[str, Any], values: dict[str, Any], docs: dict[str, Doc]) -> str:
    check(docs, schema)
    properties = dict(schema_properties(schema))
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for path, doc in docs.items():
        node = properties[path]
        cells = [f"`{path}`", schema_type(node), default(values, path, node), _text(doc.text)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def _text(text: str) -> str:
    """Prose for a Markdown cell: <x> would vanish as an HTML tag (| is escaped for every cell)."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def readme_with_table(readme: str, table: str) -> str:
    start, end = readme.find(VALUES_START), readme.find(VALUES_END)
    if start < 0 or end < start:
        raise DocsError(f"README.md: the markers {VALUES_START!r} ... {VALUES_END!r} are missing")
    return readme[: start + len(VALUES_START)] + "\n\n" + table + "\n\n" + readme[end:]


def generated(chart: Path = CHART) -> dict[Path, str]:
    """What values.schema.json and README.md should contain, by path."""
    values_yaml = (chart / "values.yaml").read_text()
    docs = parse_docs(values_yaml)
    values = yaml.safe_load(values_yaml)
    schema = json.loads((chart / "values.schema.json").read_text())
    readme = (chart / "README.md").read_text()
    return {
        chart / "values.schema.json": json.dumps(described_schema(schema, docs), indent=2) + "\n",
        chart / "README.md": readme_with_table(readme, values_table(schema, values, docs)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        files = generated()
    except DocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in files.items() if path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path])
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
