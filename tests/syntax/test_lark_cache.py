"""The parser cache (kestrel.syntax.lark_cache): used only in a folder of the user's own,
and a stale or damaged cache is rebuilt, never a broken parser."""

import os

import pytest

from kestrel.syntax.lark_cache import cache_folder, load_parser

OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=True,
               maybe_placeholders=False)
HUNT = "procs = GET process FROM file:///b.json WHERE name = 'cmd.exe' AND pid IN (1, 2)\n" \
       "DISP procs ATTR name, pid LIMIT 5"


def load(folder):
    return load_parser("kestrel", "grammar/kestrel.lark", folder, **OPTIONS)


@pytest.fixture(scope="module")
def expected():
    """The tree of a parser built here, without any cache."""
    return load(None).parse(HUNT)


def test_a_cached_parser_parses_as_a_built_one(tmp_path, expected):
    load(tmp_path)
    cache = tmp_path / "parser.lark"
    written = cache.read_bytes()
    assert load(tmp_path).parse(HUNT) == expected
    assert cache.read_bytes() == written  # read, not rebuilt
    assert not [p.name for p in tmp_path.iterdir() if p.name != "parser.lark"]


# what a cache may hold besides this parser: (its bytes, its key line) -> bytes
DAMAGED = {
    "empty": lambda good, key: b"",
    "another grammar's": lambda good, key: b"0123abcd\n" + good[len(key):],
    "garbage after the key": lambda good, key: key + b"\x80\x05garbage",
    "cut in half": lambda good, key: good[:len(good) // 2],
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED)
def test_a_stale_or_damaged_cache_is_rebuilt(tmp_path, damage, expected):
    load(tmp_path)
    cache = tmp_path / "parser.lark"
    good = cache.read_bytes()
    key = good.split(b"\n", 1)[0] + b"\n"
    cache.write_bytes(damage(good, key))
    assert load(tmp_path).parse(HUNT) == expected
    assert cache.read_bytes().startswith(key)  # written again
    assert load(tmp_path).parse(HUNT) == expected


def test_a_folder_gone_since_it_was_checked_only_costs_the_cache(tmp_path, expected):
    assert load(tmp_path / "gone").parse(HUNT) == expected
    assert not (tmp_path / "gone").exists()


def test_the_cache_folder_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = cache_folder()
    assert folder == tmp_path / "kestrel"
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_folder_others_may_write_or_a_link_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "kestrel").mkdir()
    os.chmod(tmp_path / "kestrel", 0o777)
    assert cache_folder() is None
    (tmp_path / "kestrel").rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "kestrel").symlink_to(tmp_path / "elsewhere")
    assert cache_folder() is None


def test_a_folder_that_cannot_be_made_means_no_cache(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert cache_folder() is None
