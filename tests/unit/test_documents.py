"""The YAML reader's limits at their edges: nesting is counted while the composer runs, and the
alias walk runs whenever the text has a `*` (peakpilot.documents)."""

from __future__ import annotations

import pytest

from peakpilot.documents import MAX_DEPTH, InputError, parse_document


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def test_nesting_up_to_the_limit_is_read() -> None:
    value = parse_document(nested(MAX_DEPTH), "doc", is_json=False)
    for _ in range(MAX_DEPTH):
        (value,) = value
    assert value == 1


@pytest.mark.parametrize(
    "text",
    [
        nested(MAX_DEPTH + 1),  # a scalar under one level too many
        nested(MAX_DEPTH + 1, leaf=""),  # an empty collection one level too deep
        "a: " + "{b: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
        "\n".join("  " * i + "- " for i in range(MAX_DEPTH + 2)) + "x",  # block style
        "!!seq " + nested(MAX_DEPTH + 1),  # an explicit tag: resolved by no one, still counted
    ],
)
def test_nesting_past_the_limit_is_refused(text: str) -> None:
    with pytest.raises(InputError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_document(text, "doc", is_json=False)


def test_an_alias_is_walked_for_depth_and_size() -> None:
    deep = nested(MAX_DEPTH - 1)
    with pytest.raises(InputError, match="nested deeper"):
        parse_document(f"a: &x {deep}\nb: [*x]", "doc", is_json=False)
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [
        f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]"
        for a, b in zip("abcd", "bcde", strict=True)
    ]
    with pytest.raises(InputError, match="aliases expand"):
        parse_document("\n".join(laughs), "doc", is_json=False)


def test_a_star_that_is_no_alias_reads_as_text() -> None:
    document = parse_document('query: "rate(x[5m]) * 60"\nglob: a*b', "doc", is_json=False)
    assert document == {"query": "rate(x[5m]) * 60", "glob": "a*b"}


def test_keys_are_unique_merges_override_and_unhashable_keys_are_refused() -> None:
    text = "base: &b {x: 1, y: 2}\nm: {<<: *b, y: 3, z: 4}"
    assert parse_document(text, "doc", is_json=False)["m"] == {"x": 1, "y": 3, "z": 4}
    with pytest.raises(InputError, match="duplicate key 'y'"):
        parse_document("a: {y: 1, z: 2, y: 3}", "doc", is_json=False)
    with pytest.raises(InputError, match="duplicate key 'y'"):
        parse_document("base: &b {x: 1}\nm: {<<: *b, y: 3, y: 4}", "doc", is_json=False)
    with pytest.raises(InputError, match="found unhashable key"):
        parse_document("? [a, b]\n: 1", "doc", is_json=False)


def test_the_loader_has_no_path_resolvers_its_hooks_and_tag_cache_would_miss() -> None:
    from peakpilot.documents import _Loader

    assert not _Loader.yaml_path_resolvers


def test_strings_read_as_their_text_tagged_aliased_or_as_keys() -> None:
    text = "a: !!str 5\nb: &x hello\nc: [*x, *x]\n? !!str k\n: v\nd: ''\ne: |\n  two\n  lines\n"
    assert parse_document(text, "doc", is_json=False) == {
        "a": "5",
        "b": "hello",
        "c": ["hello", "hello"],
        "k": "v",
        "d": "",
        "e": "two\nlines\n",
    }
    with pytest.raises(InputError, match="could not determine a constructor"):
        parse_document("=: 1", "doc", is_json=False)  # YAML 1.1's value key, never a string
