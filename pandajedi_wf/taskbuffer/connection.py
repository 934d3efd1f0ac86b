"""Our own DB connection, opened the way upstream's DBProxy opens its, and wrapped by upstream's WrappedCursor.

JEDI agents only get an IPC proxy to JEDI's TaskBuffer, which cannot run multi-statement transactions and knows
nothing of our tables; so our plugins hold one connection of their own, built from the same panda_server.cfg.

Time limits. A database that accepts connections and never answers, or a row lock another session never releases,
must not hold a JEDI WatchDog process for ever (upstream's agents share that process). Three limits, read from
``panda_server.cfg [server]`` beside the connection keys they belong with (seconds; 0 means no limit):

- ``wf_db_connect_timeout`` (20): opening a connection. PostgreSQL: libpq's ``connect_timeout`` (the whole start-up,
  including a server that accepts the TCP connection and never answers; libpq counts at least 2 s). Oracle:
  ``tcp_connect_timeout`` of python-oracledb.
- ``wf_db_statement_timeout`` (120): one statement. PostgreSQL: the session's ``statement_timeout``; and because a
  server that hangs altogether cannot enforce its own timeout, a statement still unanswered after twice that (at
  least 2 s more) has its socket shut down from this process, which ends the call with an error. Oracle:
  ``Connection.call_timeout`` (every round trip to the server, enforced by the client; lock waits included, since
  Oracle has no session lock timeout).
- ``wf_db_lock_timeout`` (30): waiting for a row or table lock held by another session. PostgreSQL: the session's
  ``lock_timeout``. Oracle: bounded by ``call_timeout`` (above).
A statement that hits a limit raises ``DatabaseError`` like any failed statement: the cycle records it, reconnects
and carries on at its next period.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
import datetime
import hashlib
import io
import operator
import re
from typing import Any, Callable, Iterable, Iterator, Sequence

# How a claim locks its rows (``WfDatabase.claim_rows`` adds it). WrappedCursor.execute reads this exact text, after
# its conversion, as Oracle NOWAIT emulated on PostgreSQL (two extra COUNT queries, and an exception when every
# candidate row is locked), so a statement holding it is run upstream's way, except a claim, which wants plain
# SKIP LOCKED and is sent by claim_rows itself.
SKIP_LOCKED = "FOR UPDATE SKIP LOCKED"
CLAIM_LIMIT_BIND = ":claim_n"  # the row limit claim_rows binds on PostgreSQL


_BIND = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(text: str) -> str:
    """Text in COPY's text format: backslash, tab, newline and carriage return escaped. Most values have none of
    them, and one scan in C finds that out (``str.translate`` cost ~0.1 ms on a task's parameters)."""
    if _COPY_SPECIAL.search(text) is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return _copy_text(str(value))


def _copy_line(row: Sequence[Any], stamps: dict) -> str:
    """One row in COPY's text format. Most rows need no escaping: their values as ``str`` gives them (a datetime's
    ``str`` is a timestamp PostgreSQL reads, a bool's 'True'/'False' a boolean), joined and checked once in C for a
    backslash, newline or carriage return, and for a tab inside a value (one tab too many). Only a row that fails the
    check is escaped value by value (``_copy_field``): a pass writes tens of thousands of rows of history. A NULL is
    held by a NUL character until the check (no text value can hold one: PostgreSQL refuses it in text).
    ``stamps`` holds the text of each naive datetime already written in this COPY: the rows of a batch share one
    ``now``, and formatting a datetime was a third of a row's cost (aware ones are not kept: equal instants with
    different offsets have different texts)."""
    line = "\t".join(["\0" if value is None else (stamps.get(value) or _stamp(stamps, value)) if value.__class__ is _DATETIME
                      and value.tzinfo is None else str(value) for value in row])  # (NUL: a NULL's place, checked below)
    if _COPY_SPECIAL_LINE.search(line) is None and line.count("\t") == len(row) - 1 and line.count("\0") == row.count(None):
        return line.replace("\0", "\\N") + "\n"
    return "\t".join(map(_copy_field, row)) + "\n"


def _stamp(stamps: dict, value: datetime.datetime) -> str:
    text = stamps[value] = str(value)
    return text


_DATETIME = datetime.datetime
_COPY_SPECIAL_LINE = re.compile(r"[\\\n\r]")
_FORMS_KEPT = 2000  # converted texts kept per connection


def _cacheable(sql: str) -> bool:
    """Whether upstream's PostgreSQL conversion of ``sql`` depends on the text alone (then it is done once): not for
    JSON field paths (upstream guesses their types from the binds' values) nor backquotes (removed by its execute
    only)."""
    return "/* use_json_type */" not in sql and "`" not in sql


class _BindOrder:
    """One row of binds as upstream's converter reads it, noting the names it takes, in placeholder order.

    The converter asks ``name in row`` and then ``row[name]`` for each placeholder; both are answered from the real
    row, so a missing bind fails there with upstream's own KeyError, and ``names`` ends as the order in which any
    row of the same text is listed.
    """

    __slots__ = ("row", "names")

    def __init__(self, row: dict):
        self.row = row
        self.names: list[str] = []

    def __contains__(self, name) -> bool:
        return name in self.row

    def __getitem__(self, name):
        value = self.row[name]
        self.names.append(name)
        return value


@dataclass(frozen=True)
class PostgresForm:
    """Upstream's PostgreSQL conversion of one Oracle-dialect text (``WfDatabase._postgres_form``).

    ``sql``: the converted text (``%s`` placeholders); ``take(row)``: a row's binds in placeholder order;
    ``names``: those placeholders; ``upstream_execute``: WrappedCursor.execute would not only convert this text but
    emulate NOWAIT (the converted text holds ``FOR UPDATE SKIP LOCKED``), so ``execute`` leaves it to upstream.
    """

    sql: str
    take: Callable[[dict], list]
    names: tuple[str, ...]
    upstream_execute: bool


class DatabaseError(RuntimeError):
    """A statement failed; carries the SQL so the log says which one."""


# panda_server.cfg [server] key -> default seconds (module docstring)
TIMEOUT_KEYS = {"wf_db_connect_timeout": 20.0, "wf_db_statement_timeout": 120.0, "wf_db_lock_timeout": 30.0}


def _seconds(key: str, raw: Any) -> float:
    """A time limit from panda_server.cfg: a non-negative number of seconds (0: no limit); refused with the key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return TIMEOUT_KEYS[key]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"panda_server.cfg [server] {key} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"panda_server.cfg [server] {key} must be 0 (no limit) or a positive number of seconds, got {raw!r}")
    return value


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
    connect_timeout: float = TIMEOUT_KEYS["wf_db_connect_timeout"]
    statement_timeout: float = TIMEOUT_KEYS["wf_db_statement_timeout"]
    lock_timeout: float = TIMEOUT_KEYS["wf_db_lock_timeout"]

    @classmethod
    def from_panda_config(cls) -> "ConnectionSettings":
        """Read the connection keys from panda_server.cfg, like upstream's OraDBProxy.connect, and our time limits
        (``wf_db_*_timeout``, see the module docstring) from the same ``[server]`` section."""
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
            connect_timeout=_seconds("wf_db_connect_timeout", getattr(panda_config, "wf_db_connect_timeout", None)),
            statement_timeout=_seconds("wf_db_statement_timeout", getattr(panda_config, "wf_db_statement_timeout", None)),
            lock_timeout=_seconds("wf_db_lock_timeout", getattr(panda_config, "wf_db_lock_timeout", None)),
        )

    @property
    def answer_deadline(self) -> float | None:
        """Seconds after which a PostgreSQL call still unanswered is cut from this side (None: never). Past the
        server's own statement_timeout, which fires first whenever the server still runs."""
        if not self.statement_timeout:
            return None
        return self.statement_timeout + max(self.statement_timeout, 2.0)

    def postgres_options(self) -> str:
        """The session settings sent with the connection request (libpq ``options``)."""
        limits = {"statement_timeout": self.statement_timeout, "lock_timeout": self.lock_timeout}
        return " ".join(f"-c {name}={int(round(seconds * 1000))}" for name, seconds in limits.items())


class _AnswerWatch:
    """Cuts the socket of a PostgreSQL call that got no answer before its deadline.

    A server whose processes are stopped (or a host that froze) still has its kernel acknowledge our packets, so
    neither TCP keepalives nor the server's statement_timeout ever end a call blocked in libpq; shutting the socket
    down makes libpq see the connection closed and psycopg2 raise. One daemon thread per process looks at the armed
    deadlines twice a second; arming and disarming is a dict write under a lock.
    """

    POLL_SECONDS = 0.5

    def __init__(self):
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, Any]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, raw, seconds: float) -> int:
        with self._lock:
            self._next += 1
            self._armed[self._next] = (time.monotonic() + seconds, raw)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pandajedi_wf-db-answer-watch", daemon=True)
                self._thread.start()
            return self._next

    def disarm(self, token: int) -> None:
        with self._lock:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.POLL_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [token for token, (deadline, _) in self._armed.items() if deadline <= now]
                raws = [self._armed.pop(token)[1] for token in late]
            for raw in raws:
                cut_connection(raw)


def cut_connection(raw) -> None:
    """Shut the socket of a psycopg2 connection down (both directions): a call blocked on it returns at once."""
    with contextlib.suppress(Exception):
        duplicate = socket.socket(fileno=os.dup(raw.fileno()))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


_answer_watch = _AnswerWatch()


def json_value(raw: Any) -> Any:
    """A JSON column as Python data: psycopg2 returns JSONB already decoded, Oracle returns CLOB text."""
    if raw is None or isinstance(raw, (dict, list)):
        return raw
    if hasattr(raw, "read"):
        raw = raw.read()
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode()
    return json.loads(raw) if raw != "" else None


def _as_text(raw: str) -> str:
    return raw


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
        self._statements = 0
        self._siblings: list["WfDatabase"] = []
        self._conn = None
        self._cur = None
        self._in_transaction = False
        self._lock = threading.RLock()
        self._postgres_forms: dict[str, PostgresForm] = {}
        self._staging: dict[tuple, str] = {}  # temporary tables of update_rows, per connection

    # connection -------------------------------------------------------------------------------------------
    def connect(self) -> None:
        from pandaserver.taskbuffer.WrappedCursor import WrappedCursor

        s = self.settings
        if s.backend == "postgres":
            import psycopg2

            from pandaserver.taskbuffer.WrappedPostgresConn import WrappedPostgresConn

            dsn = {"dbname": s.dbname, "user": s.dbuser, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 30,
                   "options": s.postgres_options()}
            if s.connect_timeout:
                dsn["connect_timeout"] = max(int(math.ceil(s.connect_timeout)), 2)
            if s.dbpasswd:
                dsn["password"] = s.dbpasswd
            if s.dbhost:
                dsn["host"] = s.dbhost
            if s.dbport:
                dsn["port"] = s.dbport
            raw = psycopg2.connect(**dsn)
            # JSON columns arrive as text, as Oracle's CLOBs do: json_value decodes them where they are used, so a
            # bulk read does not pay for documents the caller never looks at
            import psycopg2.extras

            psycopg2.extras.register_default_json(raw, loads=_as_text)
            psycopg2.extras.register_default_jsonb(raw, loads=_as_text)
            conn = WrappedPostgresConn(raw)
        elif s.backend == "oracle":
            import oracledb

            from pandaserver.taskbuffer.wrapped_oracle_conn import WrappedOracleConn

            extra = {"tcp_connect_timeout": float(s.connect_timeout)} if s.connect_timeout else {}
            raw = oracledb.connect(dsn=s.dbhost, user=s.dbuser, password=s.dbpasswd, **extra)
            # every round trip, lock waits included (Oracle has no session lock timeout), enforced by the client
            raw.call_timeout = int(round(s.statement_timeout * 1000))

            def _clob_as_text(cursor, name, default_type, size, precision, scale):
                if default_type == oracledb.CLOB:
                    return cursor.var(oracledb.LONG_STRING, arraysize=cursor.arraysize)

            raw.outputtypehandler = _clob_as_text
            conn = WrappedOracleConn(raw)
        else:
            raise DatabaseError(f"backend {s.backend!r} is not supported by pandajedi_wf (oracle or postgres)")
        cur = WrappedCursor(conn)
        cur.initialize()
        self._staging = {}
        # commit/rollback go to the driver's connection: upstream's wrappers find every attribute by first trying
        # the wrapped object inside __getattribute__, which recurses to Python's recursion limit on each access
        self._conn, self._cur = raw, cur

    @property
    def statements(self) -> int:
        """Statements run so far on this connection and its siblings (what the heartbeat and benchmarks report)."""
        return self._statements + sum(s.statements for s in self._siblings)

    def siblings(self, count: int) -> list["WfDatabase"]:
        """``count`` more connections with the same settings, kept with this one (and closed with it), for
        workers that write in their own transactions beside this connection's."""
        while len(self._siblings) < count:
            self._siblings.append(WfDatabase(self.settings))
        return self._siblings[:count]

    def close(self) -> None:
        for sibling in self._siblings:
            sibling.close()
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
            with self._statement(f"SQL: {' '.join(sql.split())[:300]}"):
                form = self._postgres_form(sql, binds or {}) if self.backend == "postgres" and _cacheable(sql) else None
                if form is not None and not form.upstream_execute:
                    self._cur.cur.execute(form.sql, form.take(binds or {}))
                else:  # Oracle, and texts upstream treats specially (NOWAIT emulation, JSON fields): upstream's way
                    self._cur.execute(sql, binds or {})
            return self._cur

    def claim_rows(self, sql: str, binds: dict | None, n: int) -> list[tuple]:
        """The first ``n`` rows of ``sql`` that no other transaction holds, locked until the current transaction ends.

        ``sql`` is a ``SELECT ... ORDER BY ...`` in the Oracle dialect, without a row limit or lock clause: the order
        is the order in which rows are claimed (a fair claim takes the oldest due first). Run it inside
        ``transaction()`` with the UPDATE that marks the rows taken, as a claim of several processors must.

        Oracle applies ``rownum`` before SKIP LOCKED (a second claimer would count the locked rows against its limit
        and may get none while free rows exist), and locks the rows of a ``FOR UPDATE SKIP LOCKED`` cursor as it
        fetches them: there the limit is applied by fetching ``n`` rows of ``sql FOR UPDATE SKIP LOCKED``, with a
        cursor that prefetches no more than that. PostgreSQL applies ``LIMIT`` after skipping locked rows:
        ``sql LIMIT :claim_n FOR UPDATE SKIP LOCKED``, converted by upstream's converter and sent as it is
        (WrappedCursor.execute would emulate NOWAIT instead).
        """
        if n <= 0:
            return []
        if " ORDER BY " not in " ".join(sql.upper().split()):
            raise ValueError("a claim must say in which order rows are taken (ORDER BY)")
        binds = dict(binds or {})
        if CLAIM_LIMIT_BIND in binds:
            raise ValueError(f"{CLAIM_LIMIT_BIND} is the bind claim_rows sets; choose another name")
        with self._lock, self._statement(f"SQL: {' '.join(sql.split())[:300]} (claim {n})"):
            if self.backend == "postgres":
                binds[CLAIM_LIMIT_BIND] = n
                form = self._postgres_form(self.claim_text(sql), binds)
                self._cur.cur.execute(form.sql, form.take(binds))
                return self._cur.cur.fetchall()
            cursor = self._conn.cursor()
            try:
                cursor.prefetchrows = n  # the server locks what it sends: not a row more than the claim takes
                cursor.arraysize = n
                cursor.execute(self._cur.change_schema(self.claim_text(sql)), binds)
                return cursor.fetchmany(n)
            finally:
                cursor.close()

    def claim_text(self, sql: str) -> str:
        """The statement ``claim_rows`` sends for ``sql`` on this connection's backend (``claim_text``)."""
        return claim_text(sql, self.backend)

    @contextlib.contextmanager
    def _statement(self, what: str) -> Iterator[None]:
        """One statement: counted, raised as a DatabaseError that names it, and outside a transaction committed
        (or rolled back when it failed). The caller holds the lock."""
        self._ensure()
        self._statements += 1
        try:
            with self._answered():
                yield
        except Exception as exc:
            if not self._in_transaction:
                self._rollback_quietly()
            raise DatabaseError(f"{type(exc).__name__}: {exc} -- in {what}") from exc
        if not self._in_transaction:
            self._commit()

    @contextlib.contextmanager
    def _answered(self) -> Iterator[None]:
        """A call to the server that must be answered within ``settings.answer_deadline`` (PostgreSQL; Oracle's
        call_timeout does the same inside the driver)."""
        deadline = self.settings.answer_deadline if self.backend == "postgres" else None
        if deadline is None:
            yield
            return
        token = _answer_watch.arm(self._conn, deadline)
        try:
            yield
        finally:
            _answer_watch.disarm(token)

    def _commit(self) -> None:
        try:
            with self._answered():
                self._conn.commit()
        except Exception as exc:
            self._rollback_quietly()
            raise DatabaseError(f"{type(exc).__name__}: {exc} -- in COMMIT") from exc

    def executemany(self, sql: str, rows: Sequence[dict]) -> None:
        if not rows:
            return
        with self._lock, self._statement(f"SQL: {' '.join(sql.split())[:300]}"):
            if self.backend == "postgres":
                self._executemany_postgres(sql, list(rows))
            else:  # oracledb binds the rows as arrays: one round trip already
                self._cur.executemany(sql, list(rows))

    def _executemany_postgres(self, sql: str, rows: list[dict]) -> None:
        """The same Oracle-dialect text, rewritten by upstream's converter, sent in pages of 1,000 rows.

        Upstream's executemany pages by 100 statements; an INSERT ... VALUES goes further as one multi-row INSERT
        per page (psycopg2's execute_values), which is what makes writing a whole batch's history cheap.
        """
        from psycopg2.extras import execute_batch, execute_values

        if "/* use_json_type */" in sql:  # upstream guesses JSON field types from the binds' values: its own way
            from pandaserver.taskbuffer.WrappedCursor import convert_query_in_printf_format

            converted, params = convert_query_in_printf_format(self._cur.change_schema(sql), rows, self._cur.sql_conv_map)
        else:  # (upstream's executemany converts without NOWAIT emulation: so does this, whatever the text)
            form = self._postgres_form(sql, rows[0])
            converted, take = form.sql, form.take
            params = [take(row) for row in rows]
        head, sep, values = converted.partition(" VALUES ")
        if sep and head.lstrip().upper().startswith("INSERT") and values.count("(") >= 1 and values.rstrip().endswith(")"):
            execute_values(self._cur.cur, f"{head} VALUES %s", params, template=values.strip(), page_size=1000)
        else:
            execute_batch(self._cur.cur, converted, params, page_size=1000)

    def _postgres_form(self, sql: str, row: dict) -> PostgresForm:
        """Upstream's conversion of an Oracle-dialect text, computed once per text (with its first row of binds) and
        kept, and a function that lists any row's binds in the order of its placeholders. Upstream's converter
        re-scans the text and looks every bind up one by one for each row, which cost more than the INSERT itself
        for a batch's history. tests/test_taskbuffer_sql_contract.py holds this to upstream's result for every
        statement our taskbuffer runs."""
        form = self._postgres_forms.get(sql)
        if form is None:
            if len(self._postgres_forms) >= _FORMS_KEPT:  # IN lists of every length make many texts: start over
                self._postgres_forms.clear()
            from pandaserver.taskbuffer.WrappedCursor import convert_query_in_printf_format

            first = _BindOrder(row)
            converted, _ = convert_query_in_printf_format(self._cur.change_schema(sql), [first], self._cur.sql_conv_map)
            names = tuple(first.names)
            getter = operator.itemgetter(*names) if names else (lambda row: ())

            def take(row: dict, getter=getter, single=len(names) == 1) -> list:
                try:
                    values = getter(row)
                except KeyError as exc:
                    raise KeyError(f"{exc.args[0]} is missing in SQL parameters") from None
                return [values] if single else list(values)

            form = self._postgres_forms[sql] = PostgresForm(converted, take, names, SKIP_LOCKED in converted)
        return form

    # bulk writes -----------------------------------------------------------------------------------------
    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Many new rows of one of our tables, values in ``columns`` order (ids already drawn from the sequence).

        Oracle binds the rows as arrays in one INSERT; PostgreSQL takes them by COPY, which costs a fraction of a
        multi-row INSERT: the planner's work on a 1,000-row VALUES list was most of a batch's history write.
        """
        if not rows:
            return
        if self.backend != "postgres":
            binds = [f":{c}" for c in columns]
            self.executemany(self.insert_text(table, columns), [dict(zip(binds, row)) for row in rows])
            return
        self._copy_in(f"{self.table(table)} ({', '.join(columns)})", rows)

    def update_rows(self, table: str, assignments: str, where: str, bind_columns: dict[str, str], rows: Sequence[dict]) -> int:
        """``UPDATE table SET assignments WHERE where`` once per row of binds; returns how many rows it changed.

        ``assignments`` and ``where`` are Oracle-dialect text with ``:name`` binds (plain columns mean the row being
        updated); ``bind_columns`` names, for each bind, the column of ``table`` whose type it has. Each row of
        binds must reach other rows than the rest (PostgreSQL applies one of two binds rows meeting one row). Oracle runs
        the statement with array binds; PostgreSQL copies the binds into a temporary table of those types and
        runs one ``UPDATE ... FROM`` (a statement per row costs a parse and a plan each).
        """
        if not rows:
            return 0
        if self.backend != "postgres":
            with self._lock:
                self.executemany(self.update_text(table, assignments, where), rows)
                return int(self._cur.rowcount or 0)
        names = list(bind_columns)

        def as_column(match):
            return f"v.b_{match.group(0)[1:]}"

        # the three statements share the caller's transaction, or one of their own
        with self._lock, (contextlib.nullcontext() if self._in_transaction else self.transaction()):
            staging = self._staging_table(table, bind_columns)
            self.execute(f"TRUNCATE TABLE {staging}")  # (a DELETE would leave dead rows no autovacuum visits)
            self._copy_in(f"{staging} ({', '.join('b_' + n[1:] for n in names)})", [[row[n] for n in names] for row in rows])
            cur = self.execute(
                f"UPDATE {self.table(table)} SET {_BIND.sub(as_column, assignments)} FROM {staging} v WHERE {_BIND.sub(as_column, where)}"
            )
            return int(cur.rowcount or 0)

    def insert_text(self, table: str, columns: Sequence[str]) -> str:
        """The statement ``insert_rows`` runs on Oracle (one bind per column, named like it)."""
        return f"INSERT INTO {self.table(table)} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "

    def update_text(self, table: str, assignments: str, where: str) -> str:
        """The statement ``update_rows`` runs on Oracle."""
        return f"UPDATE {self.table(table)} SET {assignments} WHERE {where} "

    def _staging_table(self, table: str, bind_columns: dict[str, str]) -> str:
        """A session-private table whose columns have the types of the binds' columns (made once per shape)."""
        shape = (table, tuple(bind_columns.items()))
        name = self._staging.get(shape)
        if name is None:
            name = "wf_binds_" + hashlib.sha1(repr(shape).encode()).hexdigest()[:16]
            columns = ", ".join(f"{column} AS b_{bind[1:]}" for bind, column in bind_columns.items())
            # IF NOT EXISTS: a rollback forgets the names (it may have undone the creation) but may also not have
            self.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} AS SELECT {columns} FROM {self.table(table)} WHERE 1=0")
            self._staging[shape] = name
        return name

    def _copy_in(self, target: str, rows: Sequence[Sequence[Any]]) -> None:
        buffer = io.StringIO()
        stamps: dict = {}
        buffer.writelines([_copy_line(row, stamps) for row in rows])
        buffer.seek(0)
        with self._lock, self._statement(f"COPY {target}"):
            self._cur.cur.copy_expert(f"COPY {target} FROM STDIN", buffer)

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
                self._commit()
            finally:
                self._in_transaction = False

    def _rollback_quietly(self) -> None:
        self._staging.clear()
        with contextlib.suppress(Exception), self._answered():
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


def claim_text(sql: str, backend: str) -> str:
    """The statement ``WfDatabase.claim_rows`` sends for ``sql`` on ``backend`` (on PostgreSQL before upstream's
    conversion, which leaves the LIMIT and the lock clause as they are)."""
    if backend == "postgres":
        return f"{sql.rstrip()} LIMIT {CLAIM_LIMIT_BIND} {SKIP_LOCKED}"
    return f"{sql.rstrip()} {SKIP_LOCKED}"


def in_clause(prefix: str, values: Iterable[Any]) -> tuple[str, dict]:
    """``(:p0,:p1,...)`` and its binds: WrappedCursor has no array binds, so IN lists are spelled out."""
    binds = {f":{prefix}{i}": v for i, v in enumerate(values)}
    return "(" + ",".join(binds) + ")", binds


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
