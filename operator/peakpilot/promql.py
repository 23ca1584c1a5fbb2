"""The vector selectors of a PromQL expression, found by a small tokenizer (no I/O).

Why: an instant query's timestamp is the evaluation time, and `timestamp(sum(x))` is too; only
`timestamp(x)` of a selector gives a sample's own time. The load queries' selectors are what the
staleness check asks about. A selector with `offset` or `@` is left out (old on purpose).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<braces>\{(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`|[^}"'`])*\})
  | (?P<brackets>\[[^\]]*\])
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
  | (?P<space>\s+|\#[^\n]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Words that are never metric names where they stand: operators, modifiers, aggregations.
_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "atan2",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
_LABEL_LISTS = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])


def selectors(query: str) -> list[str]:
    """The instant-vector form of each selector in `query`, in order, without duplicates:
    `rate(http_requests_total{app="x"}[1m])` gives `http_requests_total{app="x"}`."""
    tokens = [
        (m.lastgroup or "other", m.group())
        for m in _TOKEN.finditer(query)
        if m.lastgroup != "space"
    ]
    found: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "name" and text.lower() in _LABEL_LISTS and following[1] == "(":
            i = _skip_parens(tokens, i + 1)  # `by (app)`: label names, not metrics
            continue
        selector = None
        if kind == "name" and text.lower() not in _KEYWORDS and following[1] != "(":
            selector = text
            if following[0] == "braces":
                selector += following[1]
                i += 1
        elif kind == "braces":
            selector = text
        i += 1
        if selector is None:
            continue
        if i < len(tokens) and tokens[i][0] == "brackets":
            i += 1  # a range selector: its newest sample is what counts
        modifier = tokens[i][1].lower() if i < len(tokens) else ""
        if modifier in ("offset", "@"):
            continue
        if selector not in found:
            found.append(selector)
    return found


def _skip_parens(tokens: list[tuple[str, str]], start: int) -> int:
    """The index after the parenthesised group that opens at `start`."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i][1] == "(":
            depth += 1
        elif tokens[i][1] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(tokens)


def newest_sample_query(query: str, limit: int = 8) -> str | None:
    """A query whose value is the time of the stalest selector's newest sample (None: `query`
    has no selector to judge, or more than `limit`). Each selector is `max(timestamp(s))`; the
    union over a label per selector, then `min`, is one round trip whatever their number."""
    found = selectors(query)
    if not found or len(found) > limit:
        return None
    if len(found) == 1:
        return f"max(timestamp({found[0]}))"
    parts = [
        f'label_replace(max(timestamp({s})), "peakpilot_selector", "{n}", "", "")'
        for n, s in enumerate(found)
    ]
    return f"min({' or '.join(parts)})"
