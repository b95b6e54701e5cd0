"""APPLY: registration (entry points and configuration), checked parameters, write-back
seen by later statements on SQLite and PostgreSQL, and failures that change nothing."""

import pytest

from kestrel.analytics import python as registry
from kestrel.errors import AnalyticsError, KestrelError
from kestrel.results import Figure, Text
from kestrel.session import Session

BUILT_IN = ["geoip", "huntflow_graph", "ip_class", "ip_map", "log4shell", "process_tree",
            "suspicious_cmdline", "timeline"]
NAMES = ["cmd.exe", "svchost.exe", "a.exe"]


def make_procs(session):
    objects = ", ".join(f'{{"type": "process", "name": "{n}", "pid": {i}}}'
                        for i, n in enumerate(NAMES, 1))
    session.execute(f"procs = NEW [{objects}]")
    session.execute("more = NEW [{\"type\": \"process\", \"name\": \"b\", \"pid\": 9}]")


# ------------------------------------------------------------ registration


def test_registered_names(session):
    names = session.analytics_names()
    assert set(BUILT_IN) <= set(names)  # entry points of this package
    assert {"name_length", "explode"} <= set(names)  # configuration


def test_only_registered_analytics_run(session):
    make_procs(session)
    for uri in ("python://sample_analytics:name_length", "python://os.system",
                "python://kestrel.analytics.enrich:ip_class"):
        with pytest.raises(AnalyticsError) as err:
            session.execute(f"APPLY {uri} ON procs")
        assert err.value.message == (
            f'no analytics "{uri[9:]}" is registered (registered: dict_value, explode, '
            "free_form, geoip, half_bad, huntflow_graph, ip_class, ip_map, lazy, log4shell, "
            "name_length, no_id, not_a_result, other_variable, parameters, plotly_figure, "
            "process_tree, sigma, stranger, suspicious_cmdline, timeline)")


@pytest.mark.parametrize("target, message", [
    ("no_colon", 'configuration analytics.bad must be "module:function", not \'no_colon\''),
    ("a b:c", 'configuration analytics.bad must be "module:function", not \'a b:c\''),
])
def test_bad_configuration_stops_the_session(tmp_path, monkeypatch, target, message):
    path = tmp_path / "kestrel.yaml"
    path.write_text(f'analytics:\n  bad: "{target}"\n')
    monkeypatch.setenv("KESTREL_CONFIG", str(path))
    with pytest.raises(KestrelError) as err:
        Session(runtime_dir=str(tmp_path / "rt"))
    assert err.value.message == message


def test_unloadable_analytics_is_an_analytics_error(tmp_path, monkeypatch):
    path = tmp_path / "kestrel.yaml"
    path.write_text('analytics:\n  ghost: "no_such_module_here:run"\n'
                    '  process_tree: "sample_analytics:lazy"\n')
    monkeypatch.setenv("KESTREL_CONFIG", str(path))
    with Session(runtime_dir=str(tmp_path / "rt")) as session:
        make_procs(session)
        with pytest.raises(AnalyticsError) as err:
            session.execute("APPLY python://ghost ON procs")
        assert err.value.message == ("cannot load analytics ghost (no_such_module_here:run): "
                                     "ModuleNotFoundError: No module named 'no_such_module_here'")
        # the configuration wins over an entry point of the same name
        assert session.execute("APPLY python://process_tree ON procs") == []


# ------------------------------------------------------------ parameters


def test_parameters_are_converted(session):
    make_procs(session)
    (shown,) = session.execute("APPLY python://parameters ON procs, more WITH threshold=3, "
                               "mode=slow, ratio=2, words=abc, flag=true, label=null, "
                               "anything=[1, 'x']")
    assert shown.lines == ["threshold=3", "mode='slow'", "ratio=2.0", "words=['abc']",
                           "flag=True", "label=None", "anything=[1, 'x']",
                           "variables=['procs', 'more']",
                           "types={'procs': 'process', 'more': 'process'}"]
    (shown,) = session.execute("APPLY python://parameters ON procs WITH threshold=1, "
                               "words=['a', \"b\"], label='x y'")
    assert "words=['a', 'b']" in shown.lines and "label='x y'" in shown.lines
    (shown,) = session.execute("APPLY python://free_form ON procs WITH b=[1, 2], a=x")
    assert shown.lines == ["a='x'", "b=[1, 2]"]


def test_a_misspelt_analytics_suggests_the_registered_one(session):
    make_procs(session)
    with pytest.raises(AnalyticsError) as caught:
        session.execute("APPLY python://ip_clas ON procs")
    assert caught.value.message.startswith('no analytics "ip_clas" is registered')
    assert caught.value.hint == "did you mean python://ip_class?"


def test_list_arguments_as_in_kestrel_v1(session):
    """Lists in () or [], nested lists flattened, `var.attr` of a variable as its distinct
    values (a word such as example.com stays text), as Kestrel v1 passes them."""
    make_procs(session)
    (shown,) = session.execute("APPLY python://free_form ON procs WITH a=(x, y, 'z'), "
                               "b=[procs.name, (1, [2])], c=example.com, d=more.pid")
    a, b, c, d = shown.lines
    assert (a, c, d) == ("a=['x', 'y', 'z']", "c='example.com'", "d=[9]")
    names = eval(b.removeprefix("b="))  # the names in the store's order, then 1, 2
    assert sorted(names[:3]) == sorted(NAMES) and names[3:] == [1, 2]
    (shown,) = session.execute("APPLY python://parameters ON procs WITH threshold=1, "
                               "words=(procs.name, extra)")
    (words,) = [line for line in shown.lines if line.startswith("words=")]
    assert sorted(eval(words.removeprefix("words="))) == sorted(NAMES + ["extra"])


@pytest.mark.parametrize("arguments, message", [
    ("threshold=1, speed=3",
     'python://parameters has no parameter "speed" (parameters: anything, flag, label, mode, '
     "ratio, threshold, words)"),
    ("threshold=1, context=3",
     'python://parameters has no parameter "context" (parameters: anything, flag, label, mode, '
     "ratio, threshold, words)"),
    ("threshold='3'", 'parameter "threshold" of python://parameters must be a whole number, '
                      "not '3'"),
    ("threshold=1.5", 'parameter "threshold" of python://parameters must be a whole number, '
                      "not 1.5"),
    ("threshold=true", 'parameter "threshold" of python://parameters must be a whole number, '
                       "not true"),
    ("threshold=1, mode=medium", 'parameter "mode" of python://parameters must be one of fast, '
                                 "slow, not 'medium'"),
    ("threshold=1, flag=yes", 'parameter "flag" of python://parameters must be true or false, '
                              "not 'yes'"),
    ("threshold=1, ratio=high", 'parameter "ratio" of python://parameters must be a number, '
                                "not 'high'"),
    ("threshold=1, words=[1, 2]", 'parameter "words" of python://parameters must be a list of '
                                  "strings or words, not [1, 2]"),
    ("threshold=1, label=3", 'parameter "label" of python://parameters must be a string or a '
                             "word or null, not 3"),
    ("mode=fast", "python://parameters needs the parameter threshold (WITH threshold=...)"),
])
def test_bad_parameters(session, arguments, message):
    make_procs(session)
    with pytest.raises(AnalyticsError) as err:
        session.execute(f"APPLY python://parameters ON procs WITH {arguments}")
    assert err.value.message == message
    assert err.value.line == 1 and err.value.column == 1


def test_built_in_parameters_are_checked(session):
    make_procs(session)
    with pytest.raises(AnalyticsError) as err:
        session.execute("APPLY python://process_tree ON procs WITH merge=1")
    assert err.value.message == ('parameter "merge" of python://process_tree must be true or '
                                 "false, not 1")
    with pytest.raises(AnalyticsError) as err:
        session.execute("APPLY python://huntflow_graph ON procs WITH scope=everything")
    assert err.value.message == ('parameter "scope" of python://huntflow_graph must be one of '
                                 "lineage, all, not 'everything'")


def test_convert_and_describe():
    from typing import Optional
    assert registry.convert((1, 2), list[int]) == [1, 2]
    assert registry.convert(3, tuple[int, ...]) == (3,)
    assert registry.convert(None, Optional[int]) is None
    with pytest.raises(ValueError):
        registry.convert(None, list[int])
    assert registry.describe(Optional[list[float]]) == "a list of numbers or null"


# ------------------------------------------------------------ write-back


def test_write_back_is_seen_later(store_session):
    session, reopen = store_session
    make_procs(session)
    before = session.variable_dataframe("procs")
    (done,) = session.execute("APPLY python://name_length ON procs WITH scale=2")
    assert isinstance(done, Text)
    assert done.lines == ["procs: x_name_length written to 3 entities"]

    (table,) = session.execute("DISP procs ATTR name, x_name_length SORT BY pid")
    assert table.dataframe.values.tolist() == [[n, 2 * len(n)] for n in NAMES]
    long = session.execute("long = GET process FROM procs WHERE x_name_length > 10")[-1]
    assert long.entities == sum(2 * len(n) > 10 for n in NAMES)
    after = session.variable_dataframe("procs")
    assert after.drop(columns=["x_name_length"]).sort_values("id").reset_index(drop=True) \
        .equals(before.sort_values("id").reset_index(drop=True))

    # built-in enrichment, and what was written stays in the store
    session.execute('ips = NEW ipv4-addr ["10.1.2.3", "8.8.8.8", "127.0.0.1"]')
    session.execute("APPLY python://ip_class ON ips")
    private = session.execute("private = GET ipv4-addr FROM ips WHERE x_ip_class = 'private'")
    assert private[-1].entities == 1
    session.close()
    with reopen() as again:
        (table,) = again.execute("DISP ips ATTR value, x_ip_class SORT BY value")
        assert table.dataframe.values.tolist() == [
            ["10.1.2.3", "private"], ["127.0.0.1", "loopback"], ["8.8.8.8", "public"]]
        (table,) = again.execute("DISP procs ATTR name, x_name_length SORT BY pid")
        assert table.dataframe.values.tolist() == [[n, 2 * len(n)] for n in NAMES]


def test_rewriting_an_attribute_changes_only_what_differs(session):
    make_procs(session)
    session.execute("APPLY python://name_length ON procs")
    assert session.execute("APPLY python://name_length ON procs") == []  # nothing changed
    (done,) = session.execute("APPLY python://name_length ON procs WITH scale=3")
    assert done.lines == ["procs: x_name_length written to 3 entities"]


FAILURES = [
    ("APPLY python://nosuch ON procs", 'no analytics "nosuch" is registered (registered: '),
    ("APPLY python://explode ON procs", "python://explode failed: ValueError: boom"),
    ("APPLY python://half_bad ON procs, more",
     "python://half_bad cannot write parent_ref.x_new to more: attributes reached through "
     "references are read-only"),
    ("APPLY python://stranger ON procs",
     "python://stranger returned 1 ids that are not entities of procs (e.g. process--nope)"),
    ("APPLY python://no_id ON procs",
     "python://no_id returned a frame for procs without its id column (needed to write "
     "attributes back)"),
    ("APPLY python://dict_value ON procs",
     "python://dict_value returned a dict for procs.x_a; attributes hold strings, numbers or "
     "booleans"),
    ("APPLY python://other_variable ON procs",
     "python://other_variable returned data for elsewhere, which is not an ON variable (procs)"),
    ("APPLY python://not_a_result ON procs",
     "python://not_a_result returned int, not AnalyticsResult"),
    ("APPLY python://timeline ON names",
     "python://timeline: names: GROUP rows, not entities (apply it to the variable that was "
     "grouped)"),
    ("APPLY python://suspicious_cmdline ON procs, names",
     "python://suspicious_cmdline: names: GROUP rows, not entities"),
    ("APPLY python://process_tree ON ips",
     "python://process_tree: needs process variables (ips is ipv4-addr)"),
    ("APPLY python://ip_class ON procs",
     "python://ip_class: procs is process: ip_class needs ipv4-addr, ipv6-addr or "
     "network-traffic variables"),
    ("APPLY python://suspicious_cmdline ON procs WITH patterns=['(']",
     "python://suspicious_cmdline: pattern '(' is not a regular expression: missing ): ("),
]


@pytest.mark.parametrize("code, message", FAILURES,
                         ids=lambda v: v.split("//")[1].split(" ")[0] if "//" in v else None)
def test_failures_change_nothing(session, code, message):
    make_procs(session)
    session.execute('ips = NEW ipv4-addr ["10.1.2.3"]')
    session.execute("names = GROUP procs BY name")
    before = {n: session.get_variable(n, deref=False) for n in ("procs", "more", "ips", "names")}
    columns = session._store.type_columns("process")
    with pytest.raises(AnalyticsError) as err:
        session.execute(code)
    assert err.value.message.startswith(message)
    assert err.value.line == 1 and str(err.value).startswith("AnalyticsError: line 1, column 1: ")
    assert {n: session.get_variable(n, deref=False) for n in before} == before
    assert session._store.type_columns("process") == columns


def test_displays_of_other_kinds(session):
    make_procs(session)
    (figure,) = session.execute("APPLY python://plotly_figure ON procs")
    assert isinstance(figure, Figure) and figure.title == "two points"
    assert figure.figure["data"][0]["x"] == [1, 2]
    assert figure.to_dict()["kind"] == "figure"
    assert "plotly" in figure.to_html()
    assert session.execute("APPLY python://lazy ON procs") == []


def test_frames_are_read_only_when_asked(session, monkeypatch):
    make_procs(session)
    reads = []
    original = session._store.rows
    monkeypatch.setattr(session._store, "rows",
                        lambda *a, **k: reads.append(a) or original(*a, **k))
    session.execute("APPLY python://lazy ON procs")
    session.execute("APPLY python://huntflow_graph ON procs")
    assert reads == []
