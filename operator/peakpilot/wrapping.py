"""Text of a fixed width for the terminal: `plan` and `simulate` print the same bytes in an
80-column terminal, a wide one and piped. Nothing here reads the terminal's width, so rich never
re-wraps, cuts or pads what they print (they print these lines with `soft_wrap=True`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

WIDTH = 80  # every wrapped line fits an 80-column terminal

_WORD = re.compile(r"\S+")


def wrap(text: str | Text, indent: int = 0, width: int = WIDTH) -> list[Text]:
    """`text` in lines of at most `width` characters, broken at spaces: the first line indented
    by `indent`, the others (continuations) by 4, or by `indent + 2` when that is deeper. A `str`
    is plain text, never markup (pass `Text.from_markup(...)` for styles). Runs of whitespace,
    newlines too, become one space; a word longer than a line keeps a line of its own, whole
    (nothing is ever cut)."""
    then = max(4, indent + 2)
    if isinstance(text, str):
        text = Text(" ".join(text.split()))
    plain = text.plain
    if (
        plain
        and not text.spans
        and indent + len(plain) <= width
        and " ".join(plain.split()) == plain
    ):
        return [
            _line(indent, plain, text.style)
        ]  # one line as it is: most lines (1000 rows' worth)
    words = [(m.start(), m.end()) for m in _WORD.finditer(text.plain)]
    if " ".join(text.plain[s:e] for s, e in words) != text.plain:
        text = Text(" ").join(text[s:e] for s, e in words)  # rare: odd whitespace, styles kept
        words = [(m.start(), m.end()) for m in _WORD.finditer(text.plain)]
    if not words:
        return [Text(" " * indent)] if indent else [Text()]
    ranges: list[tuple[int, int, int]] = []  # (indent, start, end) of each line
    pad, start, end = indent, words[0][0], words[0][1]
    for s, e in words[1:]:
        if pad + e - start <= width:
            end = e
            continue
        ranges.append((pad, start, end))
        pad, start, end = then, s, e
    ranges.append((pad, start, end))
    if not text.spans:  # one style (most lines): no slicing of spans, a plain string each
        return [_line(pad, text.plain[s:e], text.style) for pad, s, e in ranges]
    return [Text(" " * pad) + text[s:e] if pad else text[s:e] for pad, s, e in ranges]


def _line(pad: int, plain: str, style: str | Style) -> Text:
    """`plain` after `pad` spaces, in `style` (the indent unstyled)."""
    line = Text(" " * pad + plain)
    if style:
        line.stylize(style, pad)
    return line


def joined(lines: Sequence[Text]) -> Text:
    """The lines as one `Text`, to print once with `soft_wrap=True` (a print per line costs rich
    about a millisecond: a second for a policy of 1000 workloads)."""
    return Text("\n").join(lines)
