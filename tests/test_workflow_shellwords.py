"""``shellwords.split`` gives exactly what ``shlex.split`` gives (words, or the same ValueError), in linear time."""

from __future__ import annotations

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from pandajedi_wf.workflow import shellwords
from pandajedi_wf.workflow.naming import output_types_from_args
from cpu_bound import cpu_at_most

# every character shlex treats specially in POSIX mode, the blanks it does not (\x0b, \x0c, NBSP), and ordinary ones
SPECIAL = " \t\r\n'\"\\#;|&$*%{}=:,é\x0b\x0c\xa0\x00ab"


def both(text):
    try:
        expected = shlex.split(text)
    except ValueError as exc:
        expected = ("error", str(exc))
    try:
        found = shellwords.split(text)
    except ValueError as exc:
        found = ("error", str(exc))
    return expected, found


@settings(max_examples=3000, deadline=None, database=None)
@given(st.text(alphabet=SPECIAL, max_size=40))
def test_same_words_as_shlex_on_shell_characters(text):
    expected, found = both(text)
    assert found == expected


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(max_size=60))
def test_same_words_as_shlex_on_any_text(text):
    expected, found = both(text)
    assert found == expected


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(["--outputs", "a.root,b.txt", "'x y'", '"q\\"z"', "\\ ", "--outputs=c:d.root", "''", '"a\\b"', "  ", "\n"]), max_size=12))
def test_same_words_as_shlex_on_argument_like_text(parts):
    text = " ".join(parts)
    expected, found = both(text)
    assert found == expected


def test_known_cases():
    assert shellwords.split("") == [] and shellwords.split(" \t\n") == []
    assert shellwords.split("a  'b c'\"d\"\\ e ''") == ["a", "b cd e", ""]
    assert shellwords.split('"a\\$b\\"c\\\\"') == ['a\\$b"c\\']
    for text, message in (("'open", "No closing quotation"), ('"open\\', "No escaped character"), ("end\\", "No escaped character")):
        try:
            shellwords.split(text)
        except ValueError as exc:
            assert str(exc) == message
        else:
            raise AssertionError(text)


def test_linear_time_on_long_words():
    for size in (400_000, 900_000):
        for text in ("a" * size, "'" + "a" * size + "'", '"' + "a\\\\" * (size // 3) + '"', "a\\ " * (size // 3), "x " * (size // 2)):
            with cpu_at_most(1.0, (size, text[:10])):
                shellwords.split(text)
    with cpu_at_most(1.0, "output types of a 900,000-character word"):
        assert output_types_from_args("--outputs a.root " + "z" * 900_000, "prun") == ["a.root"]
