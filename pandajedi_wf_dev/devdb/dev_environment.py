"""One call that gives a process a real PostgreSQL plus a PanDA/JEDI configuration.

Used by ``tests/conftest.py`` and by the demo: start the server, write PANDA_HOME, load
the schemas (iDDS test tables, upstream PanDA/JEDI tables, this project's tables) and
point the environment at it all, before anything imports ``pandaserver``/``pandajedi``.
"""

from __future__ import annotations

import atexit
import os
import shutil
from pathlib import Path

from pandajedi_wf import schema_files
from pandajedi_wf_dev.devdb import panda_home as panda_home_mod
from pandajedi_wf_dev.devdb.embedded_postgres import IDDS_ROLE, PANDA_ROLE, EmbeddedPostgres
from pandajedi_wf_dev.devdb.upstream_schema import load_upstream_schema

# an iDDS-shaped doma_idds schema (what our iDDS views read), carried by this dev package
IDDS_TEST_SCHEMA = Path(__file__).resolve().parent / "idds_postgres.sql"


def start_dev_environment(
    workdir: str | os.PathLike | None = None,
    watchdog_period: int = 60,
    agents: dict[str, int] | None = None,
    activate: bool = True,
    watchdog_options: dict[str, str] | None = None,
    jedi_options: dict[str, dict[str, str]] | None = None,
) -> tuple[EmbeddedPostgres, Path]:
    """Start PostgreSQL (in ``workdir/pg``, or a temp dir removed on stop), write
    ``workdir/panda_home``, load all schemas and, if ``activate``, set this process's
    environment. ``jedi_options``: keys set in ``panda_jedi.cfg`` (``panda_home.write_panda_home``). Returns
    ``(pg, panda_home)``; call ``pg.stop()`` when done.
    """
    temporary = workdir is None
    if temporary:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="pandajedi_wf_dev_")
        os.chmod(workdir, 0o711)  # the postgres user must traverse it to reach its cluster
        atexit.register(shutil.rmtree, workdir, True)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(workdir / "pg")
    pg.owns_dir = temporary  # a temp workdir's cluster goes away with pg.stop()
    pg.start()
    try:
        home = panda_home_mod.write_panda_home(workdir / "panda_home", watchdog_period=watchdog_period, agents=agents,
                                               watchdog_options=watchdog_options, jedi_options=jedi_options)
        load_all_schemas(pg)
        if activate:
            panda_home_mod.activate(home, pg)
    except Exception:
        pg.stop()
        raise
    return pg, home


def load_all_schemas(pg: EmbeddedPostgres) -> list[str]:
    """iDDS test tables (as idds), upstream tables (as panda), then ours."""
    loaded = []
    _run_files(pg, IDDS_ROLE, [IDDS_TEST_SCHEMA])
    loaded.append(str(IDDS_TEST_SCHEMA))
    conn = pg.connect(PANDA_ROLE)
    try:
        loaded += load_upstream_schema(conn)
    finally:
        conn.close()
    tables, grants, views = _project_schema_files()
    _run_files(pg, PANDA_ROLE, tables)
    _run_files(pg, IDDS_ROLE, grants)  # the doma_idds owner lets panda read its tables ...
    _run_files(pg, PANDA_ROLE, views)  # ... before our views over them are created
    loaded += [str(p) for p in tables + grants + views]
    return loaded


def _project_schema_files() -> tuple[list[Path], list[Path], list[Path]]:
    """This project's Postgres DDL (package data) as (tables, iDDS grants, iDDS views)."""
    everything = schema_files.postgres_files()
    tables = schema_files.postgres_files(with_idds_views=False)
    views = [p for p in everything if p not in tables]
    return tables, schema_files.postgres_grant_files(), views


def _run_files(pg: EmbeddedPostgres, role: str, files: list[Path]) -> None:
    conn = pg.connect(role, autocommit=False)
    try:
        with conn.cursor() as cur:
            for path in files:
                try:
                    cur.execute(Path(path).read_text())
                except Exception as exc:
                    raise RuntimeError(f"loading {path} as {role} failed: {exc}") from exc
        conn.commit()
    finally:
        conn.close()
