"""Run upstream's JediMaster as a real daemon against the dev environment, and stop it.

``pandajedi/jediorder/JediMaster.py`` daemonises itself (python-daemon: fork, setsid,
fork), so the process we start exits at once and the master lives on in a new session.
It writes its pid to ``--pid``; its agents are forked children in the master's process
group, so killing that group stops all of JEDI. The environment must already hold
PANDA_HOME and the DB variables (``panda_home.activate``), which the child inherits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def jedi_master_script() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pandajedi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("upstream pandajedi is not installed (pip install panda-server-source)")
    return Path(list(spec.submodule_search_locations)[0]) / "jediorder" / "JediMaster.py"


class JediMasterProcess:
    """A running JediMaster; ``stop()`` kills its whole process group."""

    def __init__(self, run_dir: str | os.PathLike, env: dict[str, str] | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file = self.run_dir / "jedi_master.pid"
        self.log_file = self.run_dir / "jedi_master.out"
        self.env = dict(env if env is not None else os.environ)
        self.pid: int | None = None
        self.pgid: int | None = None

    def start(self, timeout: float = 20) -> "JediMasterProcess":
        if "PANDA_HOME" not in self.env:
            raise RuntimeError("PANDA_HOME is not set: call pandajedi_wf_dev.devdb.panda_home.activate() first")
        self.pid_file.unlink(missing_ok=True)
        with open(self.log_file, "ab") as out:
            launcher = subprocess.Popen(
                [sys.executable, str(jedi_master_script()), "--pid", str(self.pid_file)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        launcher.wait(timeout=timeout)  # returns as soon as the daemon has detached
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.pid_file.read_text().strip() if self.pid_file.exists() else ""
            if text.isdigit():
                self.pid = int(text)
                self.pgid = os.getpgid(self.pid)
                return self
            time.sleep(0.1)
        raise RuntimeError(f"JediMaster wrote no pid file within {timeout} s; its output:\n{self.output_tail()}")

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pgid = None
        self.pid_file.unlink(missing_ok=True)

    def output_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> "JediMasterProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
