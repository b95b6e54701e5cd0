"""The check of each statement: a parsed statement -> a Resolved one.

Every variable it reads exists, entity types and attributes are known to the store (or
to STIX), relations exist between the types, values suit their operators, and the WHERE
is resolved against the symbol table.  Errors point at the attribute, value or
statement at fault.  Nothing is written: the handlers execute what comes out.
"""

from __future__ import annotations

import dataclasses

from ..errors import (KestrelSemanticError, UnknownAttribute, UnsupportedRelation,
                      VariableNotFound)
from ..stix import entity_type_error
from ..syntax import ast
from .attributes import attribute_problem, comparisons, unknown_attribute
from .relations import find_links, find_relations
from .resolved import Resolved, Selection
from .sigma import expand_statement, has_sigma
from .where import check_values, resolve_where

# A transform's entity type, when it is not its input's.
TRANSFORM_TYPES = {"RECORDS": "observed-data"}
# Attributes a transform adds in front of its input's (firepit's TIMESTAMPED, ADDOBSID).
TRANSFORM_COLUMNS = {"TIMESTAMPED": ["first_observed"], "ADDOBSID": ["observation_id"]}


def statement_where(stmt):
    """The ECGP of a GET/FIND, or of an expression's WHERE; None if there is none."""
    expression = getattr(stmt, "expression", None)
    return expression.where if expression is not None else getattr(stmt, "where", None)


class Checker:
    """The check of one statement: its source text, the symbol table, the store's
    catalog, the configuration (time offsets) and the statement's clock (LAST)."""

    def __init__(self, stmt, symtable, catalog, source, config, now):
        self.stmt, self.symtable, self.catalog = stmt, symtable, catalog
        self.source, self.config, self.now = source, config, now

    def fail(self, error, span=None):
        return error.at(span if span is not None else self.stmt.span, self.source)

    def variables(self) -> dict:
        """name -> Variable of every variable the statement reads (`var.attr` included)."""
        names = list(self.stmt.inputs)
        names += [ref.variable for ref in ast.var_attrs(statement_where(self.stmt))]
        for name in names:
            if name not in self.symtable:
                defined = ", ".join(sorted(self.symtable)) or "none yet"
                raise self.fail(VariableNotFound(
                    f'variable "{name}" is not defined (defined: {defined})'))
        return {name: self.symtable[name] for name in names}

    def entity_type(self, entity_type):
        error = entity_type_error(entity_type, self.catalog.types())
        if error is not None:
            raise self.fail(error)

    def attribute(self, attribute, columns, owner, entity_type, span=None):
        """`attribute` can be read from `owner` (a variable, or a type), whose entities
        of `entity_type` have `columns`: UnknownAttribute otherwise, at `span` (the
        attribute's, when the AST has one) or else at the statement."""
        problem = attribute_problem(attribute, columns, entity_type, self.catalog)
        if problem is None:
            return
        reason, close = problem
        raise self.fail(UnknownAttribute(
            f'"{attribute}" is not an attribute of {owner} ({reason})',
            hint=f'did you mean "{close}"?' if close else None,
        ), span if span is not None and span.line else None)

    def where_attributes(self, where, columns, owner, entity_type):
        """A WHERE on a variable names the variable's attributes; a comparison about
        another entity type (`ipv4-addr:value` in a WHERE on processes) is checked
        against that type's stored columns, if any."""
        for comparison in comparisons(where):
            path = comparison.path
            kind = path.entity_type or entity_type
            if kind == entity_type:
                self.attribute(path.attribute, columns, owner, kind, path.span)
            else:
                self.attribute(path.attribute, self.catalog.type_columns(kind), kind, kind,
                               path.span)

    def source_attributes(self, where, entity_type):
        """A WHERE a data source answers may name attributes the store has not seen yet,
        but not ones that neither STIX nor the stored data know: a typo is an error at
        the attribute, naming the closest known one."""
        for comparison in comparisons(where):
            path = comparison.path
            kind = path.entity_type or entity_type
            problem = unknown_attribute(path.attribute, kind, self.catalog)
            if problem is not None:
                reason, close = problem
                raise self.fail(UnknownAttribute(
                    f'"{path.attribute}" is not an attribute of {kind} ({reason})',
                    hint=f'did you mean "{close}"?' if close else None),
                    path.span if path.span.line else None)

    def selection(self, variables, where, timerange=None, **slicing) -> Selection:
        """The WHERE and time range resolved, with `slicing` (limit, sort_by, ...)."""
        check_values(where, self.source)
        for ref in ast.var_attrs(where):
            variable = variables[ref.variable]
            self.attribute(ref.attribute, self.catalog.columns(variable.view), ref.variable,
                           variable.entity_type, ref.span)
        resolved, window = resolve_where(where, timerange, variables, self.catalog,
                                         self.config, self.now)
        return Selection(resolved, window, **slicing)

    def resolved(self, variables, references=(), **facts) -> Resolved:
        references = tuple(dict.fromkeys(
            [ref.variable for ref in ast.var_attrs(statement_where(self.stmt))]
            + list(references)))
        return Resolved(self.stmt, variables, references=references, **facts)

    def argument(self, value, references: list):
        """An APPLY argument's value: `var.attr` of a variable gives the attribute's
        distinct values (a list, as a tuple like every list; its name goes to
        `references`), any other word is text; lists are flattened."""
        if isinstance(value, tuple):
            flat = []
            for item in value:
                resolved = self.argument(item, references)
                flat.extend(resolved if isinstance(resolved, tuple) else [resolved])
            return tuple(flat)
        if not isinstance(value, ast.VarAttr):
            return value
        variable = self.symtable.get(value.variable)
        if variable is None:
            return f"{value.variable}.{value.attribute}"  # a word such as example.com
        self.attribute(value.attribute, self.catalog.columns(variable.view), value.variable,
                       variable.entity_type, value.span)
        references.append(value.variable)
        return tuple(dict.fromkeys(self.catalog.values(variable.view, value.attribute)))


# ------------------------------------------------------------------ statements


def get(check, stmt, variables):
    check.entity_type(stmt.entity_type)
    if stmt.source and stmt.source.kind == "variable":
        source = variables[stmt.source.text]
        if source.entity_type != stmt.entity_type:
            raise check.fail(KestrelSemanticError(
                f"{source.name} holds {source.entity_type} entities, not {stmt.entity_type}"))
        check.where_attributes(stmt.where, check.catalog.columns(source.view), source.name,
                               source.entity_type)
    else:
        check.source_attributes(stmt.where, stmt.entity_type)
    selection = check.selection(variables, stmt.where, stmt.timerange, limit=stmt.limit)
    return check.resolved(variables, entity_type=stmt.entity_type, selection=selection)


def find(check, stmt, variables):
    check.entity_type(stmt.entity_type)
    source = variables[stmt.input]
    links = find_links(check.catalog, stmt.entity_type, stmt.relation, source.entity_type,
                       stmt.reversed)
    if not links:
        possible = find_relations(check.catalog, stmt.entity_type, source.entity_type)
        by = " BY" if stmt.reversed else ""
        raise check.fail(UnsupportedRelation(
            f"no relation {stmt.relation.upper()}{by} from {source.entity_type} "
            f"({stmt.input}) to {stmt.entity_type}",
            hint="possible: " + ", ".join(f"FIND {stmt.entity_type} {p} {stmt.input}"
                                           for p in possible)))
    check.source_attributes(stmt.where, stmt.entity_type)
    selection = check.selection(variables, stmt.where, stmt.timerange, limit=stmt.limit)
    return check.resolved(variables, entity_type=stmt.entity_type, selection=selection,
                          links=tuple(links))


def expression(check, stmt, variables, whole=True):
    """An expression (assignment, DISP): its entity type, its attributes checked against
    what its transform gives; `whole` False leaves order and slice to DISP's page."""
    expr = stmt.expression
    source = variables[expr.input]
    entity_type = TRANSFORM_TYPES.get(expr.transform, source.entity_type)
    if expr.transform == "RECORDS":
        columns = check.catalog.type_columns(entity_type)
    else:
        columns = (TRANSFORM_COLUMNS.get(expr.transform, [])
                   + check.catalog.columns(source.view))
    if expr.sort_by and whole:
        check.attribute(expr.sort_by, columns, expr.input, entity_type)
    check.where_attributes(expr.where, columns, expr.input, entity_type)
    slicing = dict(sort_by=expr.sort_by, ascending=expr.ascending, limit=expr.limit,
                   offset=expr.offset) if whole else {}
    selection = check.selection(variables, expr.where, **slicing)
    return columns, check.resolved(variables, entity_type=entity_type, selection=selection)


def assign(check, stmt, variables):
    return expression(check, stmt, variables)[1]


def disp(check, stmt, variables):
    columns, resolved = expression(check, stmt, variables, whole=False)
    expr = stmt.expression
    for attribute in expr.attrs + ((expr.sort_by,) if expr.sort_by else ()):
        check.attribute(attribute, columns, expr.input, resolved.entity_type)
    return resolved


def one_attribute(check, stmt, variables):
    """SORT and DESCRIBE: one attribute of the input variable."""
    source = variables[stmt.input]
    check.attribute(stmt.attribute, check.catalog.columns(source.view), stmt.input,
                    source.entity_type)
    return check.resolved(variables, entity_type=source.entity_type)


def group(check, stmt, variables):
    source = variables[stmt.input]
    columns = check.catalog.columns(source.view)
    keys = [k.attribute if isinstance(k, ast.Bin) else k for k in stmt.by]
    for attribute in keys + [a.attribute for a in stmt.aggregations if a.attribute != "*"]:
        check.attribute(attribute, columns, stmt.input, source.entity_type)
    return check.resolved(variables, entity_type=source.entity_type)


def join(check, stmt, variables):
    left, right = variables[stmt.left], variables[stmt.right]
    check.attribute(stmt.left_attribute or "id", check.catalog.columns(left.view), left.name,
                    left.entity_type)
    check.attribute(stmt.right_attribute or "id", check.catalog.columns(right.view),
                    right.name, right.entity_type)
    return check.resolved(variables, entity_type=left.entity_type)


def merge(check, stmt, variables):
    merged = [variables[name] for name in stmt.variables]
    types = {v.entity_type for v in merged}
    if len(types) > 1:
        listing = ", ".join(f"{v.name} ({v.entity_type})" for v in merged)
        raise check.fail(KestrelSemanticError(
            f"cannot merge variables of different entity types: {listing}"))
    return check.resolved(variables, entity_type=types.pop())


def new(check, stmt, variables):
    """NEW and LOAD: the entity type comes with the data; NEW and LOAD check it."""
    return check.resolved(variables, entity_type=stmt.entity_type)


def apply(check, stmt, variables):
    references = []
    arguments = tuple((name, check.argument(value, references))
                      for name, value in stmt.arguments)
    return check.resolved(variables, references=references, arguments=arguments)


def reading(check, stmt, variables):
    """SAVE, INFO, EXPLAIN: the variables they read exist."""
    return check.resolved(variables)


CHECKS = {
    ast.Get: get, ast.Find: find, ast.Assign: assign, ast.Disp: disp, ast.Sort: one_attribute,
    ast.Group: group, ast.Join: join, ast.Merge: merge, ast.New: new, ast.Load: new,
    ast.Save: reading, ast.Apply: apply, ast.Info: reading, ast.Explain: reading,
    ast.Describe: one_attribute,
}


def check(stmt, symtable, catalog, source, config, now) -> Resolved:
    """The statement checked and resolved; KestrelSemanticError (with a position) if not."""
    checker = Checker(stmt, symtable, catalog, source, config, now)
    variables = checker.variables()
    if not has_sigma(statement_where(stmt)):
        return CHECKS[type(stmt)](checker, stmt, variables)
    if isinstance(stmt, (ast.Get, ast.Find)):
        checker.entity_type(stmt.entity_type)
        entity_type = stmt.entity_type
    else:
        source_variable = variables[stmt.expression.input]
        if source_variable.grouped:
            raise checker.fail(KestrelSemanticError(
                f"SIGMA matches entities: {source_variable.name} holds GROUP rows",
                hint="apply the rules to the variable that was grouped"))
        entity_type = source_variable.entity_type
    checker.stmt, uses = expand_statement(stmt, entity_type, source)
    resolved = CHECKS[type(stmt)](checker, checker.stmt, variables)
    return dataclasses.replace(resolved, stmt=stmt, sigma=uses)

