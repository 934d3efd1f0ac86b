"""Session harness: a real PostgreSQL and a PanDA/JEDI configuration for upstream code.

Upstream reads its config files and ``${PANDA_DB_*}`` at import time, so this module
sets everything up BEFORE any test module is collected: PANDA_HOME is written and the
environment points at a server port chosen now. The server itself starts only when a
test asks for ``pg`` (or a fixture built on it), so pure tests pay nothing.

Fixtures:
  pg               session  the running EmbeddedPostgres, all schemas loaded
  db_conn          function psycopg2 connection as role panda, on freshly cleaned tables
  clean_db         function empties task/job/request tables (reference data stays)
  jedi_taskbuffer  session  upstream JediTaskBuffer(None, nDBConnection=1)
  panda_home       session  Path of the PANDA_HOME directory
Import ``pandaserver``/``pandajedi`` inside tests or fixtures, never at module top.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pandajedi_wf_dev.devdb import panda_home as _panda_home  # noqa: E402
from pandajedi_wf_dev.devdb.embedded_postgres import EmbeddedPostgres, free_port  # noqa: E402

_WORKDIR = Path(tempfile.mkdtemp(prefix="pandajedi_wf_tests_"))
os.chmod(_WORKDIR, 0o711)  # the postgres user must reach its cluster below it
_PANDA_HOME = _panda_home.write_panda_home(_WORKDIR / "panda_home", watchdog_period=5)
_PG = EmbeddedPostgres(_WORKDIR / "pg", port=free_port())
_PG.owns_dir = True
_panda_home.activate(_PANDA_HOME, _PG)

# tables holding reference data from upstream_schema/50_seed.sql: kept between tests
_REFERENCE_TABLES = {
    "site",
    "panda_site",
    "ddm_endpoint",
    "panda_ddm_relation",
    "schedconfig_json",
    "resource_types",
    "jedi_work_queue",
    "global_shares",
}
_CLEANED_SCHEMAS = ("doma_panda", "doma_deft")


def pytest_unconfigure(config):
    _PG.stop()
    shutil.rmtree(_WORKDIR, ignore_errors=True)


# Markers (registered in setup.cfg): ``pytest -m "not db"`` runs the pure tests alone, without PostgreSQL.
# db:  needs PostgreSQL; given to every test that uses ``pg`` (directly or through db_conn, clean_db,
#      jedi_taskbuffer, ...), to the modules listed here (they run DB tests in a pytest of their own), and set by
#      hand on the few tests that start a server of their own.
# e2e: starts servers or daemons besides PostgreSQL (upstream's PanDA server, JediMaster, Rucio, a browser): every
#      test using ``rucio_server``, every test_e2e_* module, and the modules listed here.
_DB_MODULES = {"test_taskbuffer_sql_contract"}
_E2E_MODULES = {"test_upstream_server_clients", "test_harness_jedimaster", "test_monitor_browser"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__ if item.module else ""
        if "pg" in item.fixturenames or module in _DB_MODULES:
            item.add_marker(pytest.mark.db)
        if "rucio_server" in item.fixturenames or module.startswith("test_e2e_") or module in _E2E_MODULES:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def panda_home() -> Path:
    return _PANDA_HOME


@pytest.fixture(scope="session")
def pg() -> EmbeddedPostgres:
    from pandajedi_wf_dev.devdb.dev_environment import load_all_schemas

    _PG.start()
    load_all_schemas(_PG)
    return _PG


@pytest.fixture
def db(clean_db):
    """A WfDatabase on the emptied test database (the usual handle of a DB test; a test file may define its own)."""
    from wf_db_support import make_db

    database = make_db()
    yield database
    database.close()


@pytest.fixture
def clean_db(pg):
    """Empty every table in doma_panda/doma_deft except the seeded reference tables, so no
    test depends on another's rows. Sequences keep counting: ids stay unique per session."""
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            # partitioned parents, not their partitions: TRUNCATE empties those through the parent
            cur.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                (list(_CLEANED_SCHEMAS),),
            )
            tables = [f"{schema}.{name}" for schema, name in cur.fetchall() if name not in _REFERENCE_TABLES]
            if tables:
                # a session a test left idle in a transaction would make TRUNCATE wait for ever: fail, naming it
                cur.execute("SET lock_timeout = '60s'")
                try:
                    cur.execute(f"TRUNCATE {', '.join(tables)}")
                except Exception as exc:
                    cur.execute("SELECT pid, usename, state, left(query, 200) FROM pg_stat_activity "
                                "WHERE state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()")
                    raise RuntimeError(f"clean_db could not empty the tables ({exc}); sessions idle in a transaction: {cur.fetchall()}") from exc
    finally:
        conn.close()
    yield


@pytest.fixture
def db_conn(pg, clean_db):
    conn = pg.connect("panda")
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture(scope="session")
def jedi_taskbuffer(pg):
    """Upstream's JediTaskBuffer on the test database (one connection), built once."""
    from pandajedi_wf_dev.devdb.upstream_agents import make_zombie_cleaner_harmless

    make_zombie_cleaner_harmless()
    from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

    task_buffer = JediTaskBuffer(None, nDBConnection=1)
    yield task_buffer
    task_buffer.cleanup(requester="tests")


@pytest.fixture(scope="session")
def rucio_server(pg):
    """A real Rucio server (``pandajedi_wf_dev.devdb.rucio_server``) on its own database of the test cluster, once per
    session. Skips when its virtualenv ``.venv-rucio`` cannot be created (bin/_bootstrap.sh makes it)."""
    from pandajedi_wf_dev.devdb.rucio_server import RucioServer, RucioServerError, ensure_rucio_venv

    try:
        ensure_rucio_venv()
    except RucioServerError as exc:
        pytest.skip(f"cannot create the Rucio server virtualenv (.venv-rucio): {exc}")
    server = RucioServer(pg, _WORKDIR / "rucio").start()
    yield server
    server.stop()
