"""Deterministic, realistic STIX 2.0 bundles for benchmarks.

Each observed-data holds a process with its parent, its binary (file), its user
and one network connection with two addresses, at a random time within one day; with
`events`, also an x-oca-event pointing at them and the x-oca-asset it ran on (custom
references: CONTAINED relations, and hosts that tell processes apart).
`python -m benchmarks.generate N PATH [--events]` writes a bundle; the same arguments
give the same bytes.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone

BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
NAMES = ["svchost.exe", "cmd.exe", "powershell.exe", "explorer.exe", "chrome.exe",
         "python.exe", "bash", "sshd"]
USERS = ["root", "alice", "bob", "SYSTEM"]
IDENTITY = "identity--0b22ac2b-5b1e-4b5c-9f0c-6c1a2a3b4c5d"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def observation(i: int, rng: random.Random, events: bool = False) -> dict:
    seen = stamp(BASE + timedelta(seconds=rng.uniform(0, 86400)))
    record = {
        "type": "observed-data", "id": f"observed-data--{i:08d}-0000-4000-8000-000000000000",
        "created_by_ref": IDENTITY, "created": seen, "modified": seen,
        "first_observed": seen, "last_observed": seen, "number_observed": 1,
        "objects": {
            "0": {"type": "process", "pid": rng.randint(1000, 60000), "name": rng.choice(NAMES),
                  "command_line": f"run --job {i}", "parent_ref": "1", "binary_ref": "2",
                  "creator_user_ref": "3", "opened_connection_refs": ["4"]},
            "1": {"type": "process", "pid": rng.randint(1, 999), "name": rng.choice(NAMES)},
            "2": {"type": "file", "name": rng.choice(NAMES),
                  "hashes": {"MD5": f"{rng.getrandbits(128):032x}"}},
            "3": {"type": "user-account", "user_id": rng.choice(USERS)},
            "4": {"type": "network-traffic", "src_ref": "5", "dst_ref": "6",
                  "src_port": rng.randint(1024, 65535), "dst_port": rng.choice([22, 80, 443, 8080]),
                  "protocols": ["tcp"]},
            "5": {"type": "ipv4-addr", "value": f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"},
            "6": {"type": "ipv4-addr",
                  "value": f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"},
        },
    }
    if events:
        record["objects"]["7"] = {"type": "x-oca-event", "action": "process_started",
                                  "created": seen, "process_ref": "0",
                                  "parent_process_ref": "1", "file_ref": "2", "user_ref": "3",
                                  "network_ref": "4", "host_ref": "8"}
        record["objects"]["8"] = {"type": "x-oca-asset", "hostname": f"host{rng.randint(0, 49)}",
                                  "ip_refs": ["5"]}
    return record


def write_bundle(count: int, path: str, seed: int = 7, events: bool = False):
    """Stream the bundle to `path` without holding it in memory."""
    rng = random.Random(seed)
    identity = {"type": "identity", "id": IDENTITY, "identity_class": "events",
                "name": "benchmark", "created": stamp(BASE), "modified": stamp(BASE)}
    with open(path, "w") as out:
        out.write('{"type": "bundle", "id": "bundle--benchmark", "spec_version": "2.0", '
                  '"objects": [')
        out.write(json.dumps(identity))
        for i in range(count):
            out.write(",\n")
            out.write(json.dumps(observation(i, rng, events)))
        out.write("]}\n")


if __name__ == "__main__":
    write_bundle(int(sys.argv[1]), sys.argv[2], events="--events" in sys.argv[3:])
