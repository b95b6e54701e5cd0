"""An independent reference evaluator of Sigma rules over STIX 2.0 bundles.

Written apart from kestrel_core on purpose (it imports nothing of it): the differential tests
compare what Kestrel's `WHERE SIGMA` finds with what this module finds, rule by rule.

It turns STIX 2.0 observed-data records into "Sigma events" (flat dicts of Sysmon-like field
names, the contract below) and evaluates a pySigma rule's parsed condition tree on each event
with plain Python: `re` for wildcards and regular expressions, `ipaddress` for CIDR.

Events (references resolved inside one record's `objects`):

- process_creation: one event per process object of a record (parents included, as they are
  process objects too).  `Image` = binary_ref.parent_directory_ref.path + SEP +
  binary_ref.name; with no directory SEP + binary_ref.name; with no binary_ref name SEP +
  the process's own `name`; absent if none (SEP is `\\` for product windows, `/` for linux).
  `CommandLine` = command_line, `ProcessId` = pid, `CurrentDirectory` = cwd, `User` =
  creator_user_ref.user_id; `ParentImage`, `ParentCommandLine`, `ParentProcessId` the same
  on parent_ref; `Hashes` = "MD5=..,SHA1=..,SHA256=.." (Sysmon's form, from binary_ref.hashes
  keys MD5, SHA-1, SHA-256, those present), `md5`, `sha1`, `sha256` the single hashes.
- network_connection: one event per network-traffic object.  `DestinationIp`/`SourceIp` =
  dst_ref/src_ref .value, `DestinationPort`/`SourcePort` = dst_port/src_port, `Protocol` =
  protocols (a list: matches when an element does), and `Image`, `CommandLine`, `User`,
  `ParentImage` of a process of the same record.  Which process: the one(s) whose
  opened_connection_refs hold the traffic; when no process of the record holds it, every
  process of the record is a candidate.  The traffic matches when the rule matches it paired
  with SOME candidate (one process at a time, so `Image` and `CommandLine` come from the
  same process); with no process at all the process fields are absent.  (Kestrel's side is
  record-level, "some process in the record"; on the shared bundles every record holding
  network traffic holds exactly one process, the opener, so the two readings agree there.)
- every other field (OriginalFileName, Description, Initiated, DestinationHostname, ...) is
  absent: a comparison on it is false, its negation true.

Sigma semantics: strings are case-insensitive unless cased (`|cased`), `*`/`?` are wildcards
(escaped `\\*`, `\\?`, `\\\\` are literal, as pySigma parses them) and a string matches the
whole value; `|re` is case-sensitive unless flag `i`, searched anywhere, flags `m`, `s`
honoured; `|cidr`; numbers are equal as numbers (a number against a text field compares as
text, a string against a number field compares with the number's text); `|gt`/`gte`/`lt`/
`lte` (and `neq`) compare numbers; `null` is "field absent"; `|exists`; lists are OR (AND
with `|all`; pySigma builds that tree), `|windash` and `|base64offset` expansions are OR.
Keywords (no field), placeholders (`|expand`) and field references (`|fieldref`) raise
`NotSupported`, as does a rule whose logsource this module has no events for.

Result: `matching_keys(rule, records)` is the set of keys of the matching events:
`process_key` for a process ("process", pid, name, created, command_line, binary_ref.name,
binary_ref.parent_directory_ref.path, creator_user_ref.user_id, parent_ref.pid), `traffic_key`
for network traffic ("network-traffic", src value, src_port, dst value, dst_port, protocols).
Keys are not unique on every bundle (test_bundle_nt_2 repeats the same process in many
records); a key is in the result when SOME event with that key matches, the same "exists"
reading a set of Kestrel rows gives.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

SEPARATORS = {"windows": "\\", "linux": "/"}
PROCESS_CREATION, NETWORK_CONNECTION = "process_creation", "network_connection"
STIX_HASHES = (("MD5", "MD5", "md5"), ("SHA-1", "SHA1", "sha1"), ("SHA-256", "SHA256", "sha256"))


class NotSupported(Exception):
    """A rule (or part of one) this reference does not evaluate."""


# ---------------------------------------------------------------------------------------------
# STIX -> Sigma events


@dataclass
class Event:
    """One Sigma event: `key` names the STIX object it was made from; `fields` are what a
    rule reads.  A network-traffic event can have several `alternatives` (the event paired
    with each candidate process): it matches when one of them does."""

    key: tuple
    fields: dict
    alternatives: list = field(default_factory=list)
    record_id: str | None = None

    def candidates(self) -> list:
        return self.alternatives or [self.fields]


def load_records(bundle: str | Path) -> list:
    """The observed-data records of a STIX 2.0 bundle (a file path), in file order."""
    with open(bundle, encoding="utf-8") as f:
        data = json.load(f)
    objects = data.get("objects", []) if isinstance(data, dict) else data
    return [o for o in objects if isinstance(o, dict) and o.get("type") == "observed-data"]


def _ref(objects: dict, obj: dict | None, name: str) -> dict | None:
    if not obj:
        return None
    target = obj.get(name)
    if target is None:
        return None
    found = objects.get(str(target))
    return found if isinstance(found, dict) else None


def _image(objects: dict, process: dict | None, sep: str) -> str | None:
    if not process:
        return None
    binary = _ref(objects, process, "binary_ref")
    if binary and binary.get("name") is not None:
        directory = _ref(objects, binary, "parent_directory_ref")
        if directory and directory.get("path") is not None:
            return f"{directory['path']}{sep}{binary['name']}"
        return f"{sep}{binary['name']}"
    if process.get("name") is not None:
        return f"{sep}{process['name']}"
    return None


def process_key(objects: dict, process: dict) -> tuple:
    """What names a process event, from attributes Kestrel's rows carry too (its own and,
    through references, `binary_ref.name`, `binary_ref.parent_directory_ref.path`,
    `creator_user_ref.user_id`, `parent_ref.pid`)."""
    binary = _ref(objects, process, "binary_ref") or {}
    directory = _ref(objects, binary, "parent_directory_ref") or {}
    return ("process", process.get("pid"), process.get("name"), process.get("created"),
            process.get("command_line"), binary.get("name"), directory.get("path"),
            (_ref(objects, process, "creator_user_ref") or {}).get("user_id"),
            (_ref(objects, process, "parent_ref") or {}).get("pid"))


PROCESS_KEY_COLUMNS = ("pid", "name", "created", "command_line", "binary_ref.name",
                       "binary_ref.parent_directory_ref.path", "creator_user_ref.user_id",
                       "parent_ref.pid")


def process_key_of_row(row: dict) -> tuple:
    """`process_key` of a row of Kestrel's `Session.get_variable` (dereferenced columns)."""
    return ("process",) + tuple(row.get(c) for c in PROCESS_KEY_COLUMNS)


def traffic_key(objects: dict, traffic: dict) -> tuple:
    src, dst = _ref(objects, traffic, "src_ref"), _ref(objects, traffic, "dst_ref")
    protocols = traffic.get("protocols")
    return ("network-traffic", (src or {}).get("value"), traffic.get("src_port"),
            (dst or {}).get("value"), traffic.get("dst_port"),
            tuple(protocols) if isinstance(protocols, list) else protocols)


def traffic_key_of_row(row: dict) -> tuple:
    """`traffic_key` of a network-traffic row of Kestrel's `Session.get_variable` (its
    `protocols` a JSON list in text, as the store keeps lists)."""
    protocols = row.get("protocols")
    if isinstance(protocols, str):
        try:
            protocols = json.loads(protocols)
        except ValueError:
            pass
    return ("network-traffic", row.get("src_ref.value"), row.get("src_port"),
            row.get("dst_ref.value"), row.get("dst_port"),
            tuple(protocols) if isinstance(protocols, list) else protocols)


def _put(fields: dict, name: str, value) -> None:
    if value is not None:
        fields[name] = value


def process_fields(objects: dict, process: dict, sep: str) -> dict:
    """The process_creation fields of one process object of a record."""
    fields: dict = {}
    _put(fields, "Image", _image(objects, process, sep))
    _put(fields, "CommandLine", process.get("command_line"))
    _put(fields, "ProcessId", process.get("pid"))
    _put(fields, "CurrentDirectory", process.get("cwd"))
    _put(fields, "User", (_ref(objects, process, "creator_user_ref") or {}).get("user_id"))
    parent = _ref(objects, process, "parent_ref")
    if parent:
        _put(fields, "ParentImage", _image(objects, parent, sep))
        _put(fields, "ParentCommandLine", parent.get("command_line"))
        _put(fields, "ParentProcessId", parent.get("pid"))
    binary = _ref(objects, process, "binary_ref")
    hashes = (binary or {}).get("hashes")
    if isinstance(hashes, dict):
        parts = []
        for stix_name, sysmon_name, field_name in STIX_HASHES:
            if hashes.get(stix_name) is not None:
                parts.append(f"{sysmon_name}={hashes[stix_name]}")
                fields[field_name] = hashes[stix_name]
        if parts:
            fields["Hashes"] = ",".join(parts)
    return fields


def process_events(records: Iterable[dict], sep: str) -> list:
    events = []
    for record in records:
        objects = record.get("objects") or {}
        for obj in objects.values():
            if isinstance(obj, dict) and obj.get("type") == "process":
                events.append(Event(process_key(objects, obj), process_fields(objects, obj, sep),
                                    record_id=record.get("id")))
    return events


NETWORK_PROCESS_FIELDS = ("Image", "CommandLine", "User", "ParentImage")


def network_events(records: Iterable[dict], sep: str) -> list:
    events = []
    for record in records:
        objects = record.get("objects") or {}
        processes = [o for o in objects.values()
                     if isinstance(o, dict) and o.get("type") == "process"]
        for ref, obj in objects.items():
            if not (isinstance(obj, dict) and obj.get("type") == "network-traffic"):
                continue
            fields: dict = {}
            _put(fields, "SourceIp", (_ref(objects, obj, "src_ref") or {}).get("value"))
            _put(fields, "DestinationIp", (_ref(objects, obj, "dst_ref") or {}).get("value"))
            _put(fields, "SourcePort", obj.get("src_port"))
            _put(fields, "DestinationPort", obj.get("dst_port"))
            _put(fields, "Protocol", obj.get("protocols"))
            openers = [p for p in processes
                       if str(ref) in [str(r) for r in p.get("opened_connection_refs") or []]]
            alternatives = []
            for process in openers or processes:
                own = process_fields(objects, process, sep)
                alternatives.append({**fields, **{k: own[k] for k in NETWORK_PROCESS_FIELDS
                                                  if k in own}})
            events.append(Event(traffic_key(objects, obj), fields, alternatives,
                                record_id=record.get("id")))
    return events


def events_for(rule: SigmaRule, records: list) -> list:
    """The events of `records` for the rule's logsource."""
    product, category = rule.logsource.product, rule.logsource.category
    if product not in SEPARATORS:
        raise NotSupported(f"product {product!r}")
    sep = SEPARATORS[product]
    if category == PROCESS_CREATION:
        return process_events(records, sep)
    if category == NETWORK_CONNECTION:
        return network_events(records, sep)
    raise NotSupported(f"category {category!r}")


# ---------------------------------------------------------------------------------------------
# Sigma values -> predicates over one field's value

Predicate = Callable[[object], bool]


def _wildcard_regex(value: SigmaString) -> re.Pattern:
    pattern = []
    for part in value.s:
        if isinstance(part, str):
            pattern.append(re.escape(part))
        elif part is SpecialChars.WILDCARD_MULTI:
            pattern.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pattern.append(".")
        elif isinstance(part, Placeholder):
            raise NotSupported(f"placeholder %{part.name}%")
        else:  # pragma: no cover
            raise NotSupported(f"string part {part!r}")
    flags = re.DOTALL | (0 if isinstance(value, SigmaCasedString) else re.IGNORECASE)
    return re.compile("".join(pattern), flags)


def _number(value) -> int | float | None:
    """A field value as a number (text holding a number counts), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value.strip())
            except ValueError:
                pass
    return None


def _scalar_predicate(value) -> Predicate:
    """A predicate over one scalar (non-list, non-None) field value."""
    if isinstance(value, SigmaString):  # SigmaCasedString too
        regex = _wildcard_regex(value)

        def string_match(v):
            if isinstance(v, bool):
                v = str(v).lower()
            return regex.fullmatch(str(v)) is not None
        return string_match

    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag, python_flag in ((SigmaRegularExpressionFlag.IGNORECASE, re.IGNORECASE),
                                  (SigmaRegularExpressionFlag.MULTILINE, re.MULTILINE),
                                  (SigmaRegularExpressionFlag.DOTALL, re.DOTALL)):
            if flag in value.flags:
                flags |= python_flag
        if value.regexp.contains_placeholder():
            raise NotSupported("placeholder in a regular expression")
        # the raw pattern: to_plain() would escape `*` and `?` (its regex=True form does not)
        regex = re.compile(value.regexp.to_plain(regex=True), flags)
        return lambda v: regex.search(str(v)) is not None

    if isinstance(value, SigmaCIDRExpression):
        network = ipaddress.ip_network(value.cidr, strict=False)

        def in_network(v):
            try:
                address = ipaddress.ip_address(str(v).strip())
            except ValueError:
                return False
            return address.version == network.version and address in network
        return in_network

    if isinstance(value, SigmaBool):
        wanted = bool(value)

        def bool_match(v):
            if isinstance(v, bool):
                return v == wanted
            return str(v).lower() == str(wanted).lower()
        return bool_match

    if isinstance(value, SigmaNumber):
        wanted = value.number
        text = str(wanted).lower()

        def number_match(v):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return v == wanted
            return str(v).lower() == text
        return number_match

    if isinstance(value, SigmaCompareExpression):
        bound, op = value.number.number, value.op
        compare = {
            CompareOperators.LT: lambda n: n < bound,
            CompareOperators.LTE: lambda n: n <= bound,
            CompareOperators.GT: lambda n: n > bound,
            CompareOperators.GTE: lambda n: n >= bound,
            CompareOperators.NEQ: lambda n: n != bound,
        }[op]

        def compare_match(v):
            n = _number(v)
            return n is not None and compare(n)
        return compare_match

    if isinstance(value, SigmaFieldReference):
        raise NotSupported("field reference (|fieldref)")
    raise NotSupported(f"value type {type(value).__name__}")


def field_predicate(value) -> Callable[[dict, str], bool]:
    """A predicate over (event fields, field name) for one detection value."""
    if isinstance(value, SigmaNull):
        return lambda fields, name: fields.get(name) is None
    if isinstance(value, SigmaExists):
        wanted = bool(value)
        return lambda fields, name: (fields.get(name) is not None) == wanted
    if isinstance(value, SigmaExpansion):
        inner = [field_predicate(v) for v in value.values]
        return lambda fields, name: any(p(fields, name) for p in inner)
    scalar = _scalar_predicate(value)

    def check(fields, name):
        v = fields.get(name)
        if v is None:
            return False
        if isinstance(v, (list, tuple)):
            return any(x is not None and scalar(x) for x in v)
        return scalar(v)
    return check


# ---------------------------------------------------------------------------------------------
# condition trees


def compile_condition(node) -> Callable[[dict], bool]:
    """A predicate over an event's fields for a pySigma (postprocessed) condition tree."""
    if isinstance(node, ConditionAND):
        parts = [compile_condition(a) for a in node.args]
        return lambda fields: all(p(fields) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [compile_condition(a) for a in node.args]
        return lambda fields: any(p(fields) for p in parts)
    if isinstance(node, ConditionNOT):
        (inner,) = [compile_condition(a) for a in node.args]
        return lambda fields: not inner(fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        name, predicate = node.field, field_predicate(node.value)
        return lambda fields: predicate(fields, name)
    if isinstance(node, ConditionValueExpression):
        raise NotSupported("keyword detection (value without field)")
    raise NotSupported(f"condition node {type(node).__name__}")


def load_rule(path: str | Path) -> SigmaRule:
    return SigmaRule.from_yaml(Path(path).read_text(encoding="utf-8"))


def compile_rule(rule: SigmaRule) -> Callable[[dict], bool]:
    """The rule as one predicate over event fields (its conditions OR-ed)."""
    conditions = [compile_condition(c.parsed) for c in rule.detection.parsed_condition]
    if not conditions:
        raise NotSupported("rule without condition")
    return lambda fields: any(c(fields) for c in conditions)


def matching_events(rule: SigmaRule, records: list, events: list | None = None) -> list:
    """The events of `records` (or the given `events`, made for this rule's logsource) the
    rule matches.  Raises NotSupported for what this reference does not evaluate."""
    predicate = compile_rule(rule)
    if events is None:
        events = events_for(rule, records)
    return [e for e in events if any(predicate(f) for f in e.candidates())]


def matching_keys(rule: SigmaRule, records: list, events: list | None = None) -> set:
    return {e.key for e in matching_events(rule, records, events)}
