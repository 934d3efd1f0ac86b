"""taskbuffer.placement_inputs on the real database: parents of a task that iDDS runs, learnt from iDDS's shared
COLLECTIONS/TRANSFORMS through our read-only views (read as role panda, the iDDS rows written as role idds, as iDDS
writes them), and a task of no workflow recognised as such."""

import pytest

from wf_db_support import make_db


@pytest.fixture
def idds_chain(pg, clean_db):
    """iDDS request 21 runs JEDI tasks 6001 -> 6002 (6002 reads 6001's output collection) and 6003, which reads 6001's
    output and 6004's log; request 22 has a collection of the same name whose transform must not count as a parent."""
    conn = pg.connect("idds", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE doma_idds.contents, doma_idds.collections, doma_idds.processings, doma_idds.transforms, doma_idds.requests")
        for request_id in (21, 22):
            cur.execute(
                "INSERT INTO doma_idds.requests (request_id, scope, name, requester, request_type, username, workload_id, status, created_at, updated_at) "
                "VALUES (%s, 'user.alice', 'wf', 'panda', 2, 'alice', NULL, 2, now(), now())", (request_id,))
        transforms = [(210, 21, 6001), (211, 21, 6002), (212, 21, 6003), (213, 21, 6004), (220, 22, 7001)]
        for transform_id, request_id, task in transforms:
            cur.execute(
                "INSERT INTO doma_idds.transforms (transform_id, request_id, workload_id, transform_type, name, status, created_at, updated_at) "
                "VALUES (%s, %s, %s, 2, 'tf', 2, now(), now())", (transform_id, request_id, task))
        # (coll_id, transform, request, workload, relation 0 in / 1 out / 2 log, name)
        collections = [
            (1, 210, 21, 6001, 0, "raw.ds"), (2, 210, 21, 6001, 1, "top.out"), (3, 210, 21, 6001, 2, "top.log"),
            (4, 211, 21, 6002, 0, "top.out"), (5, 211, 21, 6002, 1, "bottom.out"),
            (6, 212, 21, 6003, 0, "top.out"), (7, 212, 21, 6003, 0, "side.log"), (8, 213, 21, 6004, 2, "side.log"),
            (9, 220, 22, 7001, 1, "top.out"),
        ]
        for coll_id, transform_id, request_id, task, relation, name in collections:
            cur.execute(
                "INSERT INTO doma_idds.collections (coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status, "
                "total_files, processed_files, failed_files, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'user.alice', %s, 2, 1, 0, 0, now(), now())",
                (coll_id, transform_id, request_id, task, relation, name))
    conn.close()
    yield


@pytest.fixture
def db(pg):
    database = make_db()
    yield database
    database.close()


def test_idds_parent_is_the_transform_whose_output_the_task_reads(idds_chain, db):
    from pandajedi_wf.taskbuffer.placement_inputs import idds_parents

    assert idds_parents(db, 6002) == [6001]  # not 7001: same collection name, another request
    assert idds_parents(db, 6003) == [6001]  # a log collection of 6004 is not an output
    assert idds_parents(db, 6001) == []  # its input comes from outside the request


def test_task_of_no_workflow_and_no_idds_request_has_no_parents(idds_chain, db):
    from pandajedi_wf.jedi_agents.brokers import workflow_parents
    from pandajedi_wf.taskbuffer import placement_inputs

    assert placement_inputs.workflow_parents(db, 999999) is None
    assert workflow_parents(db, 999999) is None
    assert workflow_parents(db, 6002) == ("iDDS request", [6001])
    assert placement_inputs.parent_outputs(db, []) == []


def test_site_loads_are_online_queues_with_their_write_endpoint_and_jobs(pg, clean_db, db):
    """DEV_QUEUE (seeded, online, default write endpoint DEV_SITE_DATADISK) with jobs in jobsActive4/jobsDefined4; an
    offline queue is not offered; a job of an unknown queue counts nowhere."""
    from pandajedi_wf.taskbuffer.placement_inputs import QueueRow, site_loads

    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM doma_panda.schedconfig_json WHERE panda_queue='WF_OFFLINE'")
        cur.execute("INSERT INTO doma_panda.schedconfig_json (panda_queue, data, last_update) VALUES ('WF_OFFLINE', %s, now())",
                    ('{"status": "offline"}',))
        jobs = [("jobsactive4", "running"), ("jobsactive4", "running"), ("jobsactive4", "activated"), ("jobsactive4", "holding"),
                ("jobsdefined4", "defined"), ("jobsdefined4", "assigned"), ("jobsactive4", "finished")]
        for i, (table, status) in enumerate(jobs):
            cur.execute(f"INSERT INTO doma_panda.{table} (pandaid, computingsite, jobstatus) VALUES (%s, 'DEV_QUEUE', %s)", (900_000 + i, status))
        cur.execute("INSERT INTO doma_panda.jobsactive4 (pandaid, computingsite, jobstatus) VALUES (900100, 'NO_SUCH_QUEUE', 'running')")
    try:
        rows = {r.queue: r for r in site_loads(db)}
        assert "WF_OFFLINE" not in rows
        assert rows["DEV_QUEUE"] == QueueRow("DEV_QUEUE", "DEV_SITE_DATADISK", running=3, waiting=3)
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM doma_panda.schedconfig_json WHERE panda_queue='WF_OFFLINE'")
            cur.execute("DELETE FROM doma_panda.jobsactive4 WHERE pandaid >= 900000")
            cur.execute("DELETE FROM doma_panda.jobsdefined4 WHERE pandaid >= 900000")
        conn.close()


def test_staging_destinations_are_where_our_recalls_land(pg, clean_db, db):
    """A recall being made or done gives its destination and size; a cancelled or failed one does not."""
    from pandajedi_wf.taskbuffer.placement_inputs import staging_destinations

    rows = [(1, "data.tape.a", "SITE_A_DATADISK", "staging", 40), (2, "data.tape.b", "SITE_B_DATADISK", "done", 50),
            (3, "data.tape.c", "SITE_C_DATADISK", "cancelled", 60), (4, "data.tape.d", "SITE_D_DATADISK", "failed", 70)]
    for request_id, dataset, destination, status, size in rows:
        db.execute(f"INSERT INTO {db.table('JEDI_DC_REQUESTS')} (request_id, dataset, destination_rse, status, dataset_size, "
                   "creation_time, modification_time) VALUES (:r, :d, :dest, :st, :size, CURRENT_DATE, CURRENT_DATE)",
                   {":r": 990_000 + request_id, ":d": dataset, ":dest": destination, ":st": status, ":size": size})
    found = staging_destinations(db, ["data.tape.a", "data.tape.b", "data.tape.c", "data.tape.d", "data.disk.e", ""])
    assert found == {"data.tape.a": ("SITE_A_DATADISK", 40), "data.tape.b": ("SITE_B_DATADISK", 50)}
    assert staging_destinations(db, []) == {}


def test_link_rates_come_from_upstreams_network_matrix_as_upstream_reads_it(pg, clean_db, db, jedi_taskbuffer):
    """network_matrix_kv rows as upstream's configurator writes them (site names, FTS MB/s per window): the rate of
    a link from an input's endpoint to a queue's default write endpoint is its freshest window; a stale row, another
    key, a source not asked for and a destination no queue writes to are not read. Upstream's own getNetworkMetrics
    reads the same rows."""
    import datetime

    from pandajedi_wf.taskbuffer.placement_inputs import link_rates

    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    conn = pg.connect("panda", autocommit=True)
    endpoints = [("SRC_SITE_DATADISK", "SRC_SITE"), ("DAY_SITE_DATADISK", "DAY_SITE"), ("OLD_SITE_DATADISK", "OLD_SITE"),
                 ("NOQ_SITE_DATADISK", "NOQ_SITE")]
    matrix = [("SRC_SITE", "DEV_SITE", "dashb_mbps_1h", 250, now), ("SRC_SITE", "DEV_SITE", "dashb_mbps_1w", 100, now),
              ("SRC_SITE", "DEV_SITE", "AGIS_closeness", 3, now), ("DAY_SITE", "DEV_SITE", "dashb_mbps_1h", 0, now),
              ("DAY_SITE", "DEV_SITE", "dashb_mbps_1d", 40, now), ("OLD_SITE", "DEV_SITE", "dashb_mbps_1h", 999, now - datetime.timedelta(hours=2)),
              ("SRC_SITE", "NOQ_SITE", "dashb_mbps_1h", 500, now), ("NOQ_SITE", "DEV_SITE", "dashb_mbps_1h", 700, now)]
    with conn.cursor() as cur:  # upstream's table (panda-database pg_PANDA_TABLE.sql), as the dev upstream schema has it
        cur.execute("CREATE TABLE IF NOT EXISTS doma_panda.network_matrix_kv (src varchar(256) NOT NULL, dst varchar(256) NOT NULL, "
                    "key varchar(256) NOT NULL, value bigint, ts timestamp, PRIMARY KEY (src, dst, key))")
        for name, site in endpoints:
            cur.execute("INSERT INTO doma_panda.ddm_endpoint (ddm_endpoint_name, site_name, type, is_tape) VALUES (%s, %s, 'DATADISK', 'N')", (name, site))
        for row in matrix:
            cur.execute("INSERT INTO doma_panda.network_matrix_kv (src, dst, key, value, ts) VALUES (%s, %s, %s, %s, %s)", row)
    try:
        rates = link_rates(db, ["SRC_SITE_DATADISK", "DAY_SITE_DATADISK", "OLD_SITE_DATADISK", "UNKNOWN_DISK"], now)
        assert rates == {("SRC_SITE_DATADISK", "DEV_SITE_DATADISK"): 250e6, ("DAY_SITE_DATADISK", "DEV_SITE_DATADISK"): 40e6}
        assert link_rates(db, [], now) == {}
        upstream = jedi_taskbuffer.getNetworkMetrics("DEV_SITE", ["dashb_mbps_1h", "dashb_mbps_1d", "dashb_mbps_1w"])
        assert upstream["SRC_SITE"] == {"dashb_mbps_1h": 250, "dashb_mbps_1w": 100}
        assert upstream["DAY_SITE"] == {"dashb_mbps_1h": 0, "dashb_mbps_1d": 40}
        assert "OLD_SITE" not in upstream
    finally:
        # upstream's read leaves its transaction open (on Oracle a read takes no lock; on PostgreSQL it holds the
        # table's share lock): the next test's TRUNCATE would wait for it for ever
        with jedi_taskbuffer.proxyPool.get() as proxy:
            proxy.conn.rollback()
        with conn.cursor() as cur:
            cur.execute("DELETE FROM doma_panda.ddm_endpoint WHERE ddm_endpoint_name IN %s", (tuple(n for n, _ in endpoints),))
            cur.execute("DELETE FROM doma_panda.network_matrix_kv")
        conn.close()
