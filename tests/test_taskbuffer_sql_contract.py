"""Every statement our taskbuffer runs: our PostgreSQL conversion is upstream's, and the Oracle text parses.

On PostgreSQL, WfDatabase converts a statement text once with upstream's converter and keeps the result
(``WfDatabase._postgres_form``), instead of WrappedCursor.execute converting it again for every call. This holds the
kept form to what upstream does with the same text and binds, so a panda-server upgrade that changes its conversion
fails here rather than changing what we send:

- the converted SQL is upstream's (``convert_query_in_printf_format`` after ``change_schema`` and the backquote
  removal of WrappedCursor.execute), and the binds are listed in upstream's order with upstream's values, for every
  row of binds seen;
- a text WrappedCursor.execute would treat specially (its NOWAIT emulation of a converted ``FOR UPDATE SKIP LOCKED``,
  JSON field paths, backquotes) is left to upstream by ``WfDatabase.execute``; only ``claim_rows`` sends
  ``FOR UPDATE SKIP LOCKED`` itself, on purpose (a claim wants SKIP LOCKED, not NOWAIT: see its docstring);
- executemany's INSERT ... VALUES pages (psycopg2 execute_values) are the same statement.

No Oracle server runs here: the text Oracle would be sent for each statement (the text itself; what claim_rows,
insert_rows and update_rows build for Oracle) is parsed with sqlfluff's Oracle dialect (tests/test_ddl_oracle_parse.py),
with its binds in place. ``POSTGRES_ONLY`` names, narrowly, the statements never sent to Oracle.

Where the statements come from: a child pytest runs ``DB_TESTS`` (real PostgreSQL, the tests' own calls, so IN lists
of the lengths they make are seen) and tests/sql_contract_workload.py (calls those tests do not make) with
tests/sql_capture.py as a plugin, which records every statement WfDatabase is given and where it was called. Every
call site in pandajedi_wf/taskbuffer that runs a statement must have been seen (``test_every_call_site_ran``).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sql_capture
from sql_capture import TASKBUFFER, Statement

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
DB_TESTS = [
    "test_taskbuffer_claims_db.py",
    "test_taskbuffer_bulk_writes_db.py",
    "test_taskbuffer_wake_db.py",
    "test_workflow_definition_failure_db.py",
    "test_workflow_submission_cap_db.py",
    "test_workflow_commands_db.py",
    "test_workflow_retries_db.py",
    "test_user_task_commands_db.py",
    "test_intake_db.py",
    "test_server_app_db.py",
    "test_idds_tables_db.py",
    "test_carousel_db_plugin.py",
    "test_carousel_db_flow.py",
    "test_carousel_db_rule_errors.py",
    "test_carousel_db_prod_watchdog.py",
    "test_carousel_db_containers.py",
    "test_workflow_prestage_db.py",
    "test_monitor_db.py",
    "test_brokers_db.py",
    "test_placement_inputs_db.py",
]
WORKLOAD = "sql_contract_workload.py"
# WfDatabase methods that run a statement text given by the caller (next_ids runs connection.py's own)
STATEMENT_METHODS = {"execute", "query", "query_dicts", "executemany", "claim_rows", "insert_rows", "update_rows", "next_ids"}

# Statements never sent to Oracle, each with why: (the module that runs it, a pattern of its whole text) -> reason.
# Empty since the grid simulator's SQL left taskbuffer (its CALL of upstream's pg_cron procedure, run only when
# db.backend == 'postgres', was the one entry); a new entry must name its module and its whole text.
POSTGRES_ONLY: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> list[Statement]:
    """What our taskbuffer modules gave WfDatabase during DB_TESTS and the workload, on their own PostgreSQL."""
    out = tmp_path_factory.mktemp("sql_contract") / "statements.pkl"
    env = dict(os.environ, PANDAJEDI_WF_SQL_CAPTURE=str(out))
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")])
    missing = [name for name in DB_TESTS if not (TESTS / name).exists()]
    assert not missing, f"DB_TESTS names test files that no longer exist: {missing}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sql_capture",
         *[str(TESTS / name) for name in DB_TESTS + [WORKLOAD]]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500,
    )
    assert out.exists(), f"the capturing run wrote nothing:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    # a failing test still ran its statements (those are checked); the workload must have run whole
    workload_failed = [line for line in run.stdout.splitlines() if WORKLOAD in line and ("FAILED" in line or "ERROR" in line)]
    assert not workload_failed, "\n".join(workload_failed) + "\n" + run.stdout[-4000:]
    return [s for s in sql_capture.load(str(out)) if s.ours or s.internal]


def converter():
    """A WfDatabase with upstream's cursor pieces the conversion uses (schema names, conversion map), unconnected."""
    from types import SimpleNamespace

    from pandaserver.taskbuffer.WrappedCursor import WrappedCursor

    from pandajedi_wf.taskbuffer.connection import ConnectionSettings, WfDatabase

    db = WfDatabase(ConnectionSettings.from_panda_config())
    db._cur = SimpleNamespace(change_schema=lambda sql: WrappedCursor.change_schema(None, sql), sql_conv_map={})
    return db


def upstream_execute(sql: str, binds: dict) -> tuple[str, list, bool]:
    """What WrappedCursor.execute does with ``sql`` on PostgreSQL: the SQL and binds it sends, and whether it emulates
    NOWAIT (extra COUNT queries, LockNotAvailable when every candidate row is locked)."""
    from pandaserver.taskbuffer.WrappedCursor import WrappedCursor, convert_query_in_printf_format

    text = re.sub("`", "", WrappedCursor.change_schema(None, sql))
    converted, params = convert_query_in_printf_format(text, [binds], {})
    return converted, params[0], "FOR UPDATE SKIP LOCKED" in converted


def upstream_executemany(sql: str, rows: list[dict]) -> tuple[str, list[list]]:
    """What WrappedCursor.executemany sends on PostgreSQL (execute_batch of these)."""
    from pandaserver.taskbuffer.WrappedCursor import WrappedCursor, convert_query_in_printf_format

    return convert_query_in_printf_format(WrappedCursor.change_schema(None, sql), rows, {})


def _where(s: Statement) -> str:
    sites = sorted(f"{Path(p).relative_to(REPO)}:{line}" for p, line in s.sites)
    return f"{s.how} at {', '.join(sites[:3]) or 'WfDatabase (internal)'}: {' '.join(s.text.split())[:200]}"


# ---- the conversion ---------------------------------------------------------------------------------------------


def test_the_capture_saw_every_kind_of_statement(captured):
    kinds = {s.how for s in captured if not s.internal}
    assert kinds == {"execute", "executemany", "claim_rows", "insert_rows", "update_rows"}, kinds
    assert any(s.internal for s in captured), "update_rows' PostgreSQL statements were not seen"
    assert len({sql_capture.shape(s.text) for s in captured}) > 100


def test_our_postgres_form_is_upstreams_conversion_with_the_same_binds(captured):
    db = converter()
    differences = []
    for s in captured:
        if s.postgres_text is None:  # insert_rows: COPY on PostgreSQL, no statement text
            continue
        if s.how == "executemany":
            expected_sql, expected_params = upstream_executemany(s.postgres_text, s.binds)
            form = db._postgres_form(s.postgres_text, s.binds[0])
            got = (form.sql, [form.take(row) for row in s.binds])
            if got != (expected_sql, expected_params):
                differences.append(f"{_where(s)}\n  ours:     {got}\n  upstream: {(expected_sql, expected_params)}")
            continue
        for row in s.binds:
            expected_sql, expected_params, emulated = upstream_execute(s.postgres_text, row)
            form = db._postgres_form(s.postgres_text, row)
            if (form.sql, form.take(row)) != (expected_sql, expected_params):
                differences.append(f"{_where(s)}\n  ours:     {(form.sql, form.take(row))}\n  upstream: {(expected_sql, expected_params)}")
            if form.upstream_execute != emulated:
                differences.append(f"{_where(s)}: upstream emulates NOWAIT: {emulated}, ours says {form.upstream_execute}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:20])


def test_only_claims_send_skip_locked_themselves_and_nothing_needs_upstreams_special_paths(captured):
    """WrappedCursor.execute treats three kinds of text its own way: ours hold none of them outside claim_rows (which
    sends FOR UPDATE SKIP LOCKED without the NOWAIT emulation on purpose), and execute would route them to it."""
    from pandajedi_wf.taskbuffer.connection import SKIP_LOCKED, _cacheable

    for s in captured:
        text = s.postgres_text or s.text
        if s.how == "claim_rows":
            assert text.endswith(SKIP_LOCKED) and "rownum" not in text.lower(), _where(s)
            continue
        assert "SKIP LOCKED" not in text.upper() and "NOWAIT" not in text.upper(), _where(s)
        assert _cacheable(text), _where(s)  # no JSON field paths (/* use_json_type */), no backquotes


def test_the_converter_is_asked_for_upstreams_special_texts_the_way_upstream_runs_them():
    """A NOWAIT text (converted to FOR UPDATE SKIP LOCKED) is left to WrappedCursor.execute; a JSON path text is never
    converted from the text alone; a missing bind fails with upstream's own message."""
    from pandajedi_wf.taskbuffer.connection import _cacheable

    db = converter()
    nowait = "SELECT workflow_id FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS WHERE workflow_id=:w FOR UPDATE NOWAIT"
    assert db._postgres_form(nowait, {":w": 1}).upstream_execute and upstream_execute(nowait, {":w": 1})[2]
    assert not _cacheable("SELECT w.request.a FROM ATLAS_PANDA.T w WHERE w.request.a=:a /* use_json_type */")
    with pytest.raises(KeyError, match=":b is missing in SQL parameters"):
        db._postgres_form("SELECT a FROM ATLAS_PANDA.T WHERE a=:a AND b=:b", {":a": 1})
    form = db._postgres_form("UPDATE ATLAS_PANDA.T SET a=:now, b=:x WHERE c=:now AND d IN (:d0,:d1)", {":now": 5, ":x": 6, ":d0": 7, ":d1": 8, ":extra": 9})
    assert form.names == (":now", ":x", ":now", ":d0", ":d1") and form.take({":now": 1, ":x": 2, ":d0": 3, ":d1": 4}) == [1, 2, 1, 3, 4]
    with pytest.raises(KeyError, match=":x is missing in SQL parameters"):
        form.take({":now": 1, ":d0": 3, ":d1": 4})


def test_executemany_pages_are_the_same_statement(captured):
    """An INSERT ... VALUES runs as psycopg2 execute_values pages: head + template must be the converted statement."""
    db = converter()
    inserts = [s for s in captured if s.how == "executemany" and s.postgres_text and " VALUES " in s.postgres_text]
    assert inserts
    for s in inserts:
        form = db._postgres_form(s.postgres_text, s.binds[0])
        head, _, values = form.sql.partition(" VALUES ")
        assert f"{head} VALUES {values.strip()}" == form.sql.rstrip(), _where(s)
        assert values.count("%s") == len(form.names), _where(s)


# ---- Oracle ------------------------------------------------------------------------------------------------------


def _postgres_only(s: Statement) -> str | None:
    for (module, pattern), reason in POSTGRES_ONLY.items():
        if re.fullmatch(pattern, s.text.strip()) and any(Path(p).name == module for p, _ in s.sites):
            return reason
    return None


def test_every_runtime_statement_parses_in_the_oracle_dialect(captured):
    from test_ddl_oracle_parse import parse_problems

    shapes: dict[str, Statement] = {}
    for s in captured:
        if s.internal or s.oracle_text is None or _postgres_only(s):
            continue
        key = sql_capture.shape(s.oracle_text)
        if key not in shapes or len(s.oracle_text) < len(shapes[key].oracle_text):
            shapes[key] = s
    problems = []
    for s in shapes.values():
        found = parse_problems(s.oracle_text, "oracle")
        if found:
            problems.append(f"{_where(s)}\n  {found[-1]}")
    assert not problems, f"{len(problems)} statements Oracle may refuse:\n" + "\n".join(problems)


def test_postgres_only_statements_are_exactly_those_named(captured):
    """Each POSTGRES_ONLY entry still exists (else it goes) and is the only text of its kind that fails to parse."""
    from test_ddl_oracle_parse import parse_problems

    named = [s for s in captured if _postgres_only(s)]
    matched = {key for s in named for key in POSTGRES_ONLY if re.fullmatch(key[1], s.text.strip())}
    assert matched == set(POSTGRES_ONLY), f"POSTGRES_ONLY entries that matched nothing (remove them): {set(POSTGRES_ONLY) - matched}"
    assert all(parse_problems(s.oracle_text, "oracle") for s in named), "a POSTGRES_ONLY statement parses now: remove its entry"


def test_claims_sent_to_oracle_have_no_rownum(captured):
    claims = [s for s in captured if s.how == "claim_rows"]
    assert {Path(p).name for s in claims for p, _ in s.sites} >= {"workflows.py", "upstream_workflows.py"}
    for s in claims:
        assert "rownum" not in s.oracle_text.lower() and s.oracle_text.endswith(" ORDER BY " + s.text.split(" ORDER BY ")[-1].strip() + " FOR UPDATE SKIP LOCKED")
        assert "LIMIT :claim_n" in s.postgres_text


def test_the_oracle_parse_catches_a_broken_statement():
    from test_ddl_oracle_parse import parse_problems

    good = "SELECT workflow_id FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS w WHERE status IN (:st0,:st1) ORDER BY check_after FOR UPDATE SKIP LOCKED"
    assert parse_problems(good, "oracle") == []
    for broken in (good.replace("WHERE", "WHER"), good.replace("(:st0,:st1)", "(:st0,:st1"), good + " LIMIT :n",
                   "UPDATE ATLAS_PANDA.T SET a=:a WHERE b IN (SELECT 1 FROM dual"):
        assert parse_problems(broken, "oracle"), broken


# ---- every statement was seen ------------------------------------------------------------------------------------


def statement_call_sites() -> dict[tuple[str, int], tuple[int, str]]:
    """(module, first line) -> (last line, function) of every call in taskbuffer/ that runs a statement: ``db.<m>(``
    in the table modules, and next_ids' own query in connection.py."""
    sites = {}
    for path in sorted(TASKBUFFER.glob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STATEMENT_METHODS
                        and isinstance(node.func.value, ast.Name)):
                    continue
                if node.func.value.id == "db" or (path.name == "connection.py" and function.name == "next_ids"):
                    sites.setdefault((path.name, node.lineno), (node.end_lineno, function.name))
    return sites


def test_every_call_site_ran(captured):
    seen = {(Path(p).name, line) for s in captured for p, line in s.sites}
    sites = statement_call_sites()
    assert len(sites) > 100
    missing = [f"{module}:{first} ({function})" for (module, first), (last, function) in sorted(sites.items())
               if not any(name == module and first <= line <= last for name, line in seen)]
    assert not missing, "statements no test ran (add a call to tests/sql_contract_workload.py):\n" + "\n".join(missing)


def test_step_statuses_bound_by_the_taskbuffer_are_the_lifecycles():
    from pandajedi_wf.taskbuffer import workflows
    from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

    assert set(workflows.FOLLOWING_A_TASK) == (STEP_ACTIVE - {"submitting"}) | {"cancelled"}
