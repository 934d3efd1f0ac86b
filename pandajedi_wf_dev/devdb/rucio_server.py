"""A real Rucio server (PyPI ``rucio``) on loopback for tests, with its catalogue and transfers driven without FTS.

The server runs from its own virtualenv ``.venv-rucio`` (its dependencies may fight upstream PanDA's pins in
``.venv``; :func:`ensure_rucio_venv` creates it once, stamped as ``bin/_bootstrap.sh`` does) on its own database
``rucio`` (owned by a role ``rucio``) in the tests' embedded PostgreSQL cluster. The schema and the root account are
Rucio's own (``build_database()``, ``create_base_vo()``, ``create_root_account()``); gunicorn serves Rucio's Flask
application (``rucio.web.rest.flaskapi.v1.main:application``) on 127.0.0.1 with userpass authentication, the
``generic`` permission and schema policies, and memcached off (its URL is a closed port).

Clients are the ``rucio-clients`` of ``.venv`` (what JEDI's ``AtlasDDMClient`` and our carousel's adapter use):
:meth:`RucioServer.client` gives a ``rucio.client.Client`` for an account, :meth:`RucioServer.client_config` makes
``RucioClient()`` without arguments (as upstream calls it) reach this server, and ``client_config_path`` is a
``rucio.cfg`` for subprocesses (``RUCIO_CONFIG``).

Catalogue helpers (through the client, as an operator would): :meth:`add_rse` (DISK or TAPE, deterministic, a
``file`` protocol, unlimited root quota), :meth:`add_distance` (without a link no transfer is queued),
:meth:`add_account` (root's userpass identity attached, so :meth:`client` can act as it), :meth:`add_scope`,
:meth:`add_dataset` (files with replicas on RSEs registered by root, attached, closed, each copy under a rule, the
dataset replicas counted).

Transfers without FTS (Rucio's own server code, run in ``.venv-rucio`` by :mod:`pandajedi_wf_dev.devdb.rucio_server_ops`,
a long-lived subprocess): :meth:`complete_transfers` (requests ``DONE`` + one ``conveyor-finisher`` pass: replicas
AVAILABLE, locks OK, the rule OK when all are; then one ``abacus-collection-replica`` pass so dataset replicas count
them), :meth:`stick_transfers` (``NO_SOURCES`` with an error + finisher: locks and rule STUCK, ``rule.error`` set),
:meth:`repair_rules` (one ``judge-repairer`` pass: STUCK locks requeued), :meth:`clean_rules` (one ``judge-cleaner``
pass: expired rules removed), :meth:`update_collection_replicas`, :meth:`transfer_requests`.

Usage (tests: the session fixture ``rucio_server`` of tests/conftest.py)::

    server = RucioServer(pg, workdir).start()          # pg: a started EmbeddedPostgres
    server.add_rse("X_TAPE", "TAPE"); server.add_rse("X_DATADISK"); server.add_distance("X_TAPE", "X_DATADISK")
    server.add_scope("data18"); files = server.add_dataset("data18", "data18.ds", ["X_TAPE"], n_files=3)
    rule_id = server.client().add_replication_rule([{"scope": "data18", "name": "data18.ds"}], 1, "X_DATADISK",
                                                   source_replica_expression="X_TAPE", activity="Staging")[0]
    server.complete_transfers(rule_id, names=[files[0]["name"]]); server.stick_transfers(rule_id)
    with server.client_config():                       # RUCIO_CONFIG for argument-less rucio.client.Client()
        ...
    server.stop()

Costs: the venv install ~55 s once; :meth:`RucioServer.start` ~5 s (database ~2 s, gunicorn ~2.5 s); keep one
server per test session. Failures name ``log_path`` (gunicorn and Rucio's server log) and ``ops_log_path``.

CLI (a server for manual work against a running dev PostgreSQL is not offered; the tests own the database)::

    python -m pandajedi_wf_dev.devdb.rucio_server install   # create .venv-rucio (what bin/_bootstrap.sh does)
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Iterable, Iterator

from pandajedi_wf_dev.devdb.embedded_postgres import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUCIO_VENV = ".venv-rucio"
# what the server venv holds; bin/_bootstrap.sh installs the same list (its stamp is this list's hash)
RUCIO_REQUIREMENTS = ("rucio==41.5.1", "psycopg[binary]==3.3.9", "gunicorn==27.0.1")
OPS_SCRIPT = Path(__file__).resolve().with_name("rucio_server_ops.py")
HOST = "127.0.0.1"
DATABASE = "rucio"
DB_ROLE = "rucio"
ROOT_ACCOUNT = "root"
ROOT_IDENTITY = "ddmlab"
DEFAULT_STARTUP_TIMEOUT = 60.0
WSGI_APPLICATION = "rucio.web.rest.flaskapi.v1.main:application"


class RucioServerError(RuntimeError):
    """The server, its database or an operation failed; the message carries the log tail."""


# ---- the server virtualenv ---------------------------------------------------------------------------------


def requirements_stamp() -> str:
    return hashlib.sha1(" ".join(RUCIO_REQUIREMENTS).encode()).hexdigest()[:12]


def rucio_venv_path(root: str | os.PathLike = PROJECT_ROOT) -> Path:
    return Path(root).resolve() / RUCIO_VENV


def _stamp(venv: Path) -> Path:
    return venv / f".installed-rucio-{requirements_stamp()}"


def ensure_rucio_venv(root: str | os.PathLike = PROJECT_ROOT, python: str | None = None, timeout: float = 900) -> Path:
    """``<root>/.venv-rucio`` with :data:`RUCIO_REQUIREMENTS`, installed once (stamped; concurrent callers wait)."""
    venv = rucio_venv_path(root)
    if _stamp(venv).exists():
        return venv
    lock_path = Path(tempfile.gettempdir()) / f"pandajedi_wf-venv-rucio-{hashlib.sha1(str(venv).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp(venv).exists():
            return venv
        python = python or shutil.which("python3") or sys.executable
        log = Path(tempfile.gettempdir()) / f"pandajedi_wf-venv-rucio-install-{os.getpid()}.log"
        steps = (
            [python, "-m", "venv", "--clear", str(venv)],
            [str(venv / "bin" / "pip"), "install", "--quiet", "--upgrade", "pip"],
            [str(venv / "bin" / "pip"), "install", "--quiet", *RUCIO_REQUIREMENTS],
        )
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RucioServerError(f"{' '.join(step)}: {exc}") from exc
            with open(log, "a") as out:
                out.write(f"$ {' '.join(step)}\n{done.stdout}{done.stderr}")
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
                raise RucioServerError(f"{' '.join(step)} failed ({done.returncode}); log in {log}:\n{tail}")
        (venv / ".gitignore").write_text("*\n")  # never committed
        shutil.move(str(log), venv / "install.log")
        _stamp(venv).touch()
    return venv


# ---- the server ----------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _closed_port() -> int:
    """A loopback port nothing listens on (chosen free, then released): Rucio's memcached client fails fast there."""
    return free_port()


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


class RucioServer:
    """Rucio 41.x on 127.0.0.1 over the tests' PostgreSQL ``pg`` (an EmbeddedPostgres), in ``workdir``.

    ``start()`` creates the ``rucio`` role and database (dropped first if left from an earlier server), writes the
    configs, bootstraps the schema and the root account, and starts gunicorn and the operations worker.
    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        pg,
        workdir: str | os.PathLike,
        venv: str | os.PathLike | None = None,
        password: str | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    ):
        self.pg = pg
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.venv = Path(venv).resolve() if venv is not None else None
        self.password = password or f"rucio-{uuid.uuid4().hex[:12]}"
        self.db_password = pg.password
        self.startup_timeout = startup_timeout
        self.server_config_path = self.workdir / "rucio.cfg"
        self.client_config_path = self.workdir / "rucio-client.cfg"
        self.alembic_config_path = self.workdir / "alembic.ini"
        self.log_path = self.workdir / "rucio_server.log"
        self.ops_log_path = self.workdir / "rucio_ops.log"
        self.port: int | None = None
        self._gunicorn: subprocess.Popen | None = None
        self._ops: subprocess.Popen | None = None
        self._ops_lock = threading.Lock()
        self._clients: dict[str, object] = {}

    # ---- addresses and credentials -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise RucioServerError("the Rucio server is not started")
        return f"http://{HOST}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """What a client authenticates with: userpass identity of the root account."""
        return {"account": ROOT_ACCOUNT, "auth_type": "userpass", "username": ROOT_IDENTITY, "password": self.password}

    def client_environment(self) -> dict[str, str]:
        """Variables for a subprocess whose ``rucio-clients`` must reach this server."""
        return {"RUCIO_CONFIG": str(self.client_config_path)}

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> "RucioServer":
        if self._gunicorn is not None:
            return self
        self.venv = self.venv or ensure_rucio_venv()
        for name in ("python", "gunicorn"):
            if not (self.venv / "bin" / name).exists():
                raise RucioServerError(f"{self.venv} has no bin/{name}: run bin/_bootstrap.sh or ensure_rucio_venv()")
        self._create_database()
        last_error = None
        for _ in range(3):  # a free port may be taken between choosing and binding it
            self.port = free_port()
            self._write_configs()
            if last_error is None:
                self._bootstrap()
            try:
                self._start_gunicorn()
                break
            except RucioServerError as exc:
                last_error = exc
        else:
            raise last_error
        return self

    def stop(self) -> None:
        """Stop gunicorn and the operations worker (the database stays until the cluster goes)."""
        for proc in (self._ops, self._gunicorn):
            if proc is None or proc.poll() is not None:
                continue
            try:
                if proc is self._ops:
                    proc.stdin.close()  # the worker ends when its input does
                    proc.wait(timeout=5)
                else:
                    proc.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown (SIGTERM waits for workers)
                    proc.wait(timeout=15)
            except Exception:
                proc.kill()
                proc.wait(timeout=5)
        self._ops = self._gunicorn = None
        self._clients.clear()

    def __enter__(self) -> "RucioServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def is_ready(self) -> bool:
        """The server answers ``GET /ping`` (no authentication) with its version."""
        if self.port is None:
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer:
                return answer.status == 200 and "version" in json.loads(answer.read())
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def log_tail(self, n: int = 40, path: Path | None = None) -> str:
        try:
            return "\n".join((path or self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # ---- clients (in this process: .venv's rucio-clients) ------------------------------------------------

    def client(self, account: str = ROOT_ACCOUNT):
        """A ``rucio.client.Client`` acting as ``account`` (root's userpass identity: root may act for any
        account it is associated with; :meth:`add_account` associates it). Cached per account."""
        if account not in self._clients:
            from rucio.client import Client

            with self.client_config():
                self._clients[account] = Client(
                    rucio_host=self.url,
                    auth_host=self.url,
                    account=account,
                    auth_type="userpass",
                    creds={"username": ROOT_IDENTITY, "password": self.password},
                )
        return self._clients[account]

    @contextlib.contextmanager
    def client_config(self) -> Iterator[Path]:
        """``RUCIO_CONFIG`` names this server's client config inside the block, and rucio's cached config is
        dropped on entry and exit: ``rucio.client.Client()`` without arguments (as upstream's ``AtlasDDMClient``
        builds it) reaches this server."""
        from rucio.common.config import clean_cached_config

        previous = os.environ.get("RUCIO_CONFIG")
        os.environ["RUCIO_CONFIG"] = str(self.client_config_path)
        clean_cached_config()
        try:
            yield self.client_config_path
        finally:
            if previous is None:
                os.environ.pop("RUCIO_CONFIG", None)
            else:
                os.environ["RUCIO_CONFIG"] = previous
            clean_cached_config()

    # ---- catalogue (through the client, as an operator would) ----------------------------------------------

    def add_rse(self, name: str, rse_type: str = "DISK", attributes: dict | None = None) -> str:
        """A deterministic RSE (``DISK`` or ``TAPE``) with a ``file`` protocol under the workdir and an unlimited
        quota for root. ``attributes`` are set as RSE attributes (e.g. ``{"type": "DATADISK"}``)."""
        if rse_type not in ("DISK", "TAPE"):
            raise ValueError(f"rse_type must be DISK or TAPE, got {rse_type!r}")
        client = self.client()
        client.add_rse(name, rse_type=rse_type, deterministic=True, volatile=False)
        client.add_protocol(
            name,
            {
                "scheme": "file",
                "hostname": "localhost",
                "port": 0,
                "prefix": str(self.workdir / "storage" / name) + "/",
                "impl": "rucio.rse.protocols.posix.Default",
                "domains": {
                    "lan": {"read": 1, "write": 1, "delete": 1},
                    "wan": {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 1, "third_party_copy_write": 1},
                },
            },
        )
        for key, value in (attributes or {}).items():
            client.add_rse_attribute(name, key, value)
        client.set_local_account_limit(ROOT_ACCOUNT, name, -1)
        return name

    def add_distance(self, source: str, destination: str, distance: int = 1) -> None:
        """A link ``source`` -> ``destination``: without it Rucio finds no path and queues no transfer."""
        self.client().add_distance(source, destination, {"distance": distance})

    def add_account(self, account: str, account_type: str = "USER", email: str | None = None) -> str:
        """An account; root's userpass identity is associated with it so :meth:`client` can act as it."""
        client = self.client()
        client.add_account(account, account_type, email or f"{account}@example.org")
        client.add_identity(account=account, identity=ROOT_IDENTITY, authtype="USERPASS", email=f"{account}@example.org", default=False, password=self.password)
        return account

    def add_scope(self, scope: str, account: str = ROOT_ACCOUNT) -> str:
        self.client().add_scope(account, scope)
        return scope

    def add_dataset(
        self,
        scope: str,
        name: str,
        rses: Iterable[str],
        n_files: int = 3,
        file_size: int = 1_000_000,
        lfns: list[str] | None = None,
        account: str = ROOT_ACCOUNT,
        close: bool = True,
        file_sizes: list[int] | None = None,
    ) -> list[dict]:
        """Dataset ``scope:name`` of ``account`` with files (``<name>.<NNNNNN>.root`` unless ``lfns``) AVAILABLE on
        each RSE of ``rses`` (``file_sizes`` bytes each, else ``file_size``; replicas registered by root), each copy held by a rule of ``account`` (OK at once), the dataset replicas counted (one
        abacus-collection-replica pass, so ``list_dataset_replicas`` sees them); returns the file dicts."""
        rses = list(rses)
        if not rses:
            raise ValueError("a dataset needs at least one RSE for its replicas")
        lfns = lfns or [f"{name}.{i:06d}.root" for i in range(1, (len(file_sizes) if file_sizes else n_files) + 1)]
        sizes = list(file_sizes) if file_sizes else [file_size] * len(lfns)
        if len(sizes) != len(lfns):
            raise ValueError(f"{len(sizes)} file sizes for {len(lfns)} files")
        files = []
        for lfn, size in zip(lfns, sizes):
            files.append(
                {"scope": scope, "name": lfn, "bytes": size, "adler32": adler32(f"{scope}:{lfn}".encode()), "meta": {"events": 100, "guid": uuid.uuid4().hex}}
            )
        client = self.client(account)
        client.add_dataset(scope, name)
        for rse in rses:  # registered by root, as the storage's own upload tools would (a user may not, on DISK/TAPE)
            self.client().add_replicas(rse, [{k: f[k] for k in ("scope", "name", "bytes", "adler32")} | {"meta": f["meta"]} for f in files])
        client.attach_dids(scope, name, [{"scope": scope, "name": f["name"]} for f in files])
        if close:
            client.close(scope, name)
        for rse in rses:  # data lives under rules (a tape copy under T0's, a disk copy under a subscription's)
            client.add_replication_rule([{"scope": scope, "name": name}], 1, rse, grouping="DATASET", account=account)
        self.update_collection_replicas()
        return files

    # ---- transfers (Rucio's server code in .venv-rucio) ---------------------------------------------------

    def complete_transfers(self, rule_id: str, names: list[str] | None = None) -> dict:
        """FTS's "done" for the rule's transfers (all or ``names``), then one conveyor-finisher pass."""
        return self._op("finish_transfers", rule_id=rule_id, names=names, state="DONE")

    def stick_transfers(self, rule_id: str, names: list[str] | None = None, error: str | None = None, state: str = "NO_SOURCES") -> dict:
        """``state`` (``NO_SOURCES``: the source cannot serve the file; ``FAILED``: the read failed) with ``error``
        (default: the text Rucio's conveyor writes for that state, e.g. ``RequestErrMsg.NO_SOURCES:...``) for the
        rule's transfers (all or ``names``), then one finisher pass: the locks and the rule go STUCK carrying it."""
        return self._op("finish_transfers", rule_id=rule_id, names=names, state=state, error=error)

    def repair_rules(self, delta: int = -1) -> dict:
        """One judge-repairer pass over STUCK rules not updated for ``delta`` seconds (-1: all; Rucio's daemon
        uses 1800): their STUCK locks are requeued (the rules REPLICATING again)."""
        return self._op("repair_rules", delta=delta)

    def clean_rules(self) -> dict:
        """One judge-cleaner pass: expired rules are removed for good (``get_replication_rule`` then RuleNotFound)."""
        return self._op("clean_rules")

    def update_collection_replicas(self) -> None:
        """One abacus-collection-replica pass: dataset replicas count their available files again."""
        self._op("update_collection_replicas")

    def transfer_requests(self, rule_id: str) -> list[dict]:
        """The rule's transfer requests still in Rucio's queue (finished ones are archived): id, scope, name, state,
        dest_rse, source_rse, error."""
        return self._op("transfer_requests", rule_id=rule_id)

    # ---- internals --------------------------------------------------------------------------------------

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "RUCIO_"))}
        env.update(
            {
                "RUCIO_CONFIG": str(self.server_config_path),
                "VIRTUAL_ENV": str(self.venv),
                "PATH": f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
                "TZ": "UTC",
            }
        )
        return env

    def _create_database(self) -> None:
        conn = self.pg.connect("postgres", "postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_ROLE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE ROLE {DB_ROLE} LOGIN PASSWORD %s", (self.db_password,))
                cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
                cur.execute(f"CREATE DATABASE {DATABASE} OWNER {DB_ROLE}")
        finally:
            conn.close()

    def _write_configs(self) -> None:
        log_dir = self.workdir / "log"
        log_dir.mkdir(exist_ok=True)
        db_url = f"postgresql+psycopg://{DB_ROLE}:{self.db_password}@{self.pg.host}:{self.pg.port}/{DATABASE}"
        client_section = f"""\
[client]
rucio_host = {self.url}
auth_host = {self.url}
auth_type = userpass
username = {ROOT_IDENTITY}
password = {self.password}
account = {ROOT_ACCOUNT}
request_retries = 2
"""
        self.server_config_path.write_text(
            f"""\
# written by pandajedi_wf_dev.devdb.rucio_server for tests
[common]
logdir = {log_dir}
loglevel = INFO
logformat = %%(asctime)s\\t%%(process)d\\t%%(levelname)s\\t%%(message)s

{client_section}
[database]
default = {db_url}
pool_size = 5
max_overflow = 5
pool_reset_on_return = rollback
echo = 0

[alembic]
cfg = {self.alembic_config_path}

[bootstrap]
userpass_identity = {ROOT_IDENTITY}
userpass_pwd = {self.password}
userpass_email = root@example.org

[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = hash

[cache]
# memcached off: nothing listens there, every cache access misses at once
url = {HOST}:{_closed_port()}

[monitor]
enable_metrics = False

[conveyor]
scheme = file,root,davs,https
"""
        )
        self.client_config_path.write_text(f"# written by pandajedi_wf_dev.devdb.rucio_server for tests\n{client_section}")
        migrate_repo = self.venv / "lib" / f"python{self._venv_python_version()}" / "site-packages" / "rucio" / "db" / "sqla" / "migrate_repo"
        self.alembic_config_path.write_text(
            f"""\
[alembic]
script_location = {migrate_repo}
sqlalchemy.url = {db_url}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %%(levelname)-5.5s [%%(name)s] %%(message)s
"""
        )

    def _venv_python_version(self) -> str:
        libs = sorted(p.name for p in (self.venv / "lib").glob("python3.*"))
        if not libs:
            raise RucioServerError(f"{self.venv}/lib has no python3.* directory")
        return libs[-1][len("python") :]

    def _bootstrap(self) -> None:
        with open(self.ops_log_path, "a") as log:
            done = subprocess.run(
                [str(self.venv / "bin" / "python"), str(OPS_SCRIPT), "bootstrap"],
                env=self._server_env(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                timeout=self.startup_timeout,
            )
        if done.returncode != 0:
            raise RucioServerError(f"Rucio database bootstrap failed ({done.returncode}); log {self.ops_log_path}:\n{self.log_tail(path=self.ops_log_path)}")

    def _start_gunicorn(self) -> None:
        cmd = [
            str(self.venv / "bin" / "gunicorn"),
            "--bind", f"{HOST}:{self.port}",
            "--workers", "1",
            "--threads", "4",
            "--timeout", "120",
            "--graceful-timeout", "5",
            "--error-logfile", "-",
            WSGI_APPLICATION,
        ]  # fmt: skip
        log = open(self.log_path, "a")
        try:
            self._gunicorn = subprocess.Popen(
                cmd, env=self._server_env(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._gunicorn.poll() is not None:
                self._gunicorn = None
                raise RucioServerError(f"gunicorn exited at start (port {self.port}); log {self.log_path}:\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RucioServerError(f"Rucio server not ready within {self.startup_timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}")

    def _op(self, op: str, **args):
        with self._ops_lock:
            if self._ops is None or self._ops.poll() is not None:
                if self._gunicorn is None:
                    raise RucioServerError("the Rucio server is not started")
                log = open(self.ops_log_path, "a")
                try:
                    self._ops = subprocess.Popen(
                        [str(self.venv / "bin" / "python"), str(OPS_SCRIPT), "serve"],
                        env=self._server_env(),
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        preexec_fn=_die_with_parent,
                    )
                finally:
                    log.close()
            try:
                self._ops.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
                self._ops.stdin.flush()
                line = self._ops.stdout.readline()
            except (BrokenPipeError, OSError) as exc:
                line, failure = "", exc
            else:
                failure = None
            if not line:
                raise RucioServerError(f"Rucio operations worker died during {op} ({failure}); log {self.ops_log_path}:\n{self.log_tail(path=self.ops_log_path)}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RucioServerError(f"{op}({args}) failed: {answer['error']}\n{answer['traceback']}")
        return answer["result"]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pandajedi_wf_dev.devdb.rucio_server", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["install"])
    parser.parse_args(argv)
    print(ensure_rucio_venv())
    return 0


if __name__ == "__main__":
    sys.exit(main())
