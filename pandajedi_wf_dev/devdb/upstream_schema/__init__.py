"""DDL for the upstream PanDA/JEDI/DEFT tables that the tests and the demo exercise.

Written for this project (upstream's Postgres schema lives in the panda-database
repository, not on PyPI): columns follow the installed Spec classes and the SQL of
the upstream code paths we drive. Files load in name order; ``50_seed.sql`` adds one
site/queue so upstream's SiteMapper and brokerage have something to map.
"""

from __future__ import annotations

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent


def sql_files() -> list[Path]:
    return sorted(SCHEMA_DIR.glob("*.sql"))


def load_upstream_schema(conn) -> list[str]:
    """Run every file in one transaction on ``conn`` (a DB-API connection as role panda); return file names."""
    loaded = []
    with conn.cursor() as cur:
        for path in sql_files():
            try:
                cur.execute(path.read_text())
            except Exception as exc:
                conn.rollback()
                raise RuntimeError(f"loading {path.name} failed: {exc}") from exc
            loaded.append(path.name)
    conn.commit()
    return loaded


def refresh_min_task_ids(conn) -> None:
    """What pg_cron does upstream: make tasks visible to queries joining JEDI_AUX_Status_MinTaskID."""
    with conn.cursor() as cur:
        cur.execute("CALL doma_panda.jedi_refresh_min_taskid_by_status()")
    conn.commit()
