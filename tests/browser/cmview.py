"""Reading highlighting off a CodeMirror 6 editor in the page.

CodeMirror 6 emits generated class names (e.g. `ͼs`), so highlighting is read as it is
seen: for each character, whether a span wraps it and that span's computed colour, weight
and style. Plain text (no token) sits bare in its `.cm-line`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pygments.token import (Comment, Keyword, Literal, Name, Number, Operator, Punctuation,
                            String)

# One entry per text node of each .cm-line: its text, whether a span wraps it, its look.
_READ_LINES = """
content => [...content.querySelectorAll(':scope > .cm-line')].map(line => {
  const parts = [];
  const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    const style = getComputedStyle(element);
    parts.push({text: node.textContent, wrapped: element !== line, color: style.color,
                weight: style.fontWeight, fontStyle: style.fontStyle});
  }
  return parts;
})
"""


@dataclass(frozen=True)
class Look:
    wrapped: bool
    color: str
    weight: str
    font_style: str

    def __str__(self):
        where = "span" if self.wrapped else "bare"
        return f"{where} {self.color} {self.weight} {self.font_style}"


class Highlighted:
    """The text of an editor and the look of each of its characters."""

    def __init__(self, lines: list[list[dict]]):
        self.lines = ["".join(part["text"] for part in parts) for parts in lines]
        self.looks = [[Look(p["wrapped"], p["color"], p["weight"], p["fontStyle"])
                       for p in parts for _ in p["text"]] for parts in lines]

    @classmethod
    def read(cls, content_locator) -> "Highlighted":
        return cls(content_locator.evaluate(_READ_LINES))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def look_of(self, line: int, start: int, end: int) -> Look:
        """The one look of line[start:end]; AssertionError if it has several."""
        looks = set(self.looks[line][start:end])
        assert len(looks) == 1, (self.lines[line][start:end], [str(x) for x in looks])
        return looks.pop()

    def look_of_word(self, word: str, line: int | None = None) -> Look:
        """The look of the first occurrence of `word` as a whole word."""
        for number, text in enumerate(self.lines):
            if line is not None and number != line:
                continue
            match = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)
            if match:
                return self.look_of(number, match.start(), match.end())
        raise AssertionError(f"{word!r} not in {self.lines}")

    def bare(self) -> Look:
        """The look of plain text: the line's own."""
        for looks in self.looks:
            for look in looks:
                if not look.wrapped:
                    return look
        raise AssertionError("no bare text")


# Pygments token type -> what the CodeMirror mode should make of it (kestrel.ts's table):
# tokens of one kind must look alike, and only `name` is bare.
KINDS = [
    (Keyword.Constant, "keyword"),    # true, false, null: bool / null, keyword subtags
    (Keyword.Type, "keyword"),        # DAYS, ...: unit, a keyword subtag
    (Keyword.Pseudo, "keyword"),      # CREATED, ...
    (Keyword, "keyword"),
    (Operator.Word, "keyword"),       # AND, IN, ...: operatorKeyword
    (Operator, "operator"),
    (Name.Builtin, "builtin"),
    (Name.Class, "type"),
    (Name.Attribute, "property"),
    (Name, "name"),
    (Literal.Date, "timestamp"),
    (String.Other, "url"),
    (String, "string"),               # incl. String.Affix: the r of r'...'
    (Comment, "comment"),
    (Number, "number"),
    (Punctuation, "punctuation"),
]


def kind_of(token_type) -> str:
    for parent, kind in KINDS:
        if token_type in parent:
            return kind
    raise AssertionError(f"no kind for {token_type}")


def tokens_by_position(lexer, text: str):
    """(token type, line number, start column, end column, value) of each non-blank token."""
    found = []
    line, col = 0, 0
    for token_type, value in lexer.get_tokens(text):
        pieces = value.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                line, col = line + 1, 0
            if piece.strip():
                stripped = piece.strip()
                start = col + piece.index(stripped)
                found.append((token_type, line, start, start + len(stripped), stripped))
            col += len(piece)
    return found
