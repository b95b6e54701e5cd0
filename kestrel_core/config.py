"""Typed configuration: package defaults < user file < environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import yaml

from .errors import KestrelError

CONFIG_ENV = "KESTREL_CONFIG"
USER_FILE = Path("~/.config/kestrel/kestrel.yaml")
ENV_OVERRIDES = {"disp_rows": "KESTREL_DISP_ROWS"}


@dataclass(frozen=True)
class Config:
    timerange_start_offset: int
    timerange_stop_offset: int
    prefetch_find: bool
    disp_rows: int
    http_timeout: int


def user_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or USER_FILE).expanduser()


def load_config() -> Config:
    text = resources.files("kestrel").joinpath("config/defaults.yaml").read_text()
    values = yaml.safe_load(text)
    path = user_config_path()
    if path.is_file():
        try:
            values.update(yaml.safe_load(path.read_text()) or {})
        except yaml.YAMLError as err:
            raise KestrelError(f"cannot read the configuration {path}: {err}") from None
    for key, var in ENV_OVERRIDES.items():
        if os.environ.get(var):
            values[key] = os.environ[var]
    known = {f.name: f.type for f in fields(Config)}
    unknown = set(values) - set(known)
    if unknown:
        raise KestrelError(f"unknown configuration keys in {path}: {', '.join(sorted(unknown))}")
    try:
        return Config(**{k: _coerce(v, known[k]) for k, v in values.items()})
    except (TypeError, ValueError) as err:
        raise KestrelError(f"invalid configuration in {path}: {err}") from None


def _coerce(value, type_name):
    if type_name == "bool":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if type_name == "int":
        return int(value)
    return value
