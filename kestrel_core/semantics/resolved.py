"""What the check stage hands a command: the statement, the variables it reads, and
what its text left open, filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol

from ..symbols import Variable
from ..syntax import ast
from ..syntax.ecgp import ALWAYS


class Catalog(Protocol):
    """What the check stage reads of the store (kestrel.store.Store implements it)."""

    def types(self) -> list: ...                        # entity types with stored data
    def columns(self, view: str) -> list: ...           # attributes of a variable's view
    def type_columns(self, entity_type: str) -> list: ...
    def stored_column(self, entity_type: str, path: str) -> Optional[str]: ...  # renamed
    def ref_targets(self, entity_type: str, reference: str) -> list: ...
    def references(self, entity_type: str) -> dict: ...  # {reference: types it points to}
    def values(self, view: str, attribute: str) -> list: ...
    def time_range(self, view: str) -> Optional[tuple]: ...  # (first, last) record times


@dataclass(frozen=True)
class Selection:
    """What narrows a set of entities: the WHERE with `var.attr` references replaced by
    their values and simplified (an ECGP, or ALWAYS/NEVER when that is all it says),
    the time window ((start, stop), text or datetimes), then order and slice."""

    where: object = ALWAYS
    window: Optional[tuple] = None
    sort_by: Optional[str] = None
    ascending: bool = True
    limit: Optional[int] = None
    offset: Optional[int] = None


@dataclass(frozen=True)
class Resolved:
    """A statement checked against the symbol table and the store: its handler's input."""

    stmt: ast.Statement
    variables: Mapping[str, Variable] = field(default_factory=dict)  # all it reads
    entity_type: Optional[str] = None     # of the entities it reads or makes
    selection: Selection = Selection()
    references: tuple = ()                # variables whose values its WHERE used
    links: tuple = ()                     # FIND: (reference, "in" | "out") pairs, or
                                          # (None, "record") for LINKED (same record)
    arguments: tuple = ()                 # APPLY: (name, value) with `var.attr` resolved
    sigma: tuple = ()                     # the rules (RuleSet) of each SIGMA clause of its WHERE

    def var(self, name: str) -> Variable:
        return self.variables[name]
