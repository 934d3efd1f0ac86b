"""The real panda-client (PyPI ``panda-client``) in its own virtualenv, run as a grid user against our server.

panda-client owns the ``pandaclient`` package, as does ``panda-client-light`` which upstream's server needs, so
the two cannot share ``.venv``; a user's client is a separate install anyway. :func:`ensure_client_venv` creates
``<root>/.venv-client`` with the pinned version once (stamped, like ``bin/_bootstrap.sh`` does), and
:func:`run_client` runs one of its commands (``pchain_native``, ``pbook``, ``prun``, ...) the way a user's shell
would: the command's bash wrapper sources ``$PANDA_SYS/etc/panda/share/functions.sh``, which picks the Python of
``$VIRTUAL_ENV``.

Authentication is what a grid user has: ``X509_USER_PROXY`` is a real VOMS proxy of the
:class:`~pandajedi_wf_dev.devdb.grid_identity.GridUser` (``voms-proxy-info``, from Debian's ``voms-clients``, reads it for
the client's proxy check, nickname and user name), ``X509_CERT_DIR`` the test CA; the client presents the proxy
as its TLS client certificate and the server's front end takes the DN and FQANs from it. ``auth="x509_no_grid"``
(``PANDA_AUTH=x509_no_grid`` + ``PANDA_NICKNAME``, no grid tools) works for ``pchain_native`` and ``prun``, but
``pbook`` 2.2.0 fails in that mode at start-up (``PsubUtils.extract_voms_proxy_username`` splits a tuple:
``AttributeError: 'tuple' object has no attribute 'split'``), so the default is the grid mode.

pbook without a terminal: batch mode is ``pbook <command> <args> [--kwarg=value]``, e.g. ``pbook show 5`` (an id
below 10**7 is a reqID: the user's tasks with that reqID) or ``pbook show 5 --format=long``; ``pbook -c "show(5)"``
runs a Python snippet in the pbook namespace (a forked child, exit code 1 when the command returned a failure).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pandajedi_wf_dev.devdb.grid_identity import GridUser

PANDA_CLIENT_VERSION = "2.2.0"
CLIENT_VENV = ".venv-client"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
AUTH_MODES = ("x509", "x509_no_grid")


class ClientVenvError(RuntimeError):
    """The client virtualenv could not be created; the message carries the pip log tail."""


def client_venv_path(root: str | os.PathLike = PROJECT_ROOT) -> Path:
    return Path(root).resolve() / CLIENT_VENV


def _stamp(venv: Path) -> Path:
    return venv / f".installed-panda-client-{PANDA_CLIENT_VERSION}"


def ensure_client_venv(root: str | os.PathLike = PROJECT_ROOT, python: str | None = None, timeout: float = 900) -> Path:
    """``<root>/.venv-client`` with ``panda-client==PANDA_CLIENT_VERSION``; created and installed once (stamped).

    Concurrent callers wait for one another (a lock file in the temporary directory). Raises :class:`ClientVenvError`.
    """
    venv = client_venv_path(root)
    if _stamp(venv).exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = Path(tempfile.gettempdir()) / f"pandajedi_wf-venv-client-{hashlib.sha1(str(venv).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp(venv).exists():
            return venv
        python = python or shutil.which("python3") or sys.executable
        _run_step([python, "-m", "venv", "--clear", str(venv)], None, timeout)
        (venv / ".gitignore").write_text("*\n")  # never committed, whatever the repository's .gitignore says
        log = venv / "install.log"
        for step in (
            [str(venv / "bin" / "pip"), "install", "--quiet", "--upgrade", "pip"],
            [str(venv / "bin" / "pip"), "install", "--quiet", f"panda-client=={PANDA_CLIENT_VERSION}"],
        ):
            _run_step(step, log, timeout)
        _stamp(venv).touch()
    return venv


def _run_step(step: list[str], log: Path | None, timeout: float) -> None:
    """Run one install step; its output is appended to ``log`` (if given) and quoted on failure."""
    try:
        done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClientVenvError(f"{' '.join(step)}: {exc}") from exc
    output = done.stdout + done.stderr
    if log is not None:
        with open(log, "a") as out:
            out.write(f"$ {' '.join(step)}\n{output}")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise ClientVenvError(f"{' '.join(step)} failed ({done.returncode}){f'; log in {log}' if log else ''}:\n{tail}")


def client_environment(user: GridUser, server, venv: str | os.PathLike, config_root: str | os.PathLike, auth: str = "x509") -> dict[str, str]:
    """The environment of ``user``'s shell with panda-client set up against ``server`` (an UpstreamPandaServer)."""
    if auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    venv = Path(venv).resolve()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(config_root),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "VIRTUAL_ENV": str(venv),
        "PANDA_SYS": str(venv),
        "PANDA_CONFIG_ROOT": str(config_root),
        "PANDA_URL": server.panda_url,
        "PANDA_URL_SSL": server.panda_url,
        "PANDACACHE_URL": server.panda_url,
        "PANDAMON_URL": server.base_url,
        "PANDA_BEHIND_REAL_LB": "1",
        "X509_USER_PROXY": str(user.proxy_path),
        "X509_CERT_DIR": str(server.grid.cert_dir),
        # rich (pbook's tables) wraps at the terminal width; without a terminal give it a wide one
        "COLUMNS": "200",
    }
    if auth == "x509_no_grid":
        env["PANDA_AUTH"] = "x509_no_grid"
        env["PANDA_NICKNAME"] = user.nickname
    return env


def run_client(
    cmd_args: list[str],
    user: GridUser,
    server,
    cwd: str | os.PathLike,
    input: str | None = None,
    timeout: float = 120,
    auth: str = "x509",
    venv: str | os.PathLike | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``cmd_args`` (``["pchain_native", "--wfd", ...]``, ``["pbook", "show", "5"]``) from the client venv as
    ``user`` against ``server``, in ``cwd``; returns the CompletedProcess (text stdout/stderr, not checked).

    ``PANDA_CONFIG_ROOT`` (and ``HOME``) is a fresh temporary directory per call, so no state leaks between calls.
    """
    venv = Path(venv) if venv is not None else ensure_client_venv()
    command = venv / "bin" / cmd_args[0]
    if not command.exists():
        raise FileNotFoundError(f"{cmd_args[0]} is not a panda-client command in {venv / 'bin'}")
    with tempfile.TemporaryDirectory(prefix=f"panda_client_{user.name}_") as config_root:
        env = client_environment(user, server, venv, config_root, auth)
        env.update(extra_env or {})
        return subprocess.run(
            [str(command), *cmd_args[1:]],
            cwd=str(cwd),
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
