"""What handlers share: the execution context and their outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import KestrelError
from ..symbols import Variable
from ..syntax.unparse import unparse


@dataclass
class Outcome:
    variable: Optional[Variable] = None
    results: list = field(default_factory=list)
    empty_notes: list = field(default_factory=list)  # why, should the variable be empty


@dataclass
class Context:
    store: object
    symtable: dict
    sources: object
    analytics: object
    config: object
    source_text: str
    progress: Callable = lambda text: None  # how a long statement is going, for the front end
    created_views: list = field(default_factory=list)

    def new_view(self, name: str) -> str:
        view = self.store.new_view_name(name)
        self.created_views.append(view)
        return view

    def error(self, cls, message, stmt, **kwargs) -> KestrelError:
        return cls(message, **kwargs).at(stmt.span, self.source_text)

    def make_variable(self, resolved, view, entity_type, **extra) -> Variable:
        """The variable a statement defines: its view, and how it was made (lineage)."""
        stmt = resolved.stmt
        if view not in self.created_views:
            # another variable's view (`b = a`): the store keeps a variable's metadata with
            # its view, so each variable needs a view of its own
            own = self.new_view(stmt.output)
            self.store.copy_view(own, entity_type, view)
            view = own
        return Variable(name=stmt.output, view=view, entity_type=entity_type,
                        version=self.symtable.next_version(), statement=unparse(stmt),
                        command=stmt.command, inputs=tuple(stmt.inputs),
                        references=resolved.references, **extra)
