"""python:// analytics: the registry and the checked call.

Registered names only: entry points of the group `kestrel.analytics` and the
configuration's `analytics: {name: "module:function"}` (configuration wins).
A URI never names a module, so `APPLY python://os:system ...` finds nothing.

Parameters are the function's keyword parameters (after the frames, except
`context`).  Their annotations say what WITH may give:

    bool -> true/false      int -> a whole number       float -> a number
    str -> a string or a bare word     Literal["a", "b"] -> one of the words
    list[T] / tuple[T, ...] -> [v, ...] (a single value becomes a list of one)
    Optional[T] -> also null            no annotation -> the default's type, else anything

A parameter without a default is required; an unknown one is an error, unless
the function takes **kwargs (then it checks them itself).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import logging
import re
import types
import typing

from ..errors import AnalyticsError, KestrelError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kestrel.analytics"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class PythonAnalytics:
    def __init__(self, configured: dict):
        for name, target in configured.items():
            if not (isinstance(name, str) and NAME.match(name)):
                raise KestrelError(f"configuration analytics: {name!r} is not an analytics "
                                   "name (letters, digits, _ . -)")
            if not (isinstance(target, str) and TARGET.match(target)):
                raise KestrelError(f'configuration analytics.{name} must be "module:function",'
                                   f" not {target!r}")
        self.configured = dict(configured)
        self._loaded = {}

    @functools.cached_property
    def targets(self) -> dict:
        """name -> entry point or "module:function", read when first asked for (by APPLY
        or completion), not by every Session(): that reads every installed package."""
        from importlib.metadata import entry_points

        return {**{ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)},
                **self.configured}

    def names(self) -> list:
        return sorted(self.targets)

    def function(self, name: str):
        if name not in self.targets:
            known = ", ".join(self.names()) or "none installed"
            close = difflib.get_close_matches(name, self.names(), n=1)
            raise AnalyticsError(f'no analytics "{name}" is registered (registered: {known})',
                                 hint=f"did you mean python://{close[0]}?" if close else None)
        if name not in self._loaded:
            target = self.targets[name]
            try:
                self._loaded[name] = _load(target)
            except Exception as err:
                where = target if isinstance(target, str) else target.value
                raise AnalyticsError(f"cannot load analytics {name} ({where}): "
                                     f"{type(err).__name__}: {err}") from None
        return self._loaded[name]

    def run(self, name: str, frames, params: dict, context=None):
        uri = f"python://{name}"
        function = self.function(name)
        kwargs = check_parameters(uri, function, params)
        if "context" in _signature(function).parameters:
            kwargs["context"] = context
        try:
            return function(frames, **kwargs)
        except AnalyticsError as err:
            message = err.message if err.message.startswith(uri) else f"{uri}: {err.message}"
            raise AnalyticsError(message, hint=err.hint) from None
        except KestrelError:
            raise
        except Exception as err:
            log.exception("analytics %s failed", uri)
            raise AnalyticsError(f"{uri} failed: {type(err).__name__}: {err}") from None


def _load(target):
    if not isinstance(target, str):  # an entry point
        return target.load()
    module_name, _, attribute = target.partition(":")
    found = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{target} is not callable")
    return found


def _signature(function):
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return inspect.Signature()


# ------------------------------------------------------------ parameters


def parameters(function) -> dict:
    """name -> (annotation or None, default or inspect.Parameter.empty) of what WITH sets."""
    params = list(_signature(function).parameters.values())
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    found = {}
    for param in params[1:]:  # the first receives the frames
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name == "context":
            continue
        found[param.name] = (hints.get(param.name), param.default)
    return found


def check_parameters(uri: str, function, given: dict) -> dict:
    """WITH's arguments checked and converted for `function`, or an AnalyticsError."""
    declared = parameters(function)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in _signature(function).parameters.values())
    values = {}
    for name, value in given.items():
        if name not in declared:
            if takes_any and name != "context":
                values[name] = _plain_argument(value)
                continue
            known = ", ".join(sorted(declared)) or "none"
            raise AnalyticsError(f'{uri} has no parameter "{name}" (parameters: {known})')
        annotation, default = declared[name]
        if annotation is None and default is not inspect.Parameter.empty and default is not None:
            annotation = type(default)
        try:
            values[name] = convert(value, annotation)
        except ValueError:
            raise AnalyticsError(f'parameter "{name}" of {uri} must be {describe(annotation)}, '
                                 f"not {_shown(value)}") from None
    missing = [n for n, (_, default) in declared.items()
               if default is inspect.Parameter.empty and n not in values]
    if missing:
        raise AnalyticsError(f"{uri} needs the parameter{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)} (WITH {missing[0]}=...)")
    return values


def convert(value, annotation):
    """`value` (from WITH: str, int, float, bool, None or a tuple of them) as `annotation`;
    ValueError when it is not one."""
    if annotation is None or annotation is typing.Any:
        return _plain_argument(value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return convert(value, option)
            except ValueError:
                continue
        raise ValueError(value)
    if origin is typing.Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise ValueError(value)
    if origin in (list, tuple) or annotation in (list, tuple):
        item = args[0] if args else None
        items = value if isinstance(value, tuple) else (value,)
        if value is None:
            raise ValueError(value)
        converted = [convert(v, item) for v in items]
        return tuple(converted) if (origin or annotation) is tuple else converted
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise ValueError(value)


def describe(annotation) -> str:
    if annotation is None or annotation is typing.Any:
        return "a value"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [describe(a) for a in args if a is not type(None)]
        text = " or ".join(options)
        return text + " or null" if type(None) in args else text
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, tuple) or annotation in (list, tuple):
        return f"a list of {_plural(describe(args[0]) if args else 'a value')}"
    named = getattr(annotation, "__name__", annotation)
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "a string or a word"}.get(annotation, f"a {named}")


def _plural(text: str) -> str:
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article):]
    return {"string or a word": "strings or words", "whole number": "whole numbers",
            "number": "numbers", "value": "values"}.get(text, text)


def _plain_argument(value):
    return list(value) if isinstance(value, tuple) else value


def _shown(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
