"""Entity identities from raw STIX, read with plain json: the tests' oracle for the rule
in kestrel/identity.py (README, "Entities and occurrences"), written apart from it.

`identity(record, obj)` is a hashable value equal for two objects exactly when they are
one entity: STIX 2.1's ID contributing properties (a reference by its target's value or
path), a process by x_unique_id or else pid, name and its record's host, any other type
by all its properties but id and references lists (firepit keeps those apart).
"""

import json

VALUE = ("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name", "url", "email-addr")
STIX = {
    "network-traffic": ("start", "end", "src_ref", "dst_ref", "src_port", "dst_port",
                        "protocols", "extensions"),
    "user-account": ("account_type", "user_id", "account_login"),
    "file": ("hashes", "name", "extensions", "parent_directory_ref"),
    "directory": ("path",),
    "software": ("name", "cpe", "swid", "vendor", "version"),
    "autonomous-system": ("number",),
    "artifact": ("hashes", "payload_bin"),
}
HASHES = ("MD5", "SHA-1", "SHA-256", "SHA-512")


def host(record):
    """The host of a record: its x-oca-asset's hostname, else host_id."""
    for obj in record["objects"].values():
        if obj["type"] == "x-oca-asset":
            return obj.get("hostname") or obj.get("host_id")
    return None


def identity(record, obj):
    kind = obj["type"]
    if kind == "process":
        if "x_unique_id" in obj:
            return ("unique", obj["x_unique_id"])
        return ("pid", obj.get("pid"), obj.get("name"), host(record))
    if kind in VALUE:
        return obj.get("value")
    if kind in STIX:
        return tuple(_property(record, obj, name) for name in STIX[kind])
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in obj.items()
                        if k not in ("type", "id") and not k.endswith("_refs")))


def _property(record, obj, name):
    value = obj.get(name)
    if name == "hashes" and value:
        chosen = next((h for h in HASHES if h in value), sorted(value)[0])
        return value[chosen]
    if name.endswith("_ref") and value is not None:
        target = record["objects"][value]
        return target.get("value", target.get("path"))
    return json.dumps(value, sort_keys=True)


def objects(path, entity_type):
    """(record, object) for every object of `entity_type` in the bundle at `path`."""
    bundle = json.loads(open(path).read())
    return [(r, o) for r in bundle["objects"] if r["type"] == "observed-data"
            for o in r["objects"].values() if o["type"] == entity_type]


def entities(pairs) -> set:
    """The distinct entities among (record, object) pairs."""
    return {identity(r, o) for r, o in pairs}
