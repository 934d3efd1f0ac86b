"""Upstream's three workflow tables and their sequences, derived from its Spec classes, for one benchmark run.

Upstream ships no Postgres DDL for them on PyPI (it lives in the panda-database repository), so the columns are
exactly the ``attributes_with_types`` of WorkflowSpec / WFStepSpec / WFDataSpec and the sequences those classes name
in ``_seqAttrMap``. JSON columns are ``text``: the Spec classes ``json.loads`` them, which a psycopg2 ``jsonb`` (read
back as a dict) would break. The indexes cover the WHERE clauses of upstream's ``workflow_module.py`` so upstream is
not measured without the indexes any deployment would have.
"""

from __future__ import annotations

import datetime

_PG_TYPES = {int: "bigint", str: "text", datetime.datetime: "timestamp"}

# table name (as workflow_module.py spells it) -> indexes beyond the primary key
_INDEXES = {
    "workflows": [("status", "check_time"), ("parent_id",)],
    "workflow_steps": [("workflow_id", "status")],
    "workflow_data": [("workflow_id", "status"), ("name", "workflow_id")],
}


def _specs():
    from pandaserver.workflow.workflow_base import WFDataSpec, WFStepSpec, WorkflowSpec

    return {"workflows": WorkflowSpec, "workflow_steps": WFStepSpec, "workflow_data": WFDataSpec}


def _sequence(spec) -> tuple[str, str]:
    """(key column, sequence name) from e.g. ``{"workflow_id": "DOMA_PANDA.WORKFLOW_ID_SEQ.nextval"}``."""
    ((column, expression),) = spec._seqAttrMap.items()
    return column, expression.rsplit(".", 2)[-2].lower()


def create_statements(schema: str) -> list[str]:
    statements = []
    for table, spec in _specs().items():
        key, sequence = _sequence(spec)
        columns = [f"{a.attribute} {_PG_TYPES[a.type]}" + (" PRIMARY KEY" if a.attribute == key else "") for a in spec.attributes_with_types]
        statements.append(f"CREATE SEQUENCE {schema}.{sequence}")
        statements.append(f"CREATE TABLE {schema}.{table} ({', '.join(columns)})")
        statements += [f"CREATE INDEX {table}_{'_'.join(cols)}_idx ON {schema}.{table} ({', '.join(cols)})" for cols in _INDEXES[table]]
    return statements


def drop_statements(schema: str) -> list[str]:
    statements = []
    for table, spec in _specs().items():
        statements.append(f"DROP TABLE IF EXISTS {schema}.{table}")
        statements.append(f"DROP SEQUENCE IF EXISTS {schema}.{_sequence(spec)[1]}")
    return statements


def create(pg, schema: str = "doma_panda") -> None:
    _run(pg, drop_statements(schema) + create_statements(schema))


def drop(pg, schema: str = "doma_panda") -> None:
    _run(pg, drop_statements(schema))


def _run(pg, statements: list[str]) -> None:
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()
