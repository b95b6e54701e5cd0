"""Tables as text (text/plain of DISP, the CLI): aligned columns, long values wrapped within
their column and never cut, a blank line between rows once a value wraps, a footer."""

import pandas as pd

from kestrel.results import TEXT_CELL_WIDTH, Table, text_table

LONG = ('C:\\Windows\\system32\\cmd.exe /c "powershell -nop -w hidden -enc '
        'SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"')


def columns_of(line, starts):
    """The cells of a text line, cut at the header's column starts."""
    return [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]


def test_short_values_one_line_per_row():
    frame = pd.DataFrame({"name": ["cmd.exe", "svchost.exe", None],
                          "pid": [4.0, 10468.0, float("nan")], "ok": [True, False, True]})
    lines = text_table(frame).splitlines()
    assert lines == ["name" + " " * 11 + "pid  ok",
                     "cmd.exe" + " " * 10 + "4  True",
                     "svchost.exe  10468  False",
                     " " * 20 + "True"]


def test_long_values_wrap_within_their_column():
    frame = pd.DataFrame({"pid": [7216, 4], "command_line": [LONG, "short"],
                          "name": ["cmd.exe", "System"]})
    lines = text_table(frame).splitlines()
    header = lines[0]
    starts = [header.index(name) for name in ("pid", "command_line", "name")]
    starts[0] = 0
    assert max(len(line) for line in lines) <= 5 + 2 + TEXT_CELL_WIDTH + 2 + len("cmd.exe")
    assert lines[1] == "" and "" in lines[2:]  # rows apart once a value wraps
    first, second = lines[2:lines.index("", 2)], lines[lines.index("", 2) + 1:]
    cells = [columns_of(line, starts) for line in first]
    assert cells[0][0] == "7216" and cells[0][2] == "cmd.exe"
    assert all(c[0] == "" and c[2] == "" for c in cells[1:])
    pieces = [c[1] for c in cells]
    assert all(len(p) <= TEXT_CELL_WIDTH for p in pieces)
    assert "".join(pieces).replace(" ", "") == LONG.replace(" ", "")  # nothing cut
    assert [columns_of(line, starts) for line in second] == [["4", "short", "System"]]


def test_newlines_in_values_do_not_break_rows():
    frame = pd.DataFrame({"payload": ["GET /\r\nHost: x\tok"], "n": [1]})
    assert text_table(frame).splitlines() == ["payload" + " " * 12 + "n",
                                              "GET /  Host: x ok  1"]


def test_table_text_has_title_and_footer():
    frame = pd.DataFrame({"value": ["10.0.0.1"]})
    assert Table(frame, total=1, title="ips").to_text() == "ips\nvalue\n10.0.0.1\n1 row"
    assert Table(frame.iloc[:0], total=0).to_text() == "(no rows)\n0 rows"
    assert Table(frame, total=3).to_text().endswith(
        "showing rows 1-1 of 3 (use LIMIT n OFFSET m to see more)")
