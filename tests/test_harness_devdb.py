"""The harness itself: PANDA_HOME contents, the embedded server's CLI and clean-up,
and that the upstream DDL still covers every attribute of upstream's Spec classes."""

import configparser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pandajedi_wf_dev.devdb import embedded_postgres, panda_home

ROOT = Path(__file__).resolve().parents[1]


def read_cfg(path):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def test_panda_home_names_the_db_only_through_env_and_runs_only_our_watchdogs(tmp_path):
    home = panda_home.write_panda_home(tmp_path, watchdog_period=7)
    server = read_cfg(home / "etc/panda/panda_server.cfg")["server"]
    assert server["dbport"] == "${PANDA_DB_PORT}" and server["backend"] == "postgres"
    assert server["schemaJEDI"] == "DOMA_PANDA" and server["schemaDEFT"] == "DOMA_DEFT"
    jedi = read_cfg(home / "etc/panda/panda_jedi.cfg")
    assert jedi["watchdog"]["procConfig"] == "wlcg:any:1:wf_processor:7;wlcg:any:1:wf_carousel:7"
    assert "pandajedi_wf.jedi_agents.workflow_watchdog:WorkflowProcessorWatchDog:wf_processor" in jedi["watchdog"]["modConfig"]
    assert "pandajedi_wf.jedi_agents.carousel_watchdog:DataCarouselWatchDog:wf_carousel" in jedi["watchdog"]["modConfig"]
    for section in panda_home.AGENT_SECTIONS:
        assert jedi[section]["procConfig"].split(":")[2] == "0", section
    assert Path(read_cfg(home / "etc/panda/panda_common.cfg")["logger"]["logdir"]).is_dir()


def test_panda_home_can_enable_other_agents(tmp_path):
    home = panda_home.write_panda_home(tmp_path, agents={"taskrefine": 1, "confeeder": 2})
    jedi = read_cfg(home / "etc/panda/panda_jedi.cfg")
    assert jedi["taskrefine"]["procConfig"] == "wlcg:any:1"
    assert jedi["confeeder"]["procConfig"] == "wlcg:any:2"


@pytest.mark.parametrize(
    "kwargs, message",
    [({"agents": {"refiner": 1}}, "unknown JEDI agent section"), ({"watchdog_period": 0}, "positive number of seconds")],
)
def test_panda_home_refuses_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        panda_home.write_panda_home(tmp_path, **kwargs)


def test_missing_postgres_binaries_say_how_to_install(monkeypatch):
    monkeypatch.delenv("PG_BIN_DIR", raising=False)
    monkeypatch.setattr(embedded_postgres.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(embedded_postgres.shutil, "which", lambda name: None)
    with pytest.raises(embedded_postgres.PostgresNotFound, match="apt-get install postgresql"):
        embedded_postgres.find_bin_dir()


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pandajedi_wf_dev.devdb.embedded_postgres", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.db  # starts a PostgreSQL server of its own
def test_cli_starts_a_server_that_outlives_it_and_stops_it():
    workdir = Path(tempfile.mkdtemp(prefix="pandajedi_wf_cli_"))  # pytest's tmp_path is closed to the postgres user
    os.chmod(workdir, 0o711)
    base = workdir / "pg"
    started = _cli("start", "--dir", str(base))
    assert started.returncode == 0, started.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
    try:
        pg = embedded_postgres.EmbeddedPostgres.attach(base)
        assert str(pg.port) == exports["PANDA_DB_PORT"]
        with pg.connect("panda") as conn, conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'doma_%' ORDER BY 1")
            assert [r[0] for r in cur.fetchall()] == sorted(embedded_postgres.SCHEMAS)
    finally:
        stopped = _cli("stop", "--dir", str(base))
    assert stopped.returncode == 0, stopped.stderr
    assert not (base / "data" / "postmaster.pid").exists()
    shutil.rmtree(workdir)


@pytest.mark.db  # starts a PostgreSQL server of its own
def test_server_is_stopped_and_removed_when_its_owner_is_killed():
    code = (
        "import os\n"
        "from pandajedi_wf_dev.devdb.embedded_postgres import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres().start()\n"
        "print(pg.base_dir, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    owner = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert owner.returncode == -signal.SIGKILL
    base = Path(owner.stdout.strip())
    deadline = time.monotonic() + 20
    while base.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not base.exists(), f"reaper left {base} behind"


def test_upstream_tables_have_a_column_for_every_spec_attribute(pg, db_conn):
    """Upstream adds Spec attributes over time; its SQL then names columns our DDL lacks."""
    from pandaserver.taskbuffer.FileSpec import FileSpec
    from pandaserver.taskbuffer.JediDatasetSpec import JediDatasetSpec
    from pandaserver.taskbuffer.JediFileSpec import JediFileSpec
    from pandaserver.taskbuffer.JediTaskSpec import JediTaskSpec
    from pandaserver.taskbuffer.JobSpec import JobSpec

    specs = {
        "jedi_tasks": JediTaskSpec,
        "jedi_datasets": JediDatasetSpec,
        "jedi_dataset_contents": JediFileSpec,
        "jobsdefined4": JobSpec,
        "jobsactive4": JobSpec,
        "jobsarchived4": JobSpec,
        "filestable4": FileSpec,
    }
    missing = {}
    with db_conn.cursor() as cur:
        for table, spec in specs.items():
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'doma_panda' AND table_name = %s", (table,))
            columns = {name for (name,) in cur.fetchall()}
            attributes = getattr(spec, "_attributes", None) or spec.attributes
            lacking = sorted(a for a in attributes if a.lower() not in columns)
            if lacking:
                missing[table] = lacking
    assert missing == {}
