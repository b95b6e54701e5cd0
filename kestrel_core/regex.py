"""Regular expressions wherever Kestrel matches one itself: MATCHES and LIKE in the store
on SQLite and in the record matcher, Sigma's expressions, analytics' patterns.

They run on RE2 (google-re2), whose time grows linearly with the text: a pattern such as
`^(a+)+$` against a long value answers at once instead of backtracking for hours, the
same in every place.  The syntax is Python's minus what only a backtracking engine can
do (lookaround, backreferences): a pattern using those is refused with RE2's reason
before any data source is asked.  `.` matches a newline, as in the store's MATCHES;
`\\Z` is the end of the text, as in Python.
"""

from __future__ import annotations

import functools


class RegexError(ValueError):
    """Not a regular expression RE2 runs (the message says why)."""


class Pattern:
    """A compiled expression answering yes or no: RE2's own Match, without google-re2's
    Python layer that finds match objects (five times the time, for a thousand rules over
    every distinct value)."""

    def __init__(self, compiled, anchors):
        self._match = compiled._regexp.Match
        self._anywhere, self._whole = anchors.UNANCHORED, anchors.ANCHOR_BOTH

    def search(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return self._match(self._anywhere, data, 0, len(data))[0][0] != -1

    def fullmatch(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return self._match(self._whole, data, 0, len(data))[0][0] != -1


@functools.lru_cache(maxsize=32768)
def compiled(pattern: str, case_sensitive: bool = True, dot_nl: bool = True) -> Pattern:
    """The compiled expression (kept: a folder of Sigma rules holds thousands)."""
    import re2

    options = re2.Options()
    options.dot_nl = dot_nl
    options.log_errors = False
    options.case_sensitive = case_sensitive
    try:
        return Pattern(re2.compile(_as_re2(pattern), options), re2._Anchor)
    except re2.error as err:
        reason = err.args[0] if err.args else err
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise RegexError(reason) from None


class PatternSet:
    """Which of many expressions a text matches, in one pass over it (RE2's Set): a folder
    of Sigma rules is thousands of expressions over the same values, 11x faster than one
    search each.  The expressions go in sets of SET_SIZE, each with an empty expression,
    which every text matches: RE2 reports a pass it could not finish (its automaton out of
    memory) as no match at all, and such a text is then tested expression by expression."""

    SET_SIZE = 1024

    def __init__(self, patterns: list):
        import re2

        self.patterns = list(patterns)
        self._sets = []
        for at in range(0, len(self.patterns), self.SET_SIZE):
            options = re2.Options()
            options.dot_nl = True
            options.log_errors = False
            options.max_mem = 256 << 20
            rules = re2.Set.SearchSet(options)
            for pattern in self.patterns[at:at + self.SET_SIZE]:
                rules.Add(_as_re2(pattern))
            everything = rules.Add("")
            rules.Compile()
            self._sets.append((at, rules._set.Match, everything))

    def matching(self, text: str) -> list:
        """The indexes of the expressions `text` matches."""
        data = text.encode("utf-8", "surrogatepass")
        found = []
        for at, match, everything in self._sets:
            hits = match(data)
            if everything not in hits:
                hits = [i for i in range(min(self.SET_SIZE, len(self.patterns) - at))
                        if compiled(self.patterns[at + i]).search(text)] + [everything]
            found.extend(at + i for i in hits if i != everything)
        return found


def search(pattern: str, text: str) -> bool:
    return compiled(pattern).search(text)


def problem(pattern) -> str | None:
    """Why `pattern` is no regular expression Kestrel runs, or None."""
    if not isinstance(pattern, str):
        return f"{pattern!r} is no text"
    try:
        compiled(pattern)
    except RegexError as err:
        return str(err)
    return None


def _as_re2(pattern: str) -> str:
    """Python's `\\Z` (end of text) is RE2's `\\z`; every other escape reads the same."""
    if "\\Z" not in pattern:
        return pattern
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append("\\z" if pair == "\\Z" else pair)
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)
