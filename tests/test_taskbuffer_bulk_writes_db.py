"""WfDatabase's bulk writes on a real PostgreSQL: COPY-based insert_rows, staging-table update_rows, executemany's
cached bind order, JSON columns read as text, and the statement counter over sibling connections."""

import datetime

import pytest

from wf_db_support import make_db

T0 = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901)

# every character COPY's text format treats specially, and some it must leave alone
NASTY = [
    "tab\there",
    "line\nbreak",
    "carriage\rreturn\r\n",
    "back\\slash",
    "trailing backslash\\",
    "\\N",
    "\\.",
    "\\t is not a tab",
    "it's \"quoted\"",
    "ü → 🚀",
    "",
    " ",
]


def insert_transitions(db, reasons, actors=None, time=T0, entity_ids=None):
    """One step transition row per reason; returns their ids in order."""
    from pandajedi_wf.taskbuffer import transitions

    ids = db.next_ids(transitions.SEQUENCE, len(reasons))
    actors = actors or ["tester"] * len(reasons)
    entity_ids = entity_ids or [1] * len(reasons)
    db.insert_rows(
        transitions.TABLE,
        transitions.COLUMNS,
        [(i, "step", e, None, None, "ready", r, a, time) for i, r, a, e in zip(ids, reasons, actors, entity_ids)],
    )
    return ids


def transition_rows(db):
    return db.query_dicts(f"SELECT transition_id, entity_id, workflow_id, from_status, reason, actor, transition_time "
                          f"FROM {db.table('JEDI_WF_TRANSITIONS')} ORDER BY transition_id")


def make_steps(db, n, status="pending"):
    """A workflow with ``n`` minimal step rows in ``status``; returns the step ids."""
    from pandajedi_wf.taskbuffer import steps, workflows

    workflow_id = workflows.insert(db, name="bulk", user_name="dev.user", user_dn=None, vo="wlcg", prod_source_label="user",
                                   language="yaml", status="running", out_ds="user.dev.bulk", definition=None, request=None,
                                   error_dialog=None, now=T0)
    ids = db.next_ids(steps.SEQUENCE, n)
    steps.insert_many(db, [
        {"step_id": s, "workflow_id": workflow_id, "node_key": f"n{k}", "node_id": k, "name": f"s{k}", "step_type": "prun",
         "status": status, "iteration": 0, "scatter_index": None, "parent_keys": [], "task_name": f"user.dev.bulk_{s}"}
        for k, s in enumerate(ids)
    ], T0)
    return ids


def step_columns(db, columns="step_id, status, prev_status, attempt_nr, error_dialog, task_params"):
    return {int(r["step_id"]): r for r in db.query_dicts(f"SELECT {columns} FROM {db.table('JEDI_WF_STEPS')}")}


STATUS_BINDS = {":to_status": "status", ":step_id": "step_id", ":from_status": "status"}


def move(db, changes):
    """Guarded status changes (step_id, from, to) through update_rows; returns the rows changed."""
    return db.update_rows("JEDI_WF_STEPS", "status=:to_status, prev_status=status, attempt_nr=attempt_nr+1",
                          "step_id=:step_id AND status=:from_status", STATUS_BINDS,
                          [{":to_status": t, ":step_id": s, ":from_status": f} for s, f, t in changes])


# insert_rows ------------------------------------------------------------------------------------------------
def test_insert_rows_round_trips_strings_copy_treats_specially(db):
    """Tabs, newlines, CRs, backslashes (also trailing, and the literal \\N and \\.), quotes and non-ASCII text are
    stored exactly as given; '' stays '' and None becomes NULL."""
    insert_transitions(db, NASTY + [None], actors=["", None] + NASTY[:-1])

    rows = transition_rows(db)

    assert [r["reason"] for r in rows] == NASTY + [None]
    assert [r["actor"] for r in rows] == ["", None] + NASTY[:-1]
    assert rows[0]["from_status"] is None and rows[0]["workflow_id"] is None


def test_insert_rows_round_trips_microsecond_times_and_big_ints(db):
    """Datetimes keep their microseconds and BIGINTs their full 64 bits."""
    big = [2**63 - 1, 2**53 + 1, 0]
    insert_transitions(db, ["a", "b", "c"], entity_ids=big, time=T0)

    rows = transition_rows(db)

    assert [int(r["entity_id"]) for r in rows] == big
    assert {r["transition_time"] for r in rows} == {T0}


def test_insert_rows_writes_each_datetime_of_one_copy_as_its_own_value(db):
    """COPY keeps the text of each datetime it already wrote (a batch's rows share one ``now``): equal values share it,
    the others keep theirs, microseconds included, in rows that mix them with NULLs."""
    times = [T0, T0 + datetime.timedelta(microseconds=1), datetime.datetime(2030, 1, 2, 3, 4, 5, 678901), T0 - datetime.timedelta(days=400), T0]
    from pandajedi_wf.taskbuffer import transitions

    ids = db.next_ids(transitions.SEQUENCE, len(times))
    db.insert_rows(
        transitions.TABLE,
        transitions.COLUMNS,
        [(i, "step", n, None, None, "ready", None, None, t) for n, (i, t) in enumerate(zip(ids, times))],
    )

    rows = sorted(transition_rows(db), key=lambda r: int(r["entity_id"]))

    assert [r["transition_time"] for r in rows] == times


def test_insert_rows_in_a_transaction_that_raises_inserts_nothing(db):
    """COPY takes part in the open transaction: an exception later in the block takes the rows back."""
    with pytest.raises(RuntimeError, match="after the copy"):
        with db.transaction():
            insert_transitions(db, ["first", "second"])
            assert len(transition_rows(db)) == 2  # visible inside the transaction
            raise RuntimeError("after the copy")

    assert transition_rows(db) == []


def test_failing_copy_raises_database_error_and_leaves_the_connection_usable(db):
    """NULL into a NOT NULL column fails the whole COPY with DatabaseError (no row of it is kept) and the next
    statement on the same connection works."""
    from pandajedi_wf.taskbuffer.connection import DatabaseError

    ids = db.next_ids("JEDI_WF_TRANSITION_ID_SEQ", 2)
    good = (ids[0], "step", 1, None, None, "ready", "fine", "tester", T0)
    bad = (ids[1], "step", 1, None, None, None, "to_status is NOT NULL", "tester", T0)

    with pytest.raises(DatabaseError, match="COPY .*JEDI_WF_TRANSITIONS"):
        db.insert_rows("JEDI_WF_TRANSITIONS", ("transition_id", "entity_type", "entity_id", "workflow_id", "from_status",
                                               "to_status", "reason", "actor", "transition_time"), [good, bad])

    assert db.query("SELECT 1 FROM dual") == [(1,)]
    assert transition_rows(db) == []
    insert_transitions(db, ["after the failure"])
    assert [r["reason"] for r in transition_rows(db)] == ["after the failure"]


# update_rows ------------------------------------------------------------------------------------------------
def test_update_rows_counts_only_rows_whose_guard_matched(db):
    """A guarded where-clause changes only rows still in their from-status, and the count shows the mismatch."""
    a, b, c = make_steps(db, 3)

    changed = move(db, [(a, "pending", "ready"), (b, "pending", "ready"), (c, "running", "done")])

    rows = step_columns(db)
    assert changed == 2
    assert [(rows[s]["status"], rows[s]["prev_status"], rows[s]["attempt_nr"]) for s in (a, b, c)] == [
        ("ready", "pending", 1), ("ready", "pending", 1), ("pending", None, 0)]


def test_update_rows_twice_in_one_transaction_does_not_reapply_the_first_rows(db):
    """The staging table is emptied on each call: a second call of the same shape applies only its own rows."""
    a, b = make_steps(db, 2)

    with db.transaction():
        first = move(db, [(a, "pending", "ready")])
        second = db.update_rows("JEDI_WF_STEPS", "status=:to_status, prev_status=status, attempt_nr=attempt_nr+1",
                                "step_id=:step_id AND status<>:from_status", STATUS_BINDS,
                                [{":to_status": "running", ":step_id": b, ":from_status": "done"}])

    rows = step_columns(db)
    assert (first, second) == (1, 1)
    assert (rows[a]["status"], rows[a]["attempt_nr"]) == ("ready", 1)
    assert (rows[b]["status"], rows[b]["attempt_nr"]) == ("running", 1)


def test_update_rows_works_after_the_transaction_that_created_its_staging_table_rolled_back(clean_db):
    """On a fresh connection the first update_rows creates the staging table inside a transaction; after that
    transaction rolls back (taking the table with it) the next call creates it again and works."""
    db = make_db()
    try:
        a, b = make_steps(db, 2)
        with pytest.raises(RuntimeError):
            with db.transaction():
                assert move(db, [(a, "pending", "ready")]) == 1
                raise RuntimeError("roll back")

        assert move(db, [(a, "pending", "running"), (b, "pending", "running")]) == 2

        rows = step_columns(db)
        assert [(rows[s]["status"], rows[s]["attempt_nr"]) for s in (a, b)] == [("running", 1), ("running", 1)]
    finally:
        db.close()


def test_update_rows_after_a_rollback_of_a_later_transaction_reuses_the_existing_staging_table(db):
    """A staging table created (and committed) earlier survives a rolled-back transaction that forgot its name:
    creating it again must not fail."""
    a, b = make_steps(db, 2)
    assert move(db, [(a, "pending", "ready")]) == 1
    with pytest.raises(RuntimeError):
        with db.transaction():
            move(db, [(b, "pending", "ready")])
            raise RuntimeError("roll back")

    assert move(db, [(b, "pending", "running")]) == 1
    assert step_columns(db)[b]["status"] == "running"


def test_update_rows_round_trips_json_and_text_with_special_characters(db):
    """JSONB binds (task_params) and VARCHAR binds with tabs, newlines, quotes, backslashes and non-ASCII text
    arrive exactly; JSON reads back through json_value."""
    from pandajedi_wf.taskbuffer.connection import json_text, json_value

    steps_ = make_steps(db, len(NASTY))
    params = [{"arg": text, "list": [text, 1, None], "nested": {text: True}} for text in NASTY]

    changed = db.update_rows("JEDI_WF_STEPS", "task_params=:params, error_dialog=:dialog", "step_id=:step_id",
                             {":params": "task_params", ":dialog": "error_dialog", ":step_id": "step_id"},
                             [{":params": json_text(p), ":dialog": t, ":step_id": s} for s, p, t in zip(steps_, params, NASTY)])

    rows = step_columns(db)
    assert changed == len(NASTY)
    assert [json_value(rows[s]["task_params"]) for s in steps_] == params
    assert [rows[s]["error_dialog"] for s in steps_] == NASTY


def test_update_rows_none_sets_null(db):
    """A None bind sets SQL NULL (in a JSONB column too), not the text 'None' or an empty string."""
    (s,) = make_steps(db, 1)
    binds = {":params": "task_params", ":dialog": "error_dialog", ":step_id": "step_id"}
    db.update_rows("JEDI_WF_STEPS", "task_params=:params, error_dialog=:dialog", "step_id=:step_id", binds,
                   [{":params": '{"a":1}', ":dialog": "set", ":step_id": s}])

    db.update_rows("JEDI_WF_STEPS", "task_params=:params, error_dialog=:dialog", "step_id=:step_id", binds,
                   [{":params": None, ":dialog": None, ":step_id": s}])

    assert db.query(f"SELECT task_params IS NULL, error_dialog IS NULL FROM {db.table('JEDI_WF_STEPS')}") == [(True, True)]


def test_update_rows_of_no_rows_runs_no_statement(db):
    """An empty batch changes nothing and costs no round trip."""
    before = db.statements
    assert db.update_rows("JEDI_WF_STEPS", "status=:to_status", "step_id=:step_id", STATUS_BINDS, []) == 0
    assert db.statements == before


# executemany ------------------------------------------------------------------------------------------------
def test_executemany_insert_with_a_repeated_bind_and_binds_in_another_order_than_the_dict(db):
    """Placeholders are filled by name, whatever the order of the dict and however often a bind is used."""
    ids = db.next_ids("JEDI_WF_TRANSITION_ID_SEQ", 2)
    db.executemany(
        f"INSERT INTO {db.table('JEDI_WF_TRANSITIONS')} (transition_id, entity_type, entity_id, workflow_id, from_status, "
        "to_status, reason, actor, transition_time) VALUES (:id, 'step', :entity, :entity, :status, :status, :reason, :actor, :t) ",
        [{":t": T0, ":actor": f"actor{i}", ":reason": f"why\t{i}", ":status": f"st{i}", ":entity": 10 + i, ":id": tid}
         for i, tid in enumerate(ids)],
    )

    rows = db.query(f"SELECT entity_id, workflow_id, from_status, reason, actor, transition_time "
                    f"FROM {db.table('JEDI_WF_TRANSITIONS')} ORDER BY transition_id")
    assert rows == [(10, 10, "st0", "why\t0", "actor0", T0), (11, 11, "st1", "why\t1", "actor1", T0)]


def test_executemany_update_with_a_repeated_bind_and_binds_in_another_order_than_the_dict(db):
    """The non-INSERT path (execute_batch) fills placeholders by name too; a single-bind statement also works."""
    ids = insert_transitions(db, ["r0", "r1", "r2"])
    db.executemany(
        f"UPDATE {db.table('JEDI_WF_TRANSITIONS')} SET from_status=:new, to_status=:new, actor=:actor "
        "WHERE transition_id=:id AND reason<>:new ",
        [{":id": ids[0], ":actor": "a0", ":new": "moved0"}, {":new": "moved1", ":id": ids[1], ":actor": "a1"}],
    )
    db.executemany(f"DELETE FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE transition_id=:id ", [{":id": ids[2]}])

    rows = db.query(f"SELECT from_status, to_status, actor FROM {db.table('JEDI_WF_TRANSITIONS')} ORDER BY transition_id")
    assert rows == [("moved0", "moved0", "a0"), ("moved1", "moved1", "a1")]


def test_executemany_keeps_a_literal_percent_sign_on_both_paths(db):
    """The printf-style conversion doubles a literal %; the multi-row INSERT and the batched UPDATE both undo it."""
    ids = db.next_ids("JEDI_WF_TRANSITION_ID_SEQ", 2)
    db.executemany(f"INSERT INTO {db.table('JEDI_WF_TRANSITIONS')} (transition_id, entity_type, entity_id, to_status, reason, "
                   "actor, transition_time) VALUES (:id, 'step', 1, 'ready', :reason, '100%', :t) ",
                   [{":id": i, ":reason": "50%s", ":t": T0} for i in ids])
    db.executemany(f"UPDATE {db.table('JEDI_WF_TRANSITIONS')} SET to_status='9%' WHERE transition_id=:id AND actor LIKE '100%' ",
                   [{":id": ids[1]}])

    rows = db.query(f"SELECT reason, actor, to_status FROM {db.table('JEDI_WF_TRANSITIONS')} ORDER BY transition_id")
    assert rows == [("50%s", "100%", "ready"), ("50%s", "100%", "9%")]


def test_executemany_with_a_missing_bind_names_it_and_writes_nothing(db):
    """A row without one of the statement's binds is refused with the bind's name; no row of the batch is written."""
    from pandajedi_wf.taskbuffer.connection import DatabaseError

    ids = db.next_ids("JEDI_WF_TRANSITION_ID_SEQ", 2)
    sql = (f"INSERT INTO {db.table('JEDI_WF_TRANSITIONS')} (transition_id, entity_type, entity_id, to_status, reason, "
           "transition_time) VALUES (:id, 'step', 1, 'ready', :reason, :t) ")

    with pytest.raises(DatabaseError, match=":reason is missing"):
        db.executemany(sql, [{":id": ids[0], ":reason": "ok", ":t": T0}, {":id": ids[1], ":t": T0}])

    assert transition_rows(db) == []


# reading JSON, counting statements ---------------------------------------------------------------------------
def test_json_columns_are_read_as_text_and_decoded_by_json_value(db):
    """JSONB (and JSON) columns arrive as str, as Oracle CLOBs do; json_value turns them into Python data."""
    from pandajedi_wf.taskbuffer.connection import json_value

    (s,) = make_steps(db, 1)
    db.execute(f"UPDATE {db.table('JEDI_WF_STEPS')} SET task_params=:p WHERE step_id=:s", {":p": '{"b": [1, "ü"], "a": null}', ":s": s})

    ((params, parents),) = db.query(f"SELECT task_params, parent_keys FROM {db.table('JEDI_WF_STEPS')}")
    ((plain,),) = db.query("""SELECT CAST('{"x": 1}' AS json) FROM dual""")

    assert isinstance(params, str) and isinstance(parents, str) and isinstance(plain, str)
    assert json_value(params) == {"a": None, "b": [1, "ü"]}
    assert json_value(parents) == [] and json_value(plain) == {"x": 1}


def test_statements_count_this_connection_and_its_siblings(db):
    """``statements`` adds up the statements of the connection and of every sibling it handed out."""
    before = db.statements
    first, second = db.siblings(2)
    try:
        first.query("SELECT 1 FROM dual")
        second.query("SELECT 1 FROM dual")
        second.executemany("SELECT :x FROM dual", [{":x": 1}, {":x": 2}])
        db.query("SELECT 1 FROM dual")

        assert (first.statements, second.statements) == (1, 2)
        assert db.statements == before + 4
        assert db.siblings(2) == [first, second] and db.siblings(1) == [first]  # the same connections, kept
    finally:
        db.close()  # closes the siblings too
    assert first._conn is None and second._conn is None


def test_executemany_runs_a_use_json_type_statement_that_execute_runs(db):
    """executemany accepts the same Oracle-dialect text as execute, including upstream's JSON-field notation."""
    a, b = make_steps(db, 2)
    db.execute(f"UPDATE {db.table('JEDI_WF_STEPS')} SET task_params=:p", {":p": '{"x": "k"}'})
    sql = f"DELETE FROM {db.table('JEDI_WF_STEPS')} WHERE task_params.x=:x AND step_id=:s /* use_json_type */"

    db.executemany(sql, [{":s": a, ":x": "k"}])  # first use of this text: the converter guesses the field's type
    db.execute(sql, {":s": b, ":x": "k"})

    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_STEPS')}") == [(0,)]

