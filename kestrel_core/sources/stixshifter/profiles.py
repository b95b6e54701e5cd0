"""stix-shifter profiles: connector, connection and config from the configuration
(`stixshifter.profiles.NAME`) or from STIXSHIFTER_NAME_CONNECTOR, _CONNECTION and
_CONFIG (JSON), with settings layered package defaults < `stixshifter` < the profile.
A variable wins over the file for its part; errors name the variable or key at fault.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import pkgutil
import re
from dataclasses import dataclass
from importlib import resources

import yaml

from ...errors import DataSourceError
from ...redaction import redact, remember, secrets_of

ENV_PREFIX = "STIXSHIFTER_"
PARTS = ("connector", "connection", "config")
CONNECTOR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SETTINGS = {  # key -> kind; defaults live in config/defaults.yaml
    "page_size": int, "result_limit": int, "default_lookback": int, "call_timeout": int,
    "query_timeout": int, "poll_interval": float, "retries": int, "retry_backoff": float,
    "retry_on": list, "prefetch_batch": int,
}



@dataclass
class Profile:
    name: str
    connector: str
    connection: dict
    config: dict
    settings: dict
    secrets: frozenset

    def error(self, message, code=None) -> DataSourceError:
        err = DataSourceError(redact(f"stixshifter://{self.name}: {message}", self.secrets))
        err.code = code  # the connector's error code, when it gave one
        return err


def _env_name(name, part):
    return f"{ENV_PREFIX}{name.upper()}_{part.upper()}"


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


class Profiles:
    """Profile lookup with errors that name the variable or key at fault."""

    def __init__(self, section: dict):
        self.section = section

    def raw(self) -> dict:
        """name -> part -> (value, origin); JSON is parsed later, so listing never fails."""
        found = {}
        profiles = self.section.get("profiles") or {}
        if isinstance(profiles, dict):
            for name, entry in profiles.items():
                where = f"configuration key stixshifter.profiles.{name}"
                parts = entry.items() if isinstance(entry, dict) else [("", entry)]
                found[str(name).lower()] = {k: (v, f"{where}.{k}" if k else where)
                                            for k, v in parts}
        for var, text in os.environ.items():
            if not var.startswith(ENV_PREFIX):
                continue
            name, _, part = var[len(ENV_PREFIX):].rpartition("_")
            if name and part.lower() in PARTS:
                found.setdefault(name.lower(), {})[part.lower()] = (text, var)
        return found

    def names(self) -> list:
        return sorted(self.raw())

    def get(self, name: str) -> Profile:
        if not isinstance(self.section.get("profiles") or {}, dict):
            raise DataSourceError("configuration stixshifter.profiles must be a mapping of "
                                  "profile names to {connector, connection, config}")
        key = name.lower()
        entry = self.raw().get(key)
        if entry is None:
            defined = ", ".join(self.names()) or "none"
            raise DataSourceError(
                f'no stix-shifter profile "{name}" (defined: {defined}); set '
                f"{_env_name(key, 'connector')}, {_env_name(key, 'connection')} and "
                f"{_env_name(key, 'config')}, or stixshifter.profiles.{key} in the configuration")
        if "" in entry:
            raise DataSourceError(f"{entry[''][1]} must be a mapping with connector, connection "
                                  f"and config, not {_kind(entry[''][0])}")
        parts = {part: self._part(key, entry, part) for part in PARTS}
        secrets = frozenset(secrets_of(parts["connection"]) | secrets_of(parts["config"]))
        remember(secrets)
        extra = {k: v for k, (v, _) in entry.items() if k not in PARTS}
        unknown = sorted(set(extra) - set(SETTINGS))
        if unknown:
            known = ", ".join(PARTS + tuple(SETTINGS))
            raise DataSourceError(f"unknown keys in stixshifter.profiles.{key}: "
                                  f"{', '.join(unknown)} (known: {known})")
        settings = merged_settings(self.section, extra, f"stixshifter.profiles.{key}")
        profile = Profile(key, parts["connector"], parts["connection"], parts["config"],
                          settings, secrets)
        _check_connector(profile, entry["connector"][1])
        return profile

    def _part(self, key, entry, part):
        if part not in entry:
            raise DataSourceError(
                f'stix-shifter profile "{key}" has no {part}: set {_env_name(key, part)} '
                f"or stixshifter.profiles.{key}.{part}")
        value, origin = entry[part]
        if part == "connector":
            if not isinstance(value, str) or not value.strip():
                raise DataSourceError(f"{origin} must name a connector (e.g. elastic_ecs), "
                                      f"not {_kind(value)}")
            if not CONNECTOR_NAME.fullmatch(value.strip()):  # a module name, not a path
                raise DataSourceError(f"{origin} must name a connector (letters, digits and _, "
                                      f"e.g. elastic_ecs), not {value.strip()!r}")
            return value.strip()
        if isinstance(value, str) and origin.startswith(ENV_PREFIX):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:  # its message never quotes the text
                raise DataSourceError(f"{origin} is not valid JSON ({err.msg} at line "
                                      f"{err.lineno}, column {err.colno})") from None
        if not isinstance(value, dict):
            raise DataSourceError(f"{origin} must be a JSON object, not {_kind(value)}")
        if part == "connection" and not ("host" in value or "url" in value):
            raise DataSourceError(f'{origin} lacks "host" (where the data source listens)')
        if part == "config" and not isinstance(value.get("auth"), dict):
            raise DataSourceError(f'{origin} lacks "auth", the credentials object '
                                  '(e.g. {"auth": {"username": ..., "password": ...}})')
        return copy.deepcopy(value)


def _check_connector(profile, origin):
    if importlib.util.find_spec(f"stix_shifter_modules.{profile.connector}") is None:
        import stix_shifter_modules

        installed = sorted(m.name for m in pkgutil.iter_modules(stix_shifter_modules.__path__))
        raise profile.error(
            f'connector "{profile.connector}" (from {origin}) is not installed (installed: '
            f"{', '.join(installed) or 'none'}); install it with pip install "
            f"stix-shifter-modules-{profile.connector}=={_stix_shifter_version()}")


def _stix_shifter_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stix-shifter")
    except PackageNotFoundError:
        return "<the stix-shifter version>"


@functools.lru_cache(maxsize=1)
def _package_defaults() -> dict:
    text = resources.files("kestrel").joinpath("config/defaults.yaml").read_text()
    return yaml.safe_load(text).get("stixshifter") or {}


def merged_settings(section: dict, overrides: dict, where: str) -> dict:
    """Package defaults < the configuration's stixshifter section < a profile's own keys."""
    settings = {k: copy.deepcopy(v) for k, v in _package_defaults().items() if k != "profiles"}
    layers = [({k: v for k, v in section.items() if k != "profiles"}, "stixshifter"),
              (overrides, where)]
    for layer, origin in layers:
        unknown = sorted(set(layer) - set(SETTINGS))
        if unknown:
            raise DataSourceError(f"unknown configuration keys in {origin}: {', '.join(unknown)} "
                                  f"(known: profiles, {', '.join(SETTINGS)})")
        for key, value in layer.items():
            settings[key] = _setting(key, value, f"{origin}.{key}")
    return settings


def _setting(key, value, origin):
    kind = SETTINGS[key]
    if kind is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise DataSourceError(f"configuration {origin} must be a list of error codes")
    if not isinstance(value, bool):
        try:
            number = kind(value)
            if number >= 0:
                return number
        except (TypeError, ValueError):
            pass
    raise DataSourceError(f"configuration {origin} must be a number >= 0, not {value!r}")

