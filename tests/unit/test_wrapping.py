"""peakpilot.wrapping at a line's edge: a text that fits is one line (the fast path), one
character more breaks at a space, whitespace always comes out as single spaces."""

from __future__ import annotations

import pytest
from rich.text import Text

from peakpilot.wrapping import wrap


def plain(lines: list[Text]) -> list[str]:
    return [line.plain for line in lines]


@pytest.mark.parametrize("indent", [0, 2, 6])
def test_a_text_that_fits_is_one_line_and_one_more_character_breaks_it(indent: int) -> None:
    fits = "word " * 3 + "x" * (24 - indent - 15)
    assert len(fits) + indent == 24
    assert plain(wrap(fits, indent=indent, width=24)) == [" " * indent + fits]
    longer = wrap(fits + "y", indent=indent, width=24)
    assert plain(longer) == [
        " " * indent + "word word word",
        " " * max(4, indent + 2) + fits[15:] + "y",
    ]


def test_whitespace_is_single_spaces_whether_the_text_fits_or_not() -> None:
    assert plain(wrap(Text("a  b\n c\t"), indent=2)) == ["  a b c"]
    assert plain(wrap(Text("a  b\n c\t"), width=4)) == ["a b", "    c"]
    assert plain(wrap("", indent=2)) == ["  "]
    assert plain(wrap(Text(""))) == [""]


def test_the_style_starts_after_the_indent_on_every_line() -> None:
    (line,) = wrap(Text("short", style="red"), indent=2)
    assert [(s.start, s.end, s.style) for s in line.spans] == [(2, 7, "red")]
    first, second = wrap(Text("one two", style="red"), indent=2, width=6)
    assert [(s.start, s.style) for s in first.spans] == [(2, "red")]
    assert [(s.start, s.style) for s in second.spans] == [(4, "red")]


def test_a_text_with_spans_keeps_them_when_it_fits() -> None:
    text = Text.from_markup("a [bold]b[/] c")
    (line,) = wrap(text, indent=2)
    assert line.plain == "  a b c"
    assert [(s.start, s.end, str(s.style)) for s in line.spans] == [(4, 5, "bold")]
