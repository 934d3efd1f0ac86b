"""Our own DB connection, opened the way upstream's DBProxy opens its, and wrapped by upstream's WrappedCursor.

JEDI agents only get an IPC proxy to JEDI's TaskBuffer, which cannot run multi-statement transactions and knows
nothing of our tables; so our plugins hold one connection of their own, built from the same panda_server.cfg.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

# Written across a line break on purpose: WrappedCursor treats the literal text "FOR UPDATE SKIP LOCKED" as
# Oracle NOWAIT emulation (two extra COUNT queries, and an exception when every candidate row is locked).
# Claims want plain SKIP LOCKED on both backends, which both accept in this spelling.
SKIP_LOCKED = "FOR UPDATE\n SKIP LOCKED"


class DatabaseError(RuntimeError):
    """A statement failed; carries the SQL so the log says which one."""


@dataclass(frozen=True)
class ConnectionSettings:
    backend: str
    dbhost: str
    dbuser: str
    dbpasswd: str
    dbname: str
    dbport: int | None
    schema_jedi: str
    schema_deft: str

    @classmethod
    def from_panda_config(cls) -> "ConnectionSettings":
        """Read the connection keys from panda_server.cfg, like upstream's OraDBProxy.connect."""
        from pandaserver.config import panda_config

        port = getattr(panda_config, "dbport", None)
        return cls(
            backend=panda_config.backend,
            dbhost=panda_config.dbhost,
            dbuser=panda_config.dbuser,
            dbpasswd=panda_config.dbpasswd,
            dbname=getattr(panda_config, "dbname", ""),
            dbport=int(port) if port not in (None, "") else None,
            schema_jedi=panda_config.schemaJEDI,
            schema_deft=panda_config.schemaDEFT,
        )


def json_value(raw: Any) -> Any:
    """A JSON column as Python data: psycopg2 returns JSONB already decoded, Oracle returns CLOB text."""
    if raw is None or isinstance(raw, (dict, list)):
        return raw
    if hasattr(raw, "read"):
        raw = raw.read()
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode()
    return json.loads(raw) if raw != "" else None


def json_text(value: Any) -> str | None:
    """Python data as the text bound into a JSON column (JSONB accepts an untyped literal, Oracle IS JSON text)."""
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class WfDatabase:
    """One connection plus the statement counter the benchmarks report.

    ``transaction()`` commits on success and rolls back on any exception, so a failure never leaves half of a
    change behind. Schema names are taken from panda_server.cfg (``schemaJEDI`` holds JEDI and our tables).
    """

    def __init__(self, settings: ConnectionSettings | None = None):
        self.settings = settings or ConnectionSettings.from_panda_config()
        self.schema = self.settings.schema_jedi
        self.schema_deft = self.settings.schema_deft
        self.backend = self.settings.backend
        self.statements = 0
        self._conn = None
        self._cur = None
        self._in_transaction = False
        self._lock = threading.RLock()

    # connection -------------------------------------------------------------------------------------------
    def connect(self) -> None:
        from pandaserver.taskbuffer.WrappedCursor import WrappedCursor

        s = self.settings
        if s.backend == "postgres":
            import psycopg2

            from pandaserver.taskbuffer.WrappedPostgresConn import WrappedPostgresConn

            dsn = {"dbname": s.dbname, "user": s.dbuser, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 30}
            if s.dbpasswd:
                dsn["password"] = s.dbpasswd
            if s.dbhost:
                dsn["host"] = s.dbhost
            if s.dbport:
                dsn["port"] = s.dbport
            raw = psycopg2.connect(**dsn)
            conn = WrappedPostgresConn(raw)
        elif s.backend == "oracle":
            import oracledb

            from pandaserver.taskbuffer.wrapped_oracle_conn import WrappedOracleConn

            raw = oracledb.connect(dsn=s.dbhost, user=s.dbuser, password=s.dbpasswd)

            def _clob_as_text(cursor, name, default_type, size, precision, scale):
                if default_type == oracledb.CLOB:
                    return cursor.var(oracledb.LONG_STRING, arraysize=cursor.arraysize)

            raw.outputtypehandler = _clob_as_text
            conn = WrappedOracleConn(raw)
        else:
            raise DatabaseError(f"backend {s.backend!r} is not supported by pandajedi_wf (oracle or postgres)")
        cur = WrappedCursor(conn)
        cur.initialize()
        # commit/rollback go to the driver's connection: upstream's wrappers find every attribute by first trying
        # the wrapped object inside __getattribute__, which recurses to Python's recursion limit on each access
        self._conn, self._cur = raw, cur

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = self._cur = None

    def _ensure(self) -> None:
        if self._conn is None:
            self.connect()

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}"

    # statements -------------------------------------------------------------------------------------------
    def execute(self, sql: str, binds: dict | None = None) -> Any:
        """Run one statement inside the current transaction (or its own, committed, when none is open)."""
        with self._lock:
            self._ensure()
            try:
                self.statements += 1
                self._cur.execute(sql, binds or {})
            except Exception as exc:
                if not self._in_transaction:
                    self._rollback_quietly()
                raise DatabaseError(f"{type(exc).__name__}: {exc} -- in SQL: {' '.join(sql.split())[:300]}") from exc
            if not self._in_transaction:
                self._conn.commit()
            return self._cur

    def executemany(self, sql: str, rows: Sequence[dict]) -> None:
        if not rows:
            return
        with self._lock:
            self._ensure()
            try:
                self.statements += 1
                if self.backend == "postgres":
                    self._executemany_postgres(sql, list(rows))
                else:  # oracledb binds the rows as arrays: one round trip already
                    self._cur.executemany(sql, list(rows))
            except Exception as exc:
                if not self._in_transaction:
                    self._rollback_quietly()
                raise DatabaseError(f"{type(exc).__name__}: {exc} -- in SQL: {' '.join(sql.split())[:300]}") from exc
            if not self._in_transaction:
                self._conn.commit()

    def _executemany_postgres(self, sql: str, rows: list[dict]) -> None:
        """The same Oracle-dialect text, rewritten by upstream's converter, sent in pages of 1,000 rows.

        Upstream's executemany pages by 100 statements; an INSERT ... VALUES goes further as one multi-row INSERT
        per page (psycopg2's execute_values), which is what makes writing a whole batch's history cheap.
        """
        from psycopg2.extras import execute_batch, execute_values

        from pandaserver.taskbuffer.WrappedCursor import convert_query_in_printf_format

        converted, params = convert_query_in_printf_format(self._cur.change_schema(sql), rows, self._cur.sql_conv_map)
        head, sep, values = converted.partition(" VALUES ")
        if sep and head.lstrip().upper().startswith("INSERT") and values.count("(") >= 1 and values.rstrip().endswith(")"):
            execute_values(self._cur.cur, f"{head} VALUES %s", params, template=values.strip(), page_size=1000)
        else:
            execute_batch(self._cur.cur, converted, params, page_size=1000)

    def query(self, sql: str, binds: dict | None = None) -> list[tuple]:
        return self.execute(sql, binds).fetchall()

    def query_dicts(self, sql: str, binds: dict | None = None) -> list[dict]:
        cur = self.execute(sql, binds)
        names = [d[0].lower() for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def next_ids(self, sequence: str, count: int) -> list[int]:
        """``count`` values of one of our sequences in one statement (WrappedCursor turns the row generator into
        Postgres's GENERATE_SERIES)."""
        if count <= 0:
            return []
        if count == 1:
            return [int(self.query(f"SELECT {self.table(sequence)}.nextval FROM dual")[0][0])]
        rows = self.query(f"SELECT {self.table(sequence)}.nextval FROM (SELECT level FROM dual CONNECT BY level<=:n)", {":n": count})
        return sorted(int(r[0]) for r in rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["WfDatabase"]:
        with self._lock:
            self._ensure()
            if self._in_transaction:
                raise DatabaseError("nested transactions are not supported")
            self._in_transaction = True
            try:
                yield self
            except BaseException:
                self._rollback_quietly()
                raise
            else:
                self._conn.commit()
            finally:
                self._in_transaction = False

    def _rollback_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.rollback()

    def reconnect(self, attempts: int = 3, delay: float = 1.0) -> None:
        """Drop a broken connection and open a new one (agents call this after a DatabaseError)."""
        self.close()
        for attempt in range(attempts):
            try:
                self.connect()
                return
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(delay)


def in_clause(prefix: str, values: Iterable[Any]) -> tuple[str, dict]:
    """``(:p0,:p1,...)`` and its binds: WrappedCursor has no array binds, so IN lists are spelled out."""
    binds = {f":{prefix}{i}": v for i, v in enumerate(values)}
    return "(" + ",".join(binds) + ")", binds


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
