"""The upgrade scripts run on a real PostgreSQL: schema 1.0.0 as shipped, upgraded, is the fresh install.

Two scratch databases on the test server: one gets the 1.0.0 install files from the commit that shipped them
(git history) and then every upgrade script, the other a fresh install of pandajedi_wf/sql/postgres/; their catalogs
(columns, constraints, indexes, table options, sequences, the version row) must be the same.
Both hold upstream's doma_panda.workflow_id_seq, the prerequisite our workflow ids come from (schema 1.2.0 on).
"""

from __future__ import annotations

import pytest

from pandajedi_wf import schema_files

CATALOG_QUERIES = {
    "columns": "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default "
               "FROM information_schema.columns WHERE table_schema='doma_panda' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace='doma_panda'::regnamespace ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname='doma_panda' ORDER BY 1, 2",
    "table options": "SELECT relname, reloptions FROM pg_class WHERE relnamespace='doma_panda'::regnamespace AND relkind='r' ORDER BY 1",
    "sequences": "SELECT sequencename, start_value, increment_by FROM pg_sequences WHERE schemaname='doma_panda' ORDER BY 1",
    "version": "SELECT component, version FROM doma_panda.jedi_wf_schema_version",
}


@pytest.fixture
def scratch_databases(pg):
    """Two databases with the doma_panda schema owned by the PanDA role and, in it, upstream's workflow_id_seq
    (as upstream's schema creates it, owned by that role); dropped afterwards."""
    names = ["wf_upgraded", "wf_fresh"]
    admin = pg.connect("postgres", "postgres", autocommit=True)
    try:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
                cur.execute(f"CREATE DATABASE {name} OWNER panda")
        for name in names:
            conn = pg.connect("postgres", name, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("CREATE SCHEMA doma_panda AUTHORIZATION panda")
            conn.close()
            _run(pg, name, [("upstream's workflow_id_seq", "CREATE SEQUENCE doma_panda.workflow_id_seq")])
        yield names
    finally:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def _run(pg, database: str, texts: list[tuple[str, str]]) -> None:
    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            for name, text in texts:
                try:
                    cur.execute(text)
                except Exception as exc:
                    raise AssertionError(f"{name} failed on PostgreSQL: {exc}") from exc
        conn.commit()
    finally:
        conn.close()


def _catalog(pg, database: str) -> dict[str, list[tuple]]:
    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            found = {}
            for what, sql in CATALOG_QUERIES.items():
                cur.execute(sql)
                found[what] = cur.fetchall()
            return found
    finally:
        conn.close()


def _install_1_0_0(pg, database: str) -> None:
    from test_ddl_equivalence import _shipped_install_files

    shipped = _shipped_install_files("1.0.0", "postgres")
    if shipped is None:
        pytest.skip("git history with schema 1.0.0 as shipped is not available")
    without_views = {name: text for name, text in shipped.items() if name != schema_files.IDDS_VIEWS_FILE}
    _run(pg, database, sorted(without_views.items()))
    assert _catalog(pg, database)["version"] == [("pandajedi_wf", "1.0.0")]


def test_schema_1_0_0_upgraded_is_the_fresh_install(pg, scratch_databases):
    upgraded, fresh = scratch_databases
    _install_1_0_0(pg, upgraded)
    _run(pg, upgraded, [(path.name, path.read_text()) for _, _, path in schema_files.upgrade_files("postgres")])
    _run(pg, fresh, [(path.name, path.read_text()) for path in schema_files.postgres_files(with_idds_views=False)])

    before, after = _catalog(pg, upgraded), _catalog(pg, fresh)
    for what in CATALOG_QUERIES:
        assert before[what] == after[what], what
    assert after["version"] == [("pandajedi_wf", schema_files.schema_version("postgres"))]
    assert ("jedi_wf_steps", ["fillfactor=80"]) in after["table options"]
    assert [s for s, _, _ in after["sequences"] if "workflow_id" in s] == ["workflow_id_seq"]


@pytest.mark.parametrize("last_drawn,highest_workflow_id", [(20, 500), (500, 20), (7, None)])
def test_upgrade_to_1_2_0_puts_upstreams_workflow_ids_above_ours(pg, scratch_databases, last_drawn, highest_workflow_id):
    """On a 1.1.0 database holding workflows with ids up to N, after the upgrade upstream's workflow_id_seq gives
    an id above N and above the last one it gave (whichever of the two is ahead)."""
    database, _ = scratch_databases
    _install_1_0_0(pg, database)
    chain = schema_files.upgrade_files("postgres")
    _run(pg, database, [(path.name, path.read_text()) for _, to, path in chain if to != "1.2.0"])
    ids = [] if highest_workflow_id is None else [1, highest_workflow_id // 2, highest_workflow_id]
    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM doma_panda.jedi_wf_schema_version")
            assert cur.fetchall() == [("1.1.0",)]
            for workflow_id in ids:
                cur.execute("INSERT INTO doma_panda.jedi_wf_workflows (workflow_id, user_name, status, creation_time, "
                            "modification_time) VALUES (%s, 'someone', 'running', now(), now())", (workflow_id,))
            cur.execute("SELECT setval('doma_panda.workflow_id_seq', %s)", (last_drawn,))
        conn.commit()
    finally:
        conn.close()
    (path,) = [path for _, to, path in chain if to == "1.2.0"]
    _run(pg, database, [(path.name, path.read_text())])

    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT nextval('doma_panda.workflow_id_seq'), nextval('doma_panda.workflow_id_seq')")
            first, second = cur.fetchone()
            cur.execute("SELECT version FROM doma_panda.jedi_wf_schema_version")
            assert cur.fetchall() == [("1.2.0",)]
            cur.execute("SELECT count(*) FROM pg_sequences WHERE schemaname='doma_panda' AND sequencename='jedi_wf_workflow_id_seq'")
            assert cur.fetchone() == (0,)
        conn.rollback()
    finally:
        conn.close()
    assert first > last_drawn and first > max(ids, default=0)
    assert second == first + 1  # the increment is left as it was
    assert first == max(last_drawn + 1, max(ids, default=0) + 1)  # and no higher: the lowest id that is above both


@pytest.mark.parametrize("script", [f"{f}_to_{t}" for f, t, _ in schema_files.upgrade_files("postgres")])
def test_an_upgrade_leaves_a_database_of_another_version_alone(pg, scratch_databases, script):
    """The version row moves only from the version the script names: run on a fresh (newer) install, the row stays."""
    _, fresh = scratch_databases
    _run(pg, fresh, [(path.name, path.read_text()) for path in schema_files.postgres_files(with_idds_views=False)])
    conn = pg.connect("panda", fresh)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE doma_panda.jedi_wf_schema_version SET version='9.9.9'")
        conn.commit()
    finally:
        conn.close()
    (path,) = [p for f, t, p in schema_files.upgrade_files("postgres") if f"{f}_to_{t}" == script]
    # what the upgrade drops is not there, or what it adds already is: the script stops before the version row
    with pytest.raises(AssertionError, match="does not exist|already exists"):
        _run(pg, fresh, [(path.name, path.read_text())])
    assert _catalog(pg, fresh)["version"] == [("pandajedi_wf", "9.9.9")]


def test_upgrade_to_1_3_0_counts_the_automatic_retries_the_history_holds(pg, scratch_databases):
    """A 1.2.0 database's steps get ``auto_retries`` = the automatic retries since their last user command, as the
    processor counted them from the history until 1.2.0; a step without such rows starts at 0."""
    database, _ = scratch_databases
    _install_1_0_0(pg, database)
    chain = schema_files.upgrade_files("postgres")
    before = [path for _, to, path in chain[:[to for _, to, _ in chain].index("1.3.0")]]
    _run(pg, database, [(path.name, path.read_text()) for path in before])
    history = {  # step id -> (reason, to status) in the order written
        1: [("automatic retry: JEDI retry of task 7", "retrying"), ("JEDI task 7 is failed", "failed"),
            ("automatic retry: new JEDI task, generation 1", "defined")],
        2: [("automatic retry: JEDI retry of task 8", "retrying"), ("user command retry (#3): retry", "defined"),
            ("automatic retry: new JEDI task, generation 2", "defined")],
        3: [("JEDI task 9 is failed", "failed"), ("automatic retry dropped: workflow is finishing", "failed")],
        4: [],
    }
    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO doma_panda.jedi_wf_workflows (workflow_id, user_name, status, creation_time, "
                        "modification_time) VALUES (1, 'someone', 'running', now(), now())")
            transition_id = 0
            for step_id, rows in history.items():
                cur.execute("INSERT INTO doma_panda.jedi_wf_steps (step_id, workflow_id, node_key, status, creation_time, "
                            "modification_time) VALUES (%s, 1, %s, 'failed', now(), now())", (step_id, f"00{step_id}"))
                for reason, to_status in rows:
                    transition_id += 1
                    cur.execute("INSERT INTO doma_panda.jedi_wf_transitions (transition_id, entity_type, entity_id, workflow_id, "
                                "from_status, to_status, reason, actor, transition_time) "
                                "VALUES (%s, 'step', %s, 1, 'failed', %s, %s, 'test', now())",
                                (transition_id, step_id, to_status, reason))
        conn.commit()
    finally:
        conn.close()
    (path,) = [path for _, to, path in chain if to == "1.3.0"]
    _run(pg, database, [(path.name, path.read_text())])
    conn = pg.connect("panda", database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT step_id, auto_retries FROM doma_panda.jedi_wf_steps ORDER BY step_id")
            assert cur.fetchall() == [(1, 2), (2, 1), (3, 0), (4, 0)]
            cur.execute("SELECT version FROM doma_panda.jedi_wf_schema_version")
            assert cur.fetchall() == [("1.3.0",)]
    finally:
        conn.close()
