"""A throw-away PostgreSQL server for tests and the demo, started from Debian's binaries.

Upstream PanDA/JEDI must run against a real database to prove our plugins work, and
CI runs as root while PostgreSQL refuses to: so the server runs as the ``postgres``
user (``runuser``) when we are root, on a free loopback port, with its socket in its
own directory. A small reaper process stops the server if the owner dies, even by
SIGKILL, so no test run leaves a postmaster behind.

CLI for the demo::

    python -m pandajedi_wf_dev.devdb.embedded_postgres start --dir D   # prints the env to export
    python -m pandajedi_wf_dev.devdb.embedded_postgres stop --dir D
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

DATABASE = "panda_db"
PANDA_ROLE = "panda"
IDDS_ROLE = "idds"
DEFAULT_PASSWORD = "panda-dev-password"
# schema -> owner role; DOMA_* are the names upstream's Postgres deployments use
SCHEMAS = {
    "doma_panda": PANDA_ROLE,
    "doma_deft": PANDA_ROLE,
    "doma_pandameta": PANDA_ROLE,
    "doma_pandaarch": PANDA_ROLE,
    "doma_idds": IDDS_ROLE,
}
STATE_FILE = "embedded_postgres.json"


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class PostgresStartError(RuntimeError):
    """The server did not come up; the message carries the server log tail."""


def find_bin_dir() -> Path:
    """Newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (or $PG_BIN_DIR)."""
    candidates = [os.environ["PG_BIN_DIR"]] if os.environ.get("PG_BIN_DIR") else []
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    candidates += versioned
    for cand in candidates:
        if (Path(cand) / "initdb").is_file() and (Path(cand) / "pg_ctl").is_file():
            return Path(cand)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise PostgresNotFound(
        "no PostgreSQL server binaries (initdb, pg_ctl) found in /usr/lib/postgresql/*/bin, $PG_BIN_DIR or PATH; "
        "install them with `apt-get install postgresql`"
    )


def _version_key(name: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in name.split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``base_dir`` with PanDA's roles, database and schemas.

    ``owns_dir``: the directory is ours to delete on stop (true for a fresh temp dir).
    ``reaper``: start a watcher process that stops the server when this process dies.
    ``port``: fix the port in advance (so the environment can be set before the server
    starts); by default a free one is chosen at start.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike | None = None,
        password: str = DEFAULT_PASSWORD,
        reaper: bool = True,
        port: int | None = None,
    ):
        self.owns_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="pandajedi_wf_pg_"))
        self.password = password
        self.use_reaper = reaper
        self.bin_dir: Path | None = None
        self.fixed_port = port
        self.port: int | None = port
        self.host = "127.0.0.1"
        self._reaper: subprocess.Popen | None = None
        self._started = False

    # --- paths -----------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    # --- lifecycle -------------------------------------------------------
    def start(self) -> "EmbeddedPostgres":
        if self._started:
            return self
        self.bin_dir = find_bin_dir()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if _running_as_root():
            self._hand_over_to_postgres_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        last_error = None
        for _ in range(1 if self.fixed_port else 3):  # a free port may be taken between choosing and binding it
            self.port = self.fixed_port or free_port()
            try:
                self._pg_ctl_start()
                break
            except PostgresStartError as exc:
                last_error = exc
        else:
            raise last_error
        self._started = True
        atexit.register(self.stop)
        if self.use_reaper:
            self._start_reaper()
        self._write_state()
        self._create_roles_and_schemas()
        return self

    def stop(self) -> None:
        """Stop the server (immediate mode: test data is disposable) and remove an owned directory."""
        if self._started:
            _pg_ctl_stop(self.bin_dir, self.data_dir)
            self._started = False
        if self._reaper is not None:
            try:
                self._reaper.stdin.close()
                self._reaper.wait(timeout=10)
            except Exception:
                self._reaper.kill()
            self._reaper = None
        if self.owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- access ----------------------------------------------------------
    def dsn(self, user: str = PANDA_ROLE, dbname: str = DATABASE) -> dict:
        """psycopg2 keyword arguments; roles connect over TCP with a password, the superuser over the socket."""
        if user == "postgres":
            return {"host": str(self.socket_dir), "port": self.port, "user": "postgres", "dbname": dbname}
        return {"host": self.host, "port": self.port, "user": user, "password": self.password, "dbname": dbname}

    def connect(self, user: str = PANDA_ROLE, dbname: str = DATABASE, autocommit: bool = False):
        import psycopg2

        conn = psycopg2.connect(**self.dsn(user, dbname))
        conn.autocommit = autocommit
        return conn

    def env(self) -> dict[str, str]:
        """Variables the PanDA config files refer to as ``${PANDA_DB_*}``."""
        return {
            "PANDA_DB_HOST": self.host,
            "PANDA_DB_PORT": str(self.port),
            "PANDA_DB_USER": PANDA_ROLE,
            "PANDA_DB_PASSWORD": self.password,
            "PANDA_DB_NAME": DATABASE,
        }

    # --- internals -------------------------------------------------------
    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if _running_as_root():
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, **kw)

    def _hand_over_to_postgres_user(self) -> None:
        entry = pwd.getpwnam("postgres")
        for path in [self.base_dir, *self.base_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # postgres must be able to reach base_dir through its parents
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.base_dir)], capture_output=True)
        if probe.returncode != 0:
            raise PostgresStartError(f"user postgres cannot write {self.base_dir}: choose a directory whose parents it can traverse")

    def _initdb(self) -> None:
        res = self._run(
            [
                self.bin_dir / "initdb",
                "-D", self.data_dir,
                "-U", "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if res.returncode != 0:
            raise PostgresStartError(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c timezone=UTC",
                "-c max_connections=200",
            ]
        )
        cmd = [self.bin_dir / "pg_ctl", "start", "-w", "-t", "30", "-D", self.data_dir, "-l", self.log_file, "-o", options]
        cmd = [str(a) for a in cmd]
        if _running_as_root():
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        # own session: a Ctrl-C meant for the tests must not shut the server down under them
        res = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
        if res.returncode != 0:
            raise PostgresStartError(f"pg_ctl start failed (port {self.port}): {res.stderr.strip()}\n{self._log_tail()}")

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-n:])
        except OSError:
            return ""

    def _create_roles_and_schemas(self) -> None:
        conn = self.connect("postgres", "postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                for role in (PANDA_ROLE, IDDS_ROLE):
                    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                    if cur.fetchone() is None:
                        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (self.password,))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DATABASE} OWNER {PANDA_ROLE}")
        finally:
            conn.close()
        conn = self.connect("postgres", DATABASE, autocommit=True)
        try:
            with conn.cursor() as cur:
                for schema, owner in SCHEMAS.items():
                    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {owner}")
                cur.execute(f"GRANT USAGE ON SCHEMA doma_idds TO {PANDA_ROLE}")
                cur.execute(f"ALTER ROLE {PANDA_ROLE} SET search_path = doma_panda, public")
                cur.execute(f"ALTER ROLE {IDDS_ROLE} SET search_path = doma_idds, public")
        finally:
            conn.close()

    def _write_state(self) -> None:
        state = {"port": self.port, "bin_dir": str(self.bin_dir), "data_dir": str(self.data_dir), "password": self.password}
        (self.base_dir / STATE_FILE).write_text(json.dumps(state))

    def _start_reaper(self) -> None:
        """A process that waits for our end of a pipe to close, then stops the server."""
        args = [sys.executable, "-m", "pandajedi_wf_dev.devdb.embedded_postgres", "_reap", "--dir", str(self.base_dir)]
        if self.owns_dir:
            args.append("--remove")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
        self._reaper = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
        )

    @classmethod
    def attach(cls, base_dir: str | os.PathLike) -> "EmbeddedPostgres":
        """An object for a server started earlier in ``base_dir`` (by the CLI); stop() stops it."""
        base = Path(base_dir)
        state_path = base / STATE_FILE
        if not state_path.exists():
            raise FileNotFoundError(f"no embedded PostgreSQL state in {base} ({STATE_FILE} missing)")
        state = json.loads(state_path.read_text())
        pg = cls(base, password=state["password"], reaper=False)
        pg.bin_dir = Path(state["bin_dir"])
        pg.port = state["port"]
        pg._started = (pg.data_dir / "postmaster.pid").exists()
        return pg


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _pg_ctl_stop(bin_dir: Path, data_dir: Path) -> None:
    if not (data_dir / "postmaster.pid").exists():
        return
    cmd = [str(bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-w", "-t", "20", "-D", str(data_dir)]
    if _running_as_root():
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, capture_output=True, text=True)


def _reap(base_dir: Path, remove: bool) -> None:
    try:
        sys.stdin.buffer.read()  # returns when the owner closes the pipe or dies
    except Exception:
        pass
    state_path = base_dir / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        _pg_ctl_stop(Path(state["bin_dir"]), Path(state["data_dir"]))
    if remove:
        shutil.rmtree(base_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pandajedi_wf_dev.devdb.embedded_postgres", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "env", "_reap"])
    parser.add_argument("--dir", required=True, help="directory holding the cluster (created by start)")
    parser.add_argument("--remove", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = Path(args.dir).resolve()
    if args.action == "_reap":
        _reap(base, args.remove)
        return 0
    if args.action == "start":
        pg = EmbeddedPostgres(base, reaper=False)
        pg.start()
        atexit.unregister(pg.stop)  # the CLI leaves the server running for the demo
    else:
        pg = EmbeddedPostgres.attach(base)
    if args.action == "stop":
        pg.stop()
        print(f"stopped PostgreSQL in {base}")
        return 0
    for key, value in pg.env().items():
        print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
