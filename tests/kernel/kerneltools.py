"""Driving a real Kestrel kernel through jupyter_client: start it, run cells, read outputs."""

import json
import os
import pathlib

from jupyter_client.manager import start_new_kernel


def start_kernel(tmp_dir: pathlib.Path, **env):
    """A Kestrel kernel whose cwd and TMPDIR (where sessions keep their runtime dir) are ours."""
    (tmp_dir / "tmp").mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ, TMPDIR=str(tmp_dir / "tmp"), **env)
    return start_new_kernel(kernel_name="kestrel", startup_timeout=60, cwd=str(tmp_dir),
                            env=environment)


class Cell:
    """What one execute_request brought back: the reply and the iopub messages."""

    def __init__(self, reply, messages):
        self.reply = reply["content"]
        self.messages = messages

    @property
    def status(self):
        return self.reply["status"]

    def of_type(self, msg_type):
        return [m["content"] for m in self.messages if m["msg_type"] == msg_type]

    @property
    def displays(self):
        return self.of_type("display_data")

    @property
    def errors(self):
        return self.of_type("error")

    def text(self):
        return "\n".join(d["data"]["text/plain"] for d in self.displays)


def run_cell(kc, code, timeout=120, **kwargs) -> Cell:
    messages = []
    reply = kc.execute_interactive(code, output_hook=messages.append, timeout=timeout, **kwargs)
    return Cell(reply, messages)


def generate_bundle(path: pathlib.Path, observations: int):
    """A STIX 2.0 bundle of `observations` observed-data, one process each (for slow GETs)."""
    identity = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
    with open(path, "w") as out:
        out.write('{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", '
                  '"spec_version": "2.0", "objects": [')
        out.write(json.dumps({"type": "identity", "id": identity, "name": "generated",
                              "identity_class": "system", "created": "2024-01-01T00:00:00.000Z",
                              "modified": "2024-01-01T00:00:00.000Z"}))
        for i in range(observations):
            ts = f"2024-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"
            out.write(", " + json.dumps({
                "type": "observed-data",
                "id": f"observed-data--{i:08x}-0000-4000-8000-000000000000",
                "created_by_ref": identity, "created": ts, "modified": ts,
                "first_observed": ts, "last_observed": ts, "number_observed": 1,
                "objects": {"0": {"type": "process", "pid": i, "name": f"p{i % 97}.exe"}},
            }))
        out.write("]}")
