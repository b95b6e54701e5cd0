"""Sigma rule files and folders -> translated rules, with what could not be read or run.

Rules are parsed by pySigma (the Sigma project's library: YAML, modifiers, conditions)
and translated once per file version: a notebook that runs a folder of rules again pays
only for the files that changed.  The translations are kept between processes too, in
the user's cache folder (as the parser is: syntax/lark_cache.py), keyed by the code that
made them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import SigmaRuleError
from ..sources import local_path
from .fields import ENTITY_TYPES, field_table

LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Rule:
    """One runnable rule: what a hunter reads about it, and its condition (an ECGP)."""

    id: str
    title: str
    level: str
    author: str
    tags: tuple
    path: str
    category: str
    product: str
    condition: object = field(compare=False, repr=False)
    absent: tuple = ()          # fields it names that no STIX record has

    @property
    def entity_type(self) -> Optional[str]:
        return ENTITY_TYPES.get(self.category)

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level) if self.level in LEVELS else 0

    @property
    def attack(self) -> tuple:
        """ATT&CK tags (technique ids in capitals, tactics as written)."""
        return tuple(t[len("attack."):].upper() if t.startswith("attack.t")
                     else t[len("attack."):] for t in self.tags if t.startswith("attack."))


@dataclass(frozen=True)
class Problem:
    """A rule that was not run: its file, its title when known, and why."""

    path: str
    reason: str
    title: str = ""

    def __str__(self):
        """Named by its file's name: outputs travel in shared huntbooks, local paths not."""
        file = Path(self.path).name
        return f"{self.title} ({file}): {self.reason}" if self.title else f"{file}: {self.reason}"


@dataclass
class RuleSet:
    """The rules a SIGMA clause names that run on one entity type."""

    location: str
    rules: list
    problems: list                # bad and not applicable rules, listed once
    skipped: dict                 # entity type -> number of rules about it

    @classmethod
    def combined(cls, sets) -> "RuleSet":
        """The rules of a statement's SIGMA clauses as one set."""
        skipped = {}
        for each in sets:
            for kind, count in each.skipped.items():
                skipped[kind] = skipped.get(kind, 0) + count
        return cls(", ".join(each.location for each in sets),
                   [rule for each in sets for rule in each.rules],
                   [problem for each in sets for problem in each.problems], skipped)


_PARSED: dict = {}  # real path -> ((mtime_ns, size), [Rule | Problem])


def rule_files(text: str) -> tuple:
    """(location, rule files) of a SIGMA path: a file, or every .yml/.yaml in a folder
    and its subfolders, in name order."""
    if not text.strip():
        raise SigmaRuleError("SIGMA needs a rule file or a folder of rules, not ''")
    path = Path(local_path(text))
    if path.is_dir():
        # os.walk follows no links to folders: a link loop cannot make it go round
        files = sorted(Path(folder, name) for folder, _, names in os.walk(path)
                       for name in names if name.endswith((".yml", ".yaml"))
                       and os.path.isfile(os.path.join(folder, name)))
        if not files:
            raise SigmaRuleError(f"{text} holds no Sigma rules (.yml or .yaml files)")
        return str(path), files
    if not path.is_file():
        raise SigmaRuleError(f"no Sigma rule at {text}: no such file or folder")
    return str(path), [path]


def read(path: Path) -> list:
    """The Rules and Problems of one file, translated once per version of the file."""
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
    except OSError as err:
        return [Problem(str(path), f"cannot be read ({err.strerror})")]
    version = (stat.st_mtime_ns, stat.st_size)
    known = _PARSED.get(real)
    if known is None or known[0] != version:
        if len(_PARSED) > 20_000:
            _PARSED.clear()
        known = _PARSED[real] = (version, _parse(Path(real)))
    return known[1]


def _parse(path: Path) -> list:
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [Problem(str(path), f"cannot be read ({err})")]
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except yaml.YAMLError as err:
        return [Problem(str(path), _yaml_message(err))]
    except SigmaError as err:
        return [Problem(str(path), _sigma_message(err))]
    out = []
    for errors in ([collection.errors] if collection.errors else []):
        out.append(Problem(str(path), _sigma_message(errors[0])))
    for item in collection.rules:
        title = getattr(item, "title", "") or ""
        if not isinstance(item, SigmaRule):
            out.append(Problem(str(path), f"a {type(item).__name__} is not a detection rule",
                               title))
        elif item.errors:
            out.append(Problem(str(path), _sigma_message(item.errors[0]), title))
        else:
            out.append(_translated(item, path, title))
    return out or [Problem(str(path), "holds no Sigma rule")]


def _translated(item, path: Path, title: str):
    from sigma.exceptions import SigmaError

    from .translate import NotApplicable, Translation

    logsource = item.logsource
    category, product = logsource.category or "", logsource.product or ""
    if category not in ENTITY_TYPES:
        what = category or logsource.service or "none"
        return Problem(str(path), f"not applicable: its log source ({what}) has no Kestrel "
                                  f"entity type (known: {', '.join(ENTITY_TYPES)})", title)
    translation = Translation(field_table(category, product))
    try:
        condition = translation.condition(item)
    except NotApplicable as err:
        return Problem(str(path), f"not applicable: {err}", title)
    except SigmaError as err:
        return Problem(str(path), _sigma_message(err), title)
    return Rule(
        id=str(item.id or path.stem), title=title, level=str(item.level or ""),
        author=str(item.author or ""), tags=tuple(str(t) for t in item.tags),
        path=str(path), category=category, product=product, condition=condition,
        absent=tuple(sorted(translation.absent)))


def _yaml_message(err) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{where}not valid YAML ({problem})"


def _sigma_message(err) -> str:
    source = getattr(err, "source", None)
    line = getattr(source, "line", None)
    text = str(err)
    if " in " in text and text.rstrip().endswith((".yml", ".yaml")):
        text = text[:text.rindex(" in ")]  # pySigma names the file; the caller does too
    return f"line {line}: {text}" if line else text


def _code_key() -> str:
    """What a kept translation depends on: this package's code, pySigma, Python."""
    from importlib.metadata import version

    folder = Path(__file__).parent
    code = b"".join((folder / name).read_bytes() for name in sorted(os.listdir(folder))
                    if name.endswith(".py"))
    return hashlib.sha256(code + repr((version("pysigma"), sys.version_info[:2])).encode()
                          ).hexdigest()


def _kept(location: str):
    """The file of a location's kept translations, or None without a cache folder."""
    from ..syntax.lark_cache import cache_folder

    folder = cache_folder()
    if folder is None:
        return None
    name = hashlib.sha256((os.path.realpath(location) + _code_key()).encode()).hexdigest()
    try:
        (folder / "sigma").mkdir(mode=0o700, exist_ok=True)
    except OSError:  # a full disk, a file in the way: the rules are translated again
        return None
    return folder / "sigma" / f"{name[:32]}.pickle"


def _recall(path, files):
    """Take the kept translations of `files` that are still current."""
    try:
        with open(path, "rb") as cached:
            kept = pickle.load(cached)
    except Exception:  # missing, stale or damaged: translate again
        return
    for file in files:
        real = os.path.realpath(file)
        if real in kept and real not in _PARSED:
            _PARSED[real] = kept[real]


def _keep(path, files):
    from ..syntax.lark_cache import write_atomic

    kept = {os.path.realpath(f): _PARSED[os.path.realpath(f)] for f in files
            if os.path.realpath(f) in _PARSED}
    write_atomic(path, lambda out: pickle.dump(kept, out, protocol=pickle.HIGHEST_PROTOCOL))


def select(text: str, entity_type: str) -> RuleSet:
    """The rules at `text` that run on `entity_type` entities; SigmaRuleError when a
    single rule cannot run, or a folder has none that can."""
    location, files = rule_files(text)
    kept = _kept(location)
    if kept is not None:
        _recall(kept, files)
    before = {os.path.realpath(f): _PARSED.get(os.path.realpath(f)) for f in files}
    rules, problems, skipped = [], [], {}
    for path in files:
        for item in read(path):
            if isinstance(item, Problem):
                problems.append(item)
            elif item.entity_type != entity_type:
                skipped[item.entity_type] = skipped.get(item.entity_type, 0) + 1
            else:
                rules.append(item)
    if kept is not None and any(_PARSED.get(real) is not known for real, known in before.items()):
        _keep(kept, files)
    if len(files) == 1 and not rules:
        if problems:
            raise SigmaRuleError(f"Sigma rule {problems[0]}")
        kind = next(iter(skipped))
        only = next(r for r in read(files[0]) if isinstance(r, Rule))
        raise SigmaRuleError(
            f"{only.title} ({files[0].name}) is a {only.category} rule: it describes "
            f"{kind} entities, not {entity_type}",
            hint=f"GET {kind} ... WHERE SIGMA '{text}'")
    if not rules:
        kinds = ", ".join(f"{n} about {k}" for k, n in skipped.items())
        raise SigmaRuleError(
            f"no rule in {text} runs on {entity_type}: {len(problems)} cannot run"
            + (f", {kinds}" if kinds else ""),
            hint=f"the first that cannot run: {problems[0]}" if problems else None)
    return RuleSet(location, rules, problems, skipped)
