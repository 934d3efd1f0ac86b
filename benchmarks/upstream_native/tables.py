"""Upstream's three workflow tables for one benchmark run: emptied before and after it.

They are part of the dev schema (``pandajedi_wf_dev/devdb/upstream_schema/15_workflow_tables.sql``, columns from
upstream's Spec classes, indexes covering the WHERE clauses of upstream's ``workflow_module.py``), and their
``WORKFLOW_ID_SEQ`` is the id space our own workflows draw from too: the run empties the tables, never drops them
or the sequence.
"""

from __future__ import annotations

TABLES = ("workflow_data", "workflow_steps", "workflows")


def create(pg, schema: str = "doma_panda") -> None:
    """Empty tables for upstream's engine to start from."""
    _truncate(pg, schema)


def drop(pg, schema: str = "doma_panda") -> None:
    """Leave nothing of upstream's run behind for ours."""
    _truncate(pg, schema)


def _truncate(pg, schema: str) -> None:
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"TRUNCATE {', '.join(f'{schema}.{t}' for t in TABLES)}")
    finally:
        conn.close()
