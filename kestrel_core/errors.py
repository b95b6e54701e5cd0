"""The one exception hierarchy of Kestrel.

Every error a hunter can meet is a KestrelError: its ``str()`` is the text
shown to the user (position, the source line with a caret, what was expected,
a hint), and ``to_dict()`` is the same for front ends.  Nothing else
(lark, firepit, Python internals) is meant to reach a user.
"""

from __future__ import annotations


class KestrelError(Exception):
    """Base class: a message, and where it happened when known."""

    def __init__(self, message, *, line=None, column=None, source=None,
                 width=1, expected=None, hint=None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        self.width = max(1, width)
        self.expected = list(expected or [])
        self.hint = hint

    def at(self, span, source):
        """Attach a position (from a syntax Span) if none is set yet; returns self."""
        if self.line is None and span is not None:
            self.line, self.column = span.line, span.column
            same_line = span.end_line == span.line
            self.width = (span.end_column - span.column) if same_line else 1
            self.source = source
        return self

    @property
    def headline(self):
        where = f"line {self.line}, column {self.column}: " if self.line else ""
        return f"{type(self).__name__}: {where}{self.message}"

    def __str__(self):
        lines = [self.headline]
        snippet = self._snippet()
        if snippet:
            lines.extend(snippet)
        if self.expected:
            lines.append("expected: " + ", ".join(self.expected))
        if self.hint:
            lines.append("hint: " + self.hint)
        return "\n".join(lines)

    def _snippet(self):
        if not (self.source and self.line):
            return []
        # lines as lark counts them: only "\n" ends one (splitlines also breaks at \r, \x85...)
        source_lines = [line.removesuffix("\r") for line in self.source.split("\n")]
        if self.line > len(source_lines):
            text = ""
        else:
            text = source_lines[self.line - 1]
        gutter = str(self.line)
        pad = " " * len(gutter)
        caret = " " * (self.column - 1) + "^" * max(1, min(self.width, len(text) - self.column + 2))
        return [f"  {gutter} | {text}", f"  {pad} | {caret}"]

    def to_dict(self):
        return {
            "error": type(self).__name__,
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "expected": self.expected,
            "hint": self.hint,
            "text": str(self),
        }


class KestrelSyntaxError(KestrelError):
    """The text is not Kestrel: wrong token, bad character, unfinished statement."""


class KestrelSemanticError(KestrelError):
    """The text parses but means nothing valid (see the subclasses)."""


class VariableNotFound(KestrelSemanticError):
    pass


class UnknownEntityType(KestrelSemanticError):
    pass


class UnknownAttribute(KestrelSemanticError):
    pass


class UnsupportedRelation(KestrelSemanticError):
    pass


class InvalidArgument(KestrelSemanticError):
    pass


class SigmaRuleError(KestrelSemanticError):
    """A Sigma rule cannot be read, or cannot run as written (not applicable)."""


class DataSourceError(KestrelError):
    """A data source could not be reached, read or understood."""


class AnalyticsError(KestrelError):
    """An analytics is unknown, got bad parameters, or failed."""


class StoreError(KestrelError):
    """The firepit store could not be opened or refused an operation."""


class KestrelInternalError(KestrelError):
    """A bug: reported in one line with the session log that holds the details."""
