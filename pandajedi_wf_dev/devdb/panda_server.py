"""Upstream panda-server's own WSGI application on loopback, behind a test front end that does Apache's job.

``UpstreamPandaServer`` starts a subprocess running ``pandaserver/server/panda.py:application`` (panda-server
1.0.4, imported as is: not patched, not monkeypatched) against the dev/test PostgreSQL, behind
:class:`ApacheFrontEnd`, a WSGI middleware doing what PanDA's Apache does in front of it:

- **TLS with client certificates, identity from the certificate.** One HTTPS listener on 127.0.0.1 (port chosen
  by the kernel) with the :class:`~pandajedi_wf_dev.devdb.grid_identity.GridAuthority` host certificate; client
  certificates are optional (``SSLVerifyClient optional``), verified against the CA, RFC 3820 proxies allowed.
  From the verified leaf certificate the front end sets ``SSL_CLIENT_S_DN`` (legacy slash form), ``SSL_CLIENT_I_DN``
  and mod_gridsite's ``GRST_CRED_*`` (FQANs read from the proxy's VOMS extension), and removes any such variable
  that did not come from TLS. A request is therefore user A's because it came over a connection authenticated with
  A's proxy: identity is a property of the connection, never of the payload. panda-client sends
  ``X509_USER_PROXY`` as its client certificate exactly as it does against the real server.
- **Routing as ``WSGIScriptAliasMatch``**: ``/server/panda/<method>`` and ``/api/<version>/<module>/<method>`` reach
  upstream with ``SCRIPT_NAME`` = the whole path and ``PATH_INFO`` empty (upstream reads the method from
  ``SCRIPT_NAME``). ``extra_routes`` mounts other WSGI apps on path prefixes, dispatched before upstream like a more
  specific alias: ``{"/api/v1/workflow/get_workflow_details": "pandajedi_wf.server:application"}``; the mounted
  app gets ``SCRIPT_NAME`` = the prefix and ``PATH_INFO`` = the rest (``WSGIScriptAlias`` semantics).
- **``/cache/<file>``** serves files from the server's ``cache_dir`` (where ``upload_cache_file`` writes sandboxes),
  with or without a client certificate, as the ``Alias /cache`` of a real deployment does.

The server process uses a robot proxy with ``/atlas/Role=production`` as its own ``X509_USER_PROXY``: upstream's
``upload_cache_file`` registers each sandbox by calling its own ``register_cache_file`` endpoint over HTTPS
(``PANDA_API_URL_SSL``), which needs the production role.

Startup takes a few seconds (upstream's imports and TaskBuffer); readiness is a file the subprocess writes once
upstream is imported and the socket listens. Everything the subprocess prints goes to ``log_path``; upstream's own
loggers write under ``panda_home/log``.

On PostgreSQL upstream leaves some read transactions open (``DBProxy.getConfigValue`` never commits), so while the
server runs its connection may hold ACCESS SHARE locks: a ``TRUNCATE`` of those tables (the tests' ``clean_db``)
waits until the server stops. Clean before starting a server, stop it before cleaning again.

CLI::

    # a dev database, the server and two grid users (alice, bob); prints each user's client environment
    python -m pandajedi_wf_dev.devdb.panda_server run --workdir DIR [--route /prefix=module:attribute ...]
    # what UpstreamPandaServer starts
    python -m pandajedi_wf_dev.devdb.panda_server serve --config CONFIG.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import mimetypes
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from pandajedi_wf_dev.devdb import panda_home as panda_home_mod
from pandajedi_wf_dev.devdb.grid_identity import GridAuthority, GridUser, apache_ssl_environ

UPSTREAM_APPLICATION = "pandaserver.server.panda:application"
HOST = "127.0.0.1"
# the paths Apache aliases to upstream's panda.py (legacy and refactored API)
UPSTREAM_PATH = re.compile(r"^/(server/panda/[^/]+|api/[^/]+/[^/]+/[^/]+)$")
CACHE_PREFIX = "/cache/"
# variables only TLS may set: dropped from every request before the certificate's are added
_TLS_VARIABLES = re.compile(r"^(SSL_|GRST_|HTTPS$)")
ROBOT_NAME = "pandasrv"
ROBOT_FQAN = "/atlas/Role=production"
DEFAULT_STARTUP_TIMEOUT = 180.0


class PandaServerStartError(RuntimeError):
    """The server subprocess did not become ready; the message carries its log tail."""


class ApacheFrontEnd:
    """WSGI middleware: certificate identity, ``/cache/``, extra routes, then upstream (see the module doc).

    ``upstream`` may be set after construction (the subprocess binds its socket before importing upstream).
    """

    def __init__(self, cache_dir: str | os.PathLike, upstream: Callable | None = None, routes: dict[str, Callable] | None = None):
        self.cache_dir = Path(cache_dir).resolve()
        self.upstream = upstream
        # longest prefix first, like the most specific alias
        self.routes = sorted((routes or {}).items(), key=lambda item: -len(item[0]))

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        leaf_pem = environ.get("SSL_CLIENT_CERT")  # werkzeug sets it from the TLS peer certificate only
        for key in [k for k in environ if _TLS_VARIABLES.match(k)]:
            del environ[key]
        environ.update(apache_ssl_environ(leaf_pem))
        environ.setdefault("HTTPS", "on" if environ.get("wsgi.url_scheme") == "https" else "off")
        if path.startswith(CACHE_PREFIX):
            return self._cache_file(path[len(CACHE_PREFIX) :], environ, start_response)
        for prefix, app in self.routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                environ["SCRIPT_NAME"] = prefix.rstrip("/")
                environ["PATH_INFO"] = path[len(prefix.rstrip("/")) :]
                return app(environ, start_response)
        if UPSTREAM_PATH.match(path) and self.upstream is not None:
            environ["SCRIPT_NAME"] = path
            environ["PATH_INFO"] = ""
            return self.upstream(environ, start_response)
        return _plain(start_response, "404 Not Found", f"no route for {path}\n")

    def _cache_file(self, name: str, environ, start_response):
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "cache files are read-only\n")
        target = (self.cache_dir / name).resolve()
        if not name or not target.is_relative_to(self.cache_dir) or not target.is_file():
            return _plain(start_response, "404 Not Found", f"no cache file {name}\n")
        data = target.read_bytes()
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [data]


def _plain(start_response, status: str, text: str):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def identity_echo(environ, start_response):
    """A WSGI app answering with what the front end handed it: ``SCRIPT_NAME``, ``PATH_INFO``, ``SSL_CLIENT_S_DN``,
    ``GRST_CRED_*``. Mount it (``extra_routes={"/whoami": "pandajedi_wf_dev.devdb.panda_server:identity_echo"}``) to see
    what a mounted app gets."""
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "HTTPS", "SSL_CLIENT_S_DN", "SSL_CLIENT_I_DN")
    answer = {key: environ.get(key) for key in keys}
    creds = sorted((key for key in environ if re.fullmatch(r"GRST_CRED_\d+", key)), key=lambda key: int(key.rsplit("_", 1)[1]))
    answer["GRST_CRED"] = [environ[key] for key in creds]
    body = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def load_wsgi_app(target: str) -> Callable:
    """``"package.module:attribute"`` -> the WSGI callable."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"WSGI app must be given as 'module:attribute', got {target!r}")
    return getattr(importlib.import_module(module_name), attribute)


class UpstreamPandaServer:
    """Upstream panda-server's WSGI app behind :class:`ApacheFrontEnd`, in a subprocess on 127.0.0.1.

    ``panda_home``: a directory written by ``panda_home.write_panda_home`` (its ``cache_dir`` is served and written);
    ``pg``: the running EmbeddedPostgres (anything with ``env()``) with the schemas loaded;
    ``workdir``: where the config, the log and (if ``grid`` is None) the grid authority go;
    ``extra_routes``: ``{path prefix: "module:attribute"}`` WSGI apps dispatched before upstream.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        panda_home: str | os.PathLike,
        pg,
        workdir: str | os.PathLike,
        grid: GridAuthority | None = None,
        extra_routes: dict[str, str] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    ):
        self.panda_home = Path(panda_home).resolve()
        self.pg = pg
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.grid = grid or GridAuthority(self.workdir / "grid")
        self.extra_routes = dict(extra_routes or {})
        for prefix, target in self.extra_routes.items():
            if not prefix.startswith("/") or ":" not in target:
                raise ValueError(f"extra route must map '/path/prefix' to 'module:attribute', got {prefix!r}: {target!r}")
        self.startup_timeout = startup_timeout
        self.cache_dir = self.panda_home / "cache"
        self.log_path = self.workdir / "panda_server.log"
        self.upstream_log_dir = self.panda_home / "log"
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    # ---- addresses ------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the PanDA server is not started")
        return f"https://{HOST}:{self.port}"

    @property
    def panda_url(self) -> str:
        """``PANDA_URL_SSL`` / ``PANDACACHE_URL`` for panda-client."""
        return f"{self.base_url}/server/panda"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def cache_url(self, file_name: str) -> str:
        return f"{self.base_url}/cache/{file_name}"

    def tls(self, user: GridUser | None = None) -> dict:
        """``requests``/``httpx`` keyword arguments to reach the server as ``user`` (or anonymously)."""
        kwargs = {"verify": str(self.grid.ca_file)}
        if user is not None:
            kwargs["cert"] = (str(user.proxy_path), str(user.proxy_path))
        return kwargs

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> "UpstreamPandaServer":
        if self._process is not None:
            return self
        robot = self.grid.user(ROBOT_NAME, "PanDA Server Robot", fqans=(ROBOT_FQAN,))
        ready_file = self.workdir / "panda_server.ready"
        ready_file.unlink(missing_ok=True)
        config = {
            "cache_dir": str(self.cache_dir),
            "host_cert": str(self.grid.host_cert),
            "host_key": str(self.grid.host_key),
            "ca_file": str(self.grid.ca_file),
            "routes": self.extra_routes,
            "ready_file": str(ready_file),
            "parent_pid": os.getpid(),
        }
        config_path = self.workdir / "panda_server.json"
        config_path.write_text(json.dumps(config, indent=1))
        env = dict(os.environ)
        env.update(panda_home_mod.environment(self.panda_home, self.pg.env()))
        paths = panda_home_mod.upstream_paths() + [str(Path(__file__).resolve().parents[2])]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]))
        # the server's own identity, for its calls to itself (register_cache_file)
        env["X509_USER_PROXY"] = str(robot.proxy_path)
        env["X509_CERT_DIR"] = str(self.grid.cert_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "pandajedi_wf_dev.devdb.panda_server", "serve", "--config", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(self.workdir),
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if ready_file.exists():
                self.port = int(json.loads(ready_file.read_text())["port"])
                return self
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise PandaServerStartError(f"upstream PanDA server exited with {code} before it was ready; {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.2)
        self.stop()
        raise PandaServerStartError(f"upstream PanDA server not ready after {self.startup_timeout:.0f} s; {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        self.port = None

    def __enter__(self) -> "UpstreamPandaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- the subprocess --------------------------------------------------------------------------------------------


def serve(config_path: str) -> None:
    """Bind the HTTPS socket, import upstream, announce readiness, serve until SIGTERM or the parent's death."""
    import ssl

    from werkzeug.serving import make_server

    config = json.loads(Path(config_path).read_text())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config["host_cert"], config["host_key"])
    context.load_verify_locations(config["ca_file"])
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    front_end = ApacheFrontEnd(config["cache_dir"])
    server = make_server(HOST, 0, front_end, threaded=True, ssl_context=context)
    port = server.socket.getsockname()[1]
    base = f"https://{HOST}:{port}"
    # read at import time by upstream's HTTP clients (the server calls itself to register sandboxes)
    os.environ.update({
        "PANDA_URL": f"{base}/server/panda",
        "PANDA_URL_SSL": f"{base}/server/panda",
        "PANDA_API_URL": f"{base}/api/v1",
        "PANDA_API_URL_SSL": f"{base}/api/v1",
        "PANDA_BEHIND_REAL_LB": "1",
    })
    print(f"[panda_server] listening on {base}; importing {UPSTREAM_APPLICATION}", flush=True)
    started = time.monotonic()
    front_end.upstream = load_wsgi_app(UPSTREAM_APPLICATION)
    front_end.routes = sorted(((prefix, load_wsgi_app(target)) for prefix, target in config["routes"].items()), key=lambda item: -len(item[0]))
    print(f"[panda_server] upstream imported in {time.monotonic() - started:.1f} s; routes {sorted(config['routes'])}", flush=True)
    _exit_with_parent(int(config["parent_pid"]))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    ready = Path(config["ready_file"])
    ready.with_suffix(".tmp").write_text(json.dumps({"port": port, "pid": os.getpid()}))
    os.replace(ready.with_suffix(".tmp"), ready)
    server.serve_forever()
    print("[panda_server] stopped", flush=True)
    # upstream's TaskBuffer and logger threads are not daemons
    os._exit(0)


def _exit_with_parent(parent_pid: int) -> None:
    def watch():
        while True:
            if os.getppid() != parent_pid:
                print("[panda_server] parent process gone; exiting", flush=True)
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_for_people(workdir: str, routes: list[str]) -> int:
    """A dev database, the server and two grid users, until Ctrl-C: for trying panda-client by hand or in a demo."""
    from pandajedi_wf_dev.devdb.dev_environment import start_dev_environment
    from pandajedi_wf_dev.devdb.panda_client import client_environment, ensure_client_venv

    extra_routes = {}
    for route in routes:
        prefix, _, target = route.partition("=")
        extra_routes[prefix] = target
    workdir_path = Path(workdir).resolve()
    pg, home = start_dev_environment(workdir_path, activate=False)
    server = UpstreamPandaServer(home, pg, workdir_path / "panda_server", extra_routes=extra_routes)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
        venv = ensure_client_venv()
        print(f"upstream PanDA server at {server.base_url} (log {server.log_path}); Ctrl-C stops it and the database")
        for name, full_name in (("alice", "Alice Tester"), ("bob", "Bob Builder")):
            user = server.grid.user(name, full_name)
            config_root = workdir_path / "clients" / name
            config_root.mkdir(parents=True, exist_ok=True)
            env = client_environment(user, server, venv, config_root)
            print(f"\n# as {user.dn}:")
            print(" ".join(f"{key}={shlex.quote(value)}" for key, value in env.items() if key not in ("HOME", "LANG", "TZ")))
        print("\n# then e.g.: pchain_native --wfd chain.yaml --outDS user.alice.test1 ; pbook show 1")
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        pg.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pandajedi_wf_dev.devdb.panda_server")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="a dev database, the server and grid users alice and bob, until Ctrl-C")
    run_parser.add_argument("--workdir", required=True, help="a new directory for the database, certificates and logs")
    run_parser.add_argument("--route", action="append", default=[], help="/path/prefix=module:attribute, dispatched before upstream")
    serve_parser = sub.add_parser("serve", help="run the front end and upstream's WSGI app (what UpstreamPandaServer starts)")
    serve_parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_for_people(args.workdir, args.route)
    serve(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
