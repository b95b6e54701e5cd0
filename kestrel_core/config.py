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
ENV_OVERRIDES = {"disp_rows": "KESTREL_DISP_ROWS", "geoip_db": "KESTREL_GEOIP_DB",
                 "store_statement_timeout": "KESTREL_STORE_STATEMENT_TIMEOUT"}
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Config:
    timerange_start_offset: int
    timerange_stop_offset: int
    prefetch_find: bool
    disp_rows: int
    http_timeout: int
    store_connect_timeout: int    # PostgreSQL stores: see defaults.yaml
    store_statement_timeout: int
    stixshifter: dict  # stixshifter:// data sources (see defaults.yaml)
    analytics: dict    # python:// analytics registered by configuration
    geoip_db: list     # MaxMind .mmdb files for geoip and ip_map


def user_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or USER_FILE).expanduser()


def load_config() -> Config:
    text = resources.files("kestrel").joinpath("config/defaults.yaml").read_text()
    values = {key: (value, "the defaults") for key, value in yaml.safe_load(text).items()}
    path = user_config_path()
    if path.is_file():
        values.update({k: (v, str(path)) for k, v in _read_user_file(path).items()})
    elif os.environ.get(CONFIG_ENV):
        raise KestrelError(f"{CONFIG_ENV} names {path}, which is not a file")
    elif path.exists():
        raise KestrelError(f"the configuration {path} is not a file")
    for key, var in ENV_OVERRIDES.items():
        if os.environ.get(var):
            values[key] = (os.environ[var], f"the environment variable {var}")
    kinds = {f.name: f.type for f in fields(Config)}
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise KestrelError(f"unknown configuration keys in {path}: {', '.join(unknown)} "
                           f"(known: {', '.join(kinds)})")
    return Config(**{key: _coerce(key, value, origin, kinds[key])
                     for key, (value, origin) in values.items()})


def _read_user_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise KestrelError(f"cannot read the configuration {path}: {err}") from None
    except RecursionError:
        raise KestrelError(f"cannot read the configuration {path}: it nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KestrelError(f"the configuration {path} must be a mapping of keys to values")
    return data


def _coerce(key, value, origin, kind):
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            return BOOLEANS[str(value).strip().lower()]
        if kind == "int" and not isinstance(value, bool):
            return int(value)
        if kind == "dict" and isinstance(value, dict):
            return value
        if kind == "list" and isinstance(value, str):  # from the environment: a:b:c
            return [path for path in value.split(os.pathsep) if path]
        if kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    except (KeyError, TypeError, ValueError):
        pass
    else:
        if kind not in ("bool", "int", "dict", "list"):
            return value
    expected = {"bool": "true or false", "int": "a whole number", "dict": "a mapping",
                "list": "a list of paths"}[kind]
    raise KestrelError(f"configuration {key} in {origin} must be {expected}, not {value!r}")
