"""The symbol table: Kestrel variable name -> Variable (a firepit view and its story)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Variable:
    name: str
    view: str
    entity_type: str
    version: int
    statement: str = ""                 # the statement that made it, as canonical text
    command: str = ""                   # its command: get, find, group, merge, ...
    source: Optional[str] = None        # data source URI it came from (GET), if any
    pattern: Optional[str] = None       # STIX pattern sent to the source
    native_queries: tuple = ()          # what each source actually ran
    inputs: tuple = ()                  # variables it was derived from
    references: tuple = ()              # variables whose values its WHERE used
    grouped: bool = False               # a GROUP result: rows, not entities
    rules: tuple = ()                   # Sigma rules its WHERE ran, each with its condition

    def to_appdata(self) -> dict:
        data = asdict(self)
        for key in ("native_queries", "inputs", "references", "rules"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_appdata(cls, data: dict) -> "Variable":
        data = dict(data)
        for key in ("native_queries", "inputs", "references", "rules"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass
class SymbolTable(dict):
    """name -> Variable, plus a counter so every definition gets a new version."""

    counter: int = field(default=0)

    def next_version(self) -> int:
        self.counter += 1
        return self.counter
