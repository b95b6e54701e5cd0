"""STIX objects -> the rows firepit's cache() stores, in one pass per object.

firepit flattens each object (raft.flatten: a STIX 2.0 record's objects get STIX 2.1
ids, `_refs` lists become __reflist rows, records point at their objects through
__contains rows ranked as firepit ranks them), then splits the result by type in
Python, one dict at a time.  The same layout is produced here, faster: ids hashed
without uuid objects and remembered, one walk per object, no copies of what is
already flat.  tests/test_bulk_ingest.py holds it to firepit's own cache().
"""

from __future__ import annotations

import hashlib
import os

import ujson
from firepit.stix21 import HASHES_PREF_LIST, ID_NAMESPACE, ID_PROPS, PROCESS_UNIQUE_ID_PROPS

_NAMESPACE = ID_NAMESPACE.bytes
_REFERENCES = ("_ref", "_refs")
_IDS: dict = {}  # (type, property, value) -> id: records repeat addresses and users
_MAX_IDS = 200_000


def flatten(obj: dict):
    """(type, flat dict) of the rows one top-level object of a bundle stores."""
    if "type" not in obj:  # stix-shifter's identities may lack a type (as firepit allows)
        obj["type"] = str(obj.get("id", "")).rpartition("--")[0]
    kind = obj["type"]
    if kind == "identity":
        return [(kind, obj)]
    if kind == "observed-data" and isinstance(obj.get("objects"), dict):
        return _flatten_20(obj)  # embedded objects, whatever spec_version says
    if obj.get("spec_version", "2.0") == "2.1" or "object_refs" in obj:
        return _flatten_21(obj)
    return [(kind, obj)]


def _flatten_21(obj):
    oid = str(obj.get("id"))
    obj["id"] = oid
    rows = []
    if obj["type"] == "observed-data":
        refs = obj.pop("object_refs", [])
        rows = [("__contains", {"source_ref": oid, "target_ref": str(ref)})
                for ref in (refs if isinstance(refs, list) else [refs])]
        rows.append(("observed-data", normalized(obj)))
        return rows
    lists = []
    for prop, value in obj.items():
        if prop.endswith("_ref"):
            obj[prop] = str(value)
        elif prop.endswith("_refs"):
            for ref in value if isinstance(value, list) else [value]:
                if str(ref) != oid:
                    rows.append(("__reflist", {"ref_name": prop, "source_ref": oid,
                                               "target_ref": str(ref)}))
            lists.append(prop)
    for prop in lists:
        del obj[prop]
    rows.append((obj["type"], normalized(obj)))
    return rows


def _flatten_20(record):
    """A STIX 2.0 record's rows, as raft.flatten makes them: its objects with 2.1 ids,
    references resolved within the record (one to a missing object dropped), a
    __contains row per object, ranked 1 for the objects the record is "about"."""
    scos = record.pop("objects")
    ids, rows, contains, lists, refs = {}, [], [], [], []
    prefs, reffed, asset = {}, set(), []
    for key, sco in scos.items():
        flat = normalized(sco)  # may be `sco` itself: its _refs are dropped after the loop
        kind = flat["type"]
        prefs.setdefault(kind, []).append(key)
        sid = make_id(sco, scos, record, asset)
        sco["id"] = flat["id"] = ids[key] = sid
        for prop, value in flat.items():
            if not prop.endswith(_REFERENCES):
                continue
            if prop[-1] == "f":
                refs.append((flat, prop))
                if _holds(scos, value) and value != key:
                    target_type = scos[value]["type"]
                    if target_type == kind:
                        _mark_tree(scos, value, reffed)
                    elif target_type.endswith("-addr"):
                        if "dst_" in prop:
                            reffed.add(value)
                        elif prop.endswith("src_ref"):
                            prefs.setdefault(target_type, []).insert(0, value)
                    elif value in reffed:
                        reffed.add(key)
            else:
                for ref in value if isinstance(value, list) else [value]:
                    if _holds(scos, ref) and ref != key:
                        rows.append(("__reflist", {"ref_name": prop, "source_ref": ids[key],
                                                   "target_ref": ref}))
                        refs.append((rows[-1][1], "target_ref"))
                        if kind == scos[ref]["type"]:
                            reffed.add(ref)
                lists.append((flat, prop))
        contains.append({"source_ref": record["id"], "target_ref": sid})
        rows.append((kind, flat))
    for flat, prop in lists:
        flat.pop(prop, None)
    for flat, prop in refs:
        target = flat[prop]
        if _holds(ids, target):
            flat[prop] = ids[target]
        else:
            del flat[prop]
    # the object a record is about: not referred to by its own kind, first of its
    # type (a connection's source address first); the last key of an id decides
    owner = {sid: key for key, sid in ids.items()}
    ranked = set()
    for kind, flat in rows:
        key = owner.get(flat.get("id")) if kind != "__reflist" else None
        if key and key not in reffed:
            for other in prefs[kind]:
                if other not in reffed:
                    if other == key:
                        ranked.add(flat["id"])
                    break
    for row in contains:
        if row["target_ref"] in ranked:
            row["x_firepit_rank"] = 1
    rows[:0] = [("__contains", row) for row in contains]
    rows.append(("observed-data", normalized(record)))
    return rows


def _holds(mapping, key) -> bool:
    """`key in mapping`, false for values that cannot be keys (a list where a reference
    belongs): hostile data must not stop the ingest."""
    return isinstance(key, str) and key in mapping


def _mark_tree(scos, key, reffed):
    """A referenced object and all it refers to, transitively, are not what the record
    is about (firepit marks the root of a process tree)."""
    stack = [key]
    while stack:
        key = stack.pop()
        if key in reffed:
            continue
        reffed.add(key)
        for prop, value in scos[key].items():
            if prop.endswith("_ref"):
                refs = [value]
            elif prop.endswith("_refs"):
                refs = value if isinstance(value, list) else [value]
            else:
                continue
            stack.extend(ref for ref in refs if _holds(scos, ref) and ref != key)


def normalized(obj: dict, prefix: str = "") -> dict:
    """firepit's json_normalize: nested objects become dotted columns (`hashes.MD5`),
    names with a hyphen quoted (`hashes.'SHA-256'`); a custom (x-) object keeps its
    nested values whole, extensions excepted.  A flat object comes back as itself."""
    kind = obj.get("type", "")
    custom = isinstance(kind, str) and kind.startswith("x-")
    if not prefix:
        for key, value in obj.items():
            if "-" in key or (type(value) is dict and (key == "extensions" or not custom)):
                break
        else:
            return obj
    flat = {}
    for key, value in obj.items():
        name = f"'{key}'" if "-" in key else key
        if prefix:
            name = f"{prefix}.{name}"
        if type(value) is dict and (key == "extensions" or not custom):
            flat.update(normalized(value, name))
        else:
            flat[name] = value
    return flat


def make_id(sco: dict, scos: dict | None = None, record: dict | None = None,
            asset: list | None = None) -> str:
    """firepit's STIX 2.1 id of an object (stix21.makeid): a UUIDv5 of its identifying
    properties, references by their targets' ids; a random one when it has none (a
    process without a unique id: each record's process is then its own entity)."""
    kind = sco["type"]
    props = ID_PROPS.get(kind, ())
    if props == ("value",) and type(sco.get("value")) is str:  # addresses, domains, URLs:
        found = _IDS.get((kind, "value", sco["value"]))  # the same values again and again
        if found is not None:
            return found
    contrib = {}
    for prop in props:
        if prop == "hashes":
            hashes = sco.get("hashes")
            if hashes and isinstance(hashes, dict):
                for name in HASHES_PREF_LIST:
                    if hashes.get(name):
                        contrib["hashes"] = {name.strip("'"): hashes[name]}
                        break
                else:
                    name = sorted(hashes)[0]
                    contrib["hashes"] = {name.strip("'"): hashes[name]}
        elif prop in sco:
            value = sco[prop]
            if prop.endswith("_ref") and scos is not None:
                target = scos.get(value) if isinstance(value, str) else None
                if target:
                    contrib[prop] = make_id(target)
            else:
                contrib[prop] = value
    if kind == "process" and "x_unique_id" not in contrib:
        unique = _process_unique_id(sco)
        if unique:
            contrib["x_unique_id"] = unique
        elif scos is not None:
            pid = sco.get("pid")
            if pid and asset is not None and not asset:
                asset.append(_asset_id(scos))
            if pid and asset and asset[0]:
                contrib["x_unique_id"] = f"{pid}_{asset[0]}_{record['last_observed']}"
    if not contrib:
        return f"{kind}--{_uuid4()}"
    if len(contrib) == 1:  # an address, a user, a domain: ids repeat, names need no JSON
        ((prop, value),) = contrib.items()
        memo = (kind, prop, value) if type(value) is str else None
    else:
        memo = None
    found = _IDS.get(memo) if memo else None
    if found is None:
        found = f"{kind}--{_uuid5(ujson.dumps(contrib, sort_keys=True, ensure_ascii=False))}"
        if memo:
            if len(_IDS) >= _MAX_IDS:
                _IDS.clear()
            _IDS[memo] = found
    return found


def _uuid5(name: str) -> str:
    """uuid.uuid5(firepit's namespace, name) as text, without building UUID objects."""
    return _uuid_text(hashlib.sha1(_NAMESPACE + name.encode()).hexdigest(), "5")


def _uuid4() -> str:
    """uuid.uuid4() as text, without building a UUID object."""
    return _uuid_text(os.urandom(16).hex(), "4")


# RFC 4122's variant: the top two bits of the 9th octet are 10
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid_text(digits: str, version: str) -> str:
    """A UUID's text from 32 hex digits, its version and variant set."""
    return (f"{digits[:8]}-{digits[8:12]}-{version}{digits[13:16]}-{_VARIANT[digits[16]]}"
            f"{digits[17:20]}-{digits[20:32]}")


def _process_unique_id(sco):
    extensions = sco.get("extensions")
    for ext in extensions.values() if isinstance(extensions, dict) else ():
        if isinstance(ext, dict):
            for prop in PROCESS_UNIQUE_ID_PROPS:
                if ext.get(prop):
                    return ext[prop]
    return None


def _asset_id(scos):
    """The host of a record (its first x-oca-asset's host_id or hostname), or None."""
    for sco in scos.values():
        if sco.get("type") == "x-oca-asset":
            for prop in ("host_id", "hostname"):
                if prop in sco:
                    return sco[prop]
    return None
