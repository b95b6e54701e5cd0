"""A limit on how deep a bundle nests, checked on the raw bytes as the parser reads them.

ijson builds each object whole and names every value by its full path, so a list
nested 100,000 deep in a 200 KB file took over 20 GB before one object came out.
The guard sees each chunk first: escapes and strings are cut out (C-speed bytes and
regex operations), the brackets left are counted, and a chunk that would nest too
deep stops the read with a DataSourceError.
"""

from __future__ import annotations

import re
from itertools import accumulate

from ..errors import DataSourceError

MAX_DEPTH = 64  # levels within one STIX object, as the store's own check (validation.py)
OUTER = 6  # bundle { objects [ record { objects { object { ...: the levels around a value

_STRUCTURE = b'[]{}"'
_OTHERS = bytes(sorted(set(range(256)) - set(_STRUCTURE)))
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class DepthGuard:
    """A binary stream that refuses to hand out JSON nesting deeper than the limit."""

    def __init__(self, stream, location: str, limit: int = MAX_DEPTH + OUTER):
        self.stream, self.location, self.limit = stream, location, limit
        self.depth = 0
        self.in_string = False
        self.backslash = b""  # a trailing backslash: it escapes the next chunk's first byte
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if data:
            self._check(data)
            self.offset += len(data)
        return data

    def seek(self, *args):
        """Back to the start (of what a parser reads: everything is checked again)."""
        self.depth, self.in_string, self.backslash = 0, False, b""
        self.offset = self.stream.seek(*args)
        return self.offset

    def tell(self):
        return self.stream.tell()

    def _check(self, data: bytes):
        text = self.backslash + data
        self.backslash = b""
        if b"\\" in text:
            text = _ESCAPE.sub(b"", text)
            if text.endswith(b"\\"):
                text, self.backslash = text[:-1], b"\\"
        parts = text.translate(None, _OTHERS).split(b'"')  # strings: every other part
        text = b"".join(parts[1::2] if self.in_string else parts[0::2])
        if len(parts) % 2 == 0:  # an odd number of quotes: a string goes on
            self.in_string = not self.in_string
        opened = text.count(b"[") + text.count(b"{")
        if self.depth + opened > self.limit:  # maybe too deep: follow the levels
            deepest = max(accumulate(map(_STEP.__getitem__, text), initial=self.depth))
            if deepest > self.limit:
                raise DataSourceError(
                    f"refusing the data: {self.location} has a value nesting deeper than "
                    f"{self.limit - OUTER} levels (in its first {self.offset + len(data)} "
                    "bytes)")
        self.depth += 2 * opened - len(text)
