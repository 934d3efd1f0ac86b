"""The statement texts our taskbuffer modules give WfDatabase, caught while code runs against the test database.

``capture()`` wraps WfDatabase's statement methods (execute, executemany, claim_rows, insert_rows, update_rows) for
the time of a ``with`` block and records, per statement text:

- the text as the calling module wrote it (PanDA's Oracle dialect, ``:name`` binds);
- the text each backend is sent: ``oracle_text`` (what Oracle would run: the text itself, or for claim_rows,
  insert_rows and update_rows what they build for Oracle) and ``postgres_text`` (what goes through upstream's
  converter on PostgreSQL; None for insert_rows, which COPYs there);
- a few rows of the binds it ran with (rows with other bind names first), and the calls' sites in the source.

Statements WfDatabase makes by itself for PostgreSQL inside update_rows (its staging table) are recorded as
``internal``: they go through the converter too, but never to Oracle.

Used in-process by tests/test_taskbuffer_sql_contract.py; as a pytest plugin (``-p sql_capture`` with
``PANDAJEDI_WF_SQL_CAPTURE=<file>``) it pickles what a whole test run sent into that file.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pandajedi_wf"
TASKBUFFER = PACKAGE / "taskbuffer"
CONNECTION = TASKBUFFER / "connection.py"
EXAMPLES_KEPT = 4  # rows of binds kept per text
# WfDatabase methods a statement passes through before it is sent: a call site is the first frame outside them
_PASS_THROUGH = {"execute", "query", "query_dicts", "executemany", "claim_rows", "insert_rows", "update_rows", "_statement",
                 "_staging_table"}
_IN_LIST = re.compile(r"\(:([A-Za-z_]+?)0(?:,:\1\d+)*\)")


def shape(text: str) -> str:
    """The text with every ``(:p0,:p1,...)`` list written ``(:p*)``: one shape for IN lists of every length."""
    return _IN_LIST.sub(lambda m: f"(:{m.group(1)}*)", text)


@dataclass
class Statement:
    text: str
    how: str  # execute | executemany | claim_rows | insert_rows | update_rows
    oracle_text: str | None
    postgres_text: str | None
    internal: bool = False
    binds: list[dict] = field(default_factory=list)
    sites: set[tuple[str, int]] = field(default_factory=set)
    calls: int = 0
    tests: set[str] = field(default_factory=set)  # (plugin) the tests that ran it

    def note(self, rows: list[dict], sites: list[tuple[str, int]], test: str | None) -> None:
        self.calls += 1
        self.sites.update(sites)
        if test:
            self.tests.add(test)
        for row in rows[:2]:
            keys = set(row)
            if len(self.binds) < EXAMPLES_KEPT and (not self.binds or all(set(b) != keys for b in self.binds) or len(self.binds) < 2):
                self.binds.append(dict(row))

    @property
    def ours(self) -> bool:
        """Written by a module of pandajedi_wf/taskbuffer (next_ids' text is connection.py's own)."""
        return any(Path(path).is_relative_to(TASKBUFFER) for path, _ in self.sites)


class Capture:
    def __init__(self):
        self.statements: dict[tuple[str, str, bool], Statement] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self.test: str | None = None

    def record(self, how: str, text: str, oracle_text: str | None, postgres_text: str | None, rows: list[dict]) -> None:
        internal = bool(getattr(self._local, "inside", 0))
        sites = [] if internal else _sites()
        key = (how, text, internal)
        with self._lock:
            seen = self.statements.get(key)
            if seen is None:
                seen = self.statements[key] = Statement(text, how, None if internal else oracle_text, postgres_text, internal)
            seen.note(rows, sites, self.test)

    @contextlib.contextmanager
    def nested(self):
        """Statements WfDatabase runs inside one of ours are its own (PostgreSQL forms of update_rows)."""
        self._local.inside = getattr(self._local, "inside", 0) + 1
        try:
            yield
        finally:
            self._local.inside -= 1

    def ours(self) -> list[Statement]:
        return [s for s in self.statements.values() if s.ours or s.internal]

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            pickle.dump(list(self.statements.values()), f)


def load(path: str) -> list[Statement]:
    with open(path, "rb") as f:
        return pickle.load(f)


def _sites() -> list[tuple[str, int]]:
    """Where the statement was called: the first frame outside WfDatabase's statement methods and, when that is
    connection.py itself (next_ids), also the first frame outside connection.py."""
    found = []
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        path = Path(code.co_filename)
        if code.co_filename != __file__ and not (path == CONNECTION and code.co_name in _PASS_THROUGH):
            found.append((code.co_filename, frame.f_lineno))
            if path != CONNECTION:
                break
        frame = frame.f_back
    return found


@contextlib.contextmanager
def capture():
    """Record every statement WfDatabase is given inside the block (all connections, all threads)."""
    from pandajedi_wf.taskbuffer import connection
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    seen = Capture()
    original = {name: getattr(WfDatabase, name) for name in ("execute", "executemany", "claim_rows", "insert_rows", "update_rows")}

    def execute(self, sql, binds=None):
        seen.record("execute", sql, sql, sql, [binds or {}])
        return original["execute"](self, sql, binds)

    def executemany(self, sql, rows):
        if rows:
            seen.record("executemany", sql, sql, sql, list(rows))
        with seen.nested():
            return original["executemany"](self, sql, rows)

    def claim_rows(self, sql, binds, n):
        if n > 0:
            postgres_binds = dict(binds or {}, **{connection.CLAIM_LIMIT_BIND: n})
            seen.record("claim_rows", sql, connection.claim_text(sql, "oracle"), connection.claim_text(sql, "postgres"), [postgres_binds])
        return original["claim_rows"](self, sql, binds, n)

    def insert_rows(self, table, columns, rows):
        if rows:
            text = self.insert_text(table, columns)
            seen.record("insert_rows", text, text, None, [dict(zip([f":{c}" for c in columns], row)) for row in rows[:2]])
        with seen.nested():
            return original["insert_rows"](self, table, columns, rows)

    def update_rows(self, table, assignments, where, bind_columns, rows):
        if rows:
            text = self.update_text(table, assignments, where)
            seen.record("update_rows", text, text, None, list(rows[:2]))
        with seen.nested():
            return original["update_rows"](self, table, assignments, where, bind_columns, rows)

    for name, wrapped in (("execute", execute), ("executemany", executemany), ("claim_rows", claim_rows),
                          ("insert_rows", insert_rows), ("update_rows", update_rows)):
        setattr(WfDatabase, name, wrapped)
    try:
        yield seen
    finally:
        for name, method in original.items():
            setattr(WfDatabase, name, method)


# ---- as a pytest plugin --------------------------------------------------------------------------------------

_PLUGIN_STATE: dict = {}


def pytest_configure(config):
    path = os.environ.get("PANDAJEDI_WF_SQL_CAPTURE")
    if path:
        _PLUGIN_STATE["context"] = capture()
        _PLUGIN_STATE["capture"] = _PLUGIN_STATE["context"].__enter__()
        _PLUGIN_STATE["path"] = path


def pytest_runtest_setup(item):
    if "capture" in _PLUGIN_STATE:
        _PLUGIN_STATE["capture"].test = item.nodeid


def pytest_unconfigure(config):
    if "context" in _PLUGIN_STATE:
        _PLUGIN_STATE["capture"].save(_PLUGIN_STATE["path"])
        _PLUGIN_STATE.pop("context").__exit__(None, None, None)
