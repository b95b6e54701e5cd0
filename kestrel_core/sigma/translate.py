"""A Sigma rule's detection -> the ECGP a hand-written WHERE would be.

pySigma has parsed the rule and applied its modifiers (contains, windash, base64, ...):
what arrives here is a tree of AND/OR/NOT over `field = typed value`.  Each leaf becomes
comparisons on STIX attributes (fields.py), so one condition serves every evaluator:
the STIX pattern a data source translates, the store's SQL, the record matcher.

- Strings match the whole value, case-insensitively unless `|cased`: a MATCHES with an
  anchored regular expression (`(?i)` unless cased; `*` is `.*`, `?` is `.`).
- `|re` is a MATCHES searching anywhere, with the rule's flags.
- The ECGP has no NOT over a group: `not` is pushed down to the comparisons, and a
  negated comparison also holds where the field is absent (Sigma's `not` on a missing
  field is true; STIX's negated comparison on one is false).
- A construct with no faithful ECGP form raises NotApplicable with the reason: the rule
  is never run weakened.
"""

from __future__ import annotations

from sigma import conditions as sc
from sigma import types as st

from ..syntax import ast
from ..syntax.ecgp import ALWAYS, NEVER
from .fields import Attribute, HashList, ImagePath


class NotApplicable(Exception):
    """The rule uses something the translation cannot express exactly."""


MULTI, SINGLE = st.SpecialChars.WILDCARD_MULTI, st.SpecialChars.WILDCARD_SINGLE
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")
_COMPARE = {st.CompareOperators.GT: ">", st.CompareOperators.GTE: ">=",
            st.CompareOperators.LT: "<", st.CompareOperators.LTE: "<="}


class Translation:
    """One rule's translation: its field table, and the fields it used that have no STIX
    equivalent (`absent`)."""

    def __init__(self, fields: dict):
        self.fields = fields
        self.absent: set = set()

    def condition(self, rule):
        """The ECGP (or ALWAYS/NEVER) of a parsed rule: its conditions OR-ed."""
        parts = [self.node(condition.parsed) for condition in rule.detection.parsed_condition]
        return any_of(parts)

    def node(self, item):
        if isinstance(item, sc.ConditionAND):
            return all_of([self.node(arg) for arg in item.args])
        if isinstance(item, sc.ConditionOR):
            return any_of(self.alternatives(item.args))
        if isinstance(item, sc.ConditionNOT):
            return negate(self.node(item.args[0]))
        if isinstance(item, sc.ConditionFieldEqualsValueExpression):
            return self.field(item.field, item.value)
        if isinstance(item, sc.ConditionValueExpression):
            raise NotApplicable("it searches keywords in whole events, which have no "
                                "STIX attribute")
        raise NotApplicable(f"its condition holds a {type(item).__name__}")

    def alternatives(self, args) -> list:
        """The ECGP of each OR-ed item; a list of strings for one field (pySigma's OR of
        its values) becomes one regular expression, not a comparison per value."""
        strings, out = {}, []
        for arg in args:
            value = getattr(arg, "value", None)
            if (isinstance(arg, sc.ConditionFieldEqualsValueExpression)
                    and type(value) in (st.SigmaString, st.SigmaCasedString)
                    and isinstance(self.fields.get(arg.field), (Attribute, ImagePath))):
                key = (arg.field, isinstance(value, st.SigmaCasedString))
                if key not in strings:
                    strings[key] = []
                    out.append(key)
                strings[key].append(tokens(value))
            else:
                out.append(self.node(arg))
        return [self.strings(*item, strings[item]) if isinstance(item, tuple) and item in
                strings else item for item in out]

    def strings(self, name, cased, values):
        target = self.fields[name]
        if isinstance(target, ImagePath):
            return _images(target, values, cased)
        return _string_match(target, values, cased)

    def field(self, name, value):
        if isinstance(value, st.SigmaExpansion):
            return any_of([self.field(name, v) for v in value.values])
        target = self.fields.get(name)
        if target is None:
            self.absent.add(name)
            return _absent(value)
        if isinstance(target, ImagePath):
            return _image(target, value)
        if isinstance(target, HashList):
            return _hashes(target, value, self.absent)
        return _attribute(target, value)


# ------------------------------------------------------------------ ECGP building


def compare(target: Attribute, op, value, negated=False) -> ast.Comparison:
    return ast.Comparison(ast.AttrPath(target.entity_type, target.path), op, value, negated)


def all_of(parts):
    return _join("AND", parts, absorbing=NEVER, neutral=ALWAYS)


def any_of(parts):
    return _join("OR", parts, absorbing=ALWAYS, neutral=NEVER)


def _join(op, parts, absorbing, neutral):
    operands, seen = [], set()
    for part in parts:
        if part is absorbing:
            return absorbing
        if part is neutral:
            continue
        for operand in (part.operands if isinstance(part, ast.BoolExpr) and part.op == op
                        else (part,)):
            if operand not in seen:
                seen.add(operand)
                operands.append(operand)
    if not operands:
        return neutral
    return operands[0] if len(operands) == 1 else ast.BoolExpr(op, tuple(operands))


def negate(node):
    """NOT node, pushed down to the comparisons; a negated comparison also holds where
    the attribute is absent."""
    if node is ALWAYS or node is NEVER:
        return NEVER if node is ALWAYS else ALWAYS
    if isinstance(node, ast.BoolExpr):
        parts = [negate(operand) for operand in node.operands]
        return any_of(parts) if node.op == "AND" else all_of(parts)
    if node.op == "IS":
        return ast.Comparison(node.path, "IS", None, not node.negated)
    return any_of([ast.Comparison(node.path, "IS", None),
                   ast.Comparison(node.path, node.op, node.value, not node.negated)])


# ------------------------------------------------------------------ values


def _absent(value):
    """A field no record has: only `null` (and `exists: false`) hold."""
    if isinstance(value, st.SigmaNull):
        return ALWAYS
    if isinstance(value, st.SigmaExists):
        return NEVER if value.exists else ALWAYS
    if isinstance(value, st.SigmaFieldReference):
        raise NotApplicable("|fieldref compares two fields; a WHERE compares with values")
    return NEVER


def _attribute(target: Attribute, value):
    if isinstance(value, st.SigmaString):
        return _string_match(target, [tokens(value)], isinstance(value, st.SigmaCasedString))
    if isinstance(value, st.SigmaRegularExpression):
        flags = "".join(sorted(value.sigma_to_re_flag[f] for f in value.flags))
        regex = value.regexp.to_plain()
        if "s" not in flags:  # Kestrel's MATCHES lets `.` match a newline; Sigma's not
            regex = dot_without_newline(regex)
        return compare(target, "MATCHES", f"(?{flags}){regex}" if flags else regex)
    if isinstance(value, st.SigmaCIDRExpression):
        return compare(target, "ISSUBSET", str(value.network))
    if isinstance(value, st.SigmaBool):
        return compare(target, "=", bool(value.boolean))
    if isinstance(value, st.SigmaCompareExpression):
        if value.op not in _COMPARE:
            raise NotApplicable(f"it compares with {value.op.name}")
        return compare(target, _COMPARE[value.op], value.number.number)
    if isinstance(value, st.SigmaNumber):
        return compare(target, "=", value.number)
    if isinstance(value, st.SigmaNull):
        return compare(target, "IS", None)
    if isinstance(value, st.SigmaExists):
        return compare(target, "IS", None, negated=value.exists)
    if isinstance(value, st.SigmaFieldReference):
        raise NotApplicable("|fieldref compares two fields; a WHERE compares with values")
    raise NotApplicable(f"it compares with a {type(value).__name__}")


def dot_without_newline(regex: str) -> str:
    """`regex` with each `.` that matches any character (not escaped, not in a class)
    written `[^\n]`: the same expression without the DOTALL flag."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            out.append(regex[i:i + 2])
            i += 2
            continue
        if char == "[":  # a class runs to the first `]` that is not its first member
            end = i + 1
            end += regex[end] == "^" if end < len(regex) else 0
            end += regex[end] == "]" if end < len(regex) else 0
            while end < len(regex) and regex[end] != "]":
                end += 2 if regex[end] == "\\" else 1
            out.append(regex[i:end + 1])
            i = end + 1
            continue
        out.append("[^\\n]" if char == "." else char)
        i += 1
    return "".join(out)


def tokens(value: st.SigmaString) -> list:
    """The string as characters and wildcards (MULTI, SINGLE)."""
    out = []
    for part in value.s:
        if isinstance(part, str):
            out.extend(part)
        elif part in (MULTI, SINGLE):
            if not (part is MULTI and out and out[-1] is MULTI):
                out.append(part)
        else:
            raise NotApplicable(f"it uses the placeholder %{part.name}%, which names a "
                                "list this installation does not define")
    return out


def regex(strings: list, cased: bool):
    """One regular expression matching the whole value against any of `strings` (lists
    of characters and wildcards); None when one of them matches anything."""
    bodies = []
    for parts in strings:
        if parts and all(p is MULTI for p in parts):
            return None
        body = "".join(".*" if p is MULTI else "." if p is SINGLE
                       else "\\" + p if p in _REGEX_SPECIAL else p for p in parts)
        body = body[2:] if parts[:1] == [MULTI] else "\\A" + body
        body = body[:-2] if parts[-1:] == [MULTI] else body + "\\Z"
        if body not in bodies:
            bodies.append(body)
    text = bodies[0] if len(bodies) == 1 else "(?:" + "|".join(bodies) + ")"
    return ("(?s)" if cased else "(?is)") + text


def _string_match(target: Attribute, strings: list, cased: bool):
    pattern = regex(strings, cased)
    if pattern is None:
        return compare(target, "IS", None, negated=True)
    return compare(target, "MATCHES", pattern)


def _matches_empty(parts: list) -> bool:
    return all(p is MULTI for p in parts)


def _image(target: ImagePath, value):
    if isinstance(value, st.SigmaNull):
        return all_of([compare(target.binary_name, "IS", None),
                       compare(target.process_name, "IS", None)])
    if isinstance(value, st.SigmaExists):
        present = any_of([compare(target.binary_name, "IS", None, negated=True),
                          compare(target.process_name, "IS", None, negated=True)])
        return present if value.exists else negate(present)
    if not isinstance(value, st.SigmaString):
        raise NotApplicable(f"it compares {type(value).__name__} with an image path, which "
                            "Kestrel joins from two STIX attributes")
    return _images(target, [tokens(value)], isinstance(value, st.SigmaCasedString))


def _images(target: ImagePath, strings: list, cased: bool):
    """`<dir>SEP<name>` matched by any of `strings`: the separator that joins them is a
    literal separator of the string, a `?`, or inside a `*`, always after the string's
    last literal separator (a name holds none).  Names are gathered into one regular
    expression per directory condition."""
    sep = target.separator
    by_directory, alone = {}, []  # directory parts -> [name parts]; names with no dir
    for parts in strings:
        last = max((i for i, p in enumerate(parts) if p == sep), default=-1)
        for i in range(max(last, 0), len(parts)):
            p = parts[i]
            if p == sep and i == last or p is SINGLE and i > last:
                directory, name = parts[:i], parts[i + 1:]
            elif p is MULTI and i > last:
                directory, name = parts[:i] + [MULTI], [MULTI] + parts[i + 1:]
            else:
                continue
            by_directory.setdefault(tuple(directory), []).append(name)
            if _matches_empty(directory):
                alone.append(name)
    anywhere = by_directory.pop((MULTI,), [])  # any directory, so long as there is one
    everywhere = [name for name in anywhere if name in alone]  # with a directory or none
    parts = [_string_match(target.binary_name, everywhere, cased)] if everywhere else []
    rest = [name for name in anywhere if name not in everywhere]
    if rest:
        parts.append(all_of([compare(target.directory, "IS", None, negated=True),
                             _string_match(target.binary_name, rest, cased)]))
    for directory, names in by_directory.items():
        parts.append(all_of([_string_match(target.directory, [list(directory)], cased),
                             _string_match(target.binary_name, names, cased)]))
    rest = [name for name in alone if name not in everywhere]
    if rest:
        parts.append(all_of([compare(target.directory, "IS", None),
                             _string_match(target.binary_name, rest, cased)]))
    if alone:
        parts.append(all_of([compare(target.binary_name, "IS", None),
                             _string_match(target.process_name, alone, cased)]))
    return any_of(parts)


def _hashes(target: HashList, value, absent: set):
    """`Hashes|contains: 'SHA256=...'`: the hash of that algorithm begins with the value
    (Sysmon's list holds each algorithm once, its hash up to the next comma)."""
    if isinstance(value, (st.SigmaNull, st.SigmaExists)):
        raise NotApplicable("it tests whether Hashes exists; STIX keeps hashes one by one")
    parts = tokens(value) if isinstance(value, st.SigmaString) else None
    if not parts or parts[0] is not MULTI or parts[-1] is not MULTI or any(
            p is SINGLE or p is MULTI for p in parts[1:-1]):
        raise NotApplicable("it matches Hashes other than by `|contains: ALGORITHM=hash`")
    algorithm, equals, digest = "".join(parts[1:-1]).partition("=")
    if not equals or not digest or "," in digest:
        raise NotApplicable("it matches Hashes other than by `|contains: ALGORITHM=hash`")
    attribute = target.of(algorithm)
    if attribute is None:
        absent.add(f"Hashes {algorithm.upper()}")
        return NEVER
    return compare(attribute, "MATCHES", regex([list(digest) + [MULTI]], False))
