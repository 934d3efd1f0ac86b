"""PanDA reads iDDS's shared tables through our views, as role panda, on a real PostgreSQL.

The iDDS side is written as role ``idds`` (owner of doma_idds); the reads go through pandajedi_wf's WfDatabase,
which connects as ``panda`` like the PanDA server would, so the grants are exercised, not bypassed.
"""

import pytest


@pytest.fixture
def idds_rows(pg, clean_db):
    """One iDDS request with one transform (JEDI task 4242) and its input, output and log collections."""
    conn = pg.connect("idds", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE doma_idds.contents, doma_idds.collections, doma_idds.processings, doma_idds.transforms, doma_idds.requests")
        cur.execute(
            "INSERT INTO doma_idds.requests (request_id, scope, name, requester, request_type, username, workload_id, status, created_at, updated_at) "
            "VALUES (7, 'user.alice', 'wf O''Neil ünïcode', 'panda', 2, 'alice', 4242, 2, now(), now())"
        )
        cur.execute(
            "INSERT INTO doma_idds.transforms (transform_id, request_id, workload_id, transform_type, name, status, created_at, updated_at) "
            "VALUES (70, 7, 4242, 2, 'tf', 2, now(), now())"
        )
        collections = [(700, 0, "in.ds", 3, 2, 0), (701, 1, "out.ds", 3, 1, 1), (702, 2, "log.ds", 3, 1, 0)]
        for coll_id, relation, name, total, processed, failed in collections:
            cur.execute(
                "INSERT INTO doma_idds.collections (coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status, "
                "total_files, processed_files, failed_files, created_at, updated_at) VALUES (%s, 70, 7, 4242, %s, 'user.alice', %s, 2, %s, %s, %s, now(), now())",
                (coll_id, relation, name, total, processed, failed),
            )
        contents = [(1, 700, 2), (2, 700, 2), (3, 700, 1), (4, 701, 2), (5, 701, 3), (6, 701, 0), (7, 702, 2)]
        for content_id, coll_id, status in contents:
            cur.execute(
                "INSERT INTO doma_idds.contents (content_id, transform_id, coll_id, request_id, map_id, scope, name, content_relation_type, status, "
                "substatus, created_at, updated_at) VALUES (%s, 70, %s, 7, %s, 'user.alice', %s, 0, %s, %s, now(), now())",
                (content_id, coll_id, content_id, f"file{content_id}", status, status),
            )
        # noise: another request and task, which must not leak into the answer
        cur.execute("INSERT INTO doma_idds.requests (request_id, scope, name, status, workload_id) VALUES (8, 'user.bob', 'other', 3, 999)")
        cur.execute("INSERT INTO doma_idds.transforms (transform_id, request_id, workload_id, status) VALUES (80, 8, 999, 3)")
    conn.close()
    yield


@pytest.fixture
def db(pg):
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    database = WfDatabase()
    database.connect()
    yield database
    database.close()


def test_requests_and_collections_behind_a_jedi_task(idds_rows, db):
    from pandajedi_wf.taskbuffer import idds_tables

    summary = idds_tables.task_file_summary(db, 4242)

    assert [(r["request_id"], r["name"], r["status"]) for r in summary["requests"]] == [(7, "wf O'Neil ünïcode", "transforming")]
    by_type = {c["relation_type"]: c for c in summary["collections"]}
    assert set(by_type) == {"input", "output", "log"}
    assert by_type["input"]["name"] == "in.ds" and by_type["input"]["status"] == "processing"
    assert by_type["input"]["file_states"] == {"available": 2, "processing": 1}
    assert by_type["output"]["file_states"] == {"available": 1, "failed": 1, "new": 1}
    assert by_type["log"]["file_states"] == {"available": 1}


def test_unknown_task_gives_empty_answer(idds_rows, db):
    from pandajedi_wf.taskbuffer import idds_tables

    assert idds_tables.task_file_summary(db, 1) == {"jedi_task_id": 1, "requests": [], "collections": []}


def test_panda_role_reads_but_cannot_write_idds_tables(idds_rows, pg):
    import psycopg2

    conn = pg.connect("panda")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM doma_panda.jedi_idds_contents_v")
            assert cur.fetchone()[0] == 7
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("UPDATE doma_idds.contents SET status = 4")
        conn.rollback()
    finally:
        conn.close()
