"""A PANDA_HOME with the config files upstream PanDA/JEDI read at import time.

Upstream reads ``panda_server.cfg``, ``panda_jedi.cfg`` and ``panda_common.cfg`` from
``$PANDA_HOME/etc/panda/`` when its modules are first imported, and replaces a value
written ``${VAR}`` by the environment variable VAR. So the files here name the database
only through ``${PANDA_DB_*}``: one static directory follows a server on any port, and
``activate()`` must run before the first ``pandaserver``/``pandajedi`` import.

Only our two WatchDog plugins run by default; the other JEDI agents get zero
processes unless ``agents`` asks for them (a demo may want the refiner and feeder).
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

WATCHDOG_PLUGINS = {
    "wf_processor": "pandajedi_wf.jedi_agents.workflow_watchdog:WorkflowProcessorWatchDog",
    "wf_carousel": "pandajedi_wf.jedi_agents.carousel_watchdog:DataCarouselWatchDog",
}
# [jobbroker]: the workflow-aware job broker, wrapping the broker named in its ``wf_inner_modConfig``
JOB_BROKER_PLUGIN = "pandajedi_wf.jedi_agents.brokers:WorkflowJobBroker"
# [taskbroker]: the workflow-aware task broker, wrapping the one named in its ``wf_inner_modConfig``
TASK_BROKER_PLUGIN = "pandajedi_wf.jedi_agents.task_brokers:WorkflowTaskBroker"
VO = "wlcg"
# JediMaster forks nProc processes per agent section; these are the sections it knows
AGENT_SECTIONS = ("taskrefine", "taskbroker", "confeeder", "jobgen", "postprocessor", "tcommando")


def write_panda_home(
    panda_home: str | os.PathLike,
    watchdog_period: int = 60,
    agents: dict[str, int] | None = None,
    vo: str = VO,
    watchdog_options: dict[str, str] | None = None,
    jedi_options: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write ``etc/panda/*.cfg`` under ``panda_home`` and a ``log`` dir; return the path.

    ``watchdog_period``: seconds between cycles of our WatchDog plugins.
    ``agents``: processes per other JEDI agent section, e.g. ``{"taskrefine": 1}``; default none.
    ``watchdog_options``: more ``[watchdog]`` keys, e.g. ``{"wf_processor_intake": "on"}``.
    ``jedi_options``: ``{section: {key: value}}`` set in ``panda_jedi.cfg`` (a key the section has is replaced,
    a new key or section added), e.g. ``{"ddm": {"modConfig": "atlas:1:pandajedi.jediddm.AtlasDDMClient:AtlasDDMClient"}}``.
    """
    agents = dict(agents or {})
    unknown = set(agents) - set(AGENT_SECTIONS)
    if unknown:
        raise ValueError(f"unknown JEDI agent section(s) {sorted(unknown)}; known: {', '.join(AGENT_SECTIONS)}")
    if int(watchdog_period) < 1:
        raise ValueError(f"watchdog_period must be a positive number of seconds, got {watchdog_period!r}")
    home = Path(panda_home).resolve()
    etc = home / "etc" / "panda"
    etc.mkdir(parents=True, exist_ok=True)
    log_dir = home / "log"
    log_dir.mkdir(exist_ok=True)
    cache_dir = home / "cache"
    cache_dir.mkdir(exist_ok=True)
    (etc / "panda_server.cfg").write_text(_server_cfg(cache_dir, log_dir))
    jedi_cfg = _jedi_cfg(vo, int(watchdog_period), agents)
    extra = "".join(f"{key} = {value}\n" for key, value in (watchdog_options or {}).items())
    jedi_cfg = jedi_cfg.replace("\n[watchdog]\n", f"\n[watchdog]\n{extra}", 1)
    (etc / "panda_jedi.cfg").write_text(_set_options(jedi_cfg, jedi_options or {}))
    (etc / "panda_common.cfg").write_text(_common_cfg(log_dir))
    return home


def _set_options(cfg: str, options: dict[str, dict[str, str]]) -> str:
    """``cfg`` (ini text) with ``options[section][key] = value`` set: existing ``key = ...`` lines of the section
    replaced, other keys added under the section header, missing sections appended."""
    pending = {section: dict(keys) for section, keys in options.items()}
    out: list[str] = []
    section = None
    for line in cfg.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            out.append(line)
            continue
        key = stripped.split("=", 1)[0].strip() if "=" in stripped and not stripped.startswith("#") else None
        if section in pending and key in pending[section]:
            out.append(f"{key} = {pending[section].pop(key)}")
            continue
        out.append(line)
    for section, keys in pending.items():
        if not keys:
            continue
        header = f"[{section}]"
        lines = [f"{key} = {value}" for key, value in keys.items()]
        if header in out:
            at = out.index(header) + 1
            out[at:at] = lines
        else:
            out += ["", header, *lines]
    return "\n".join(out) + "\n"


def _server_cfg(cache_dir: Path, log_dir: Path) -> str:
    return f"""\
# written by pandajedi_wf_dev.devdb.panda_home for tests and the demo
[server]
backend = postgres
dbhost = ${{PANDA_DB_HOST}}
dbport = ${{PANDA_DB_PORT}}
dbuser = ${{PANDA_DB_USER}}
dbpasswd = ${{PANDA_DB_PASSWORD}}
dbname = ${{PANDA_DB_NAME}}
dbtimeout = 60
nDBConnection = 1
schemaPANDA = DOMA_PANDA
schemaJEDI = DOMA_PANDA
schemaDEFT = DOMA_DEFT
schemaMETA = DOMA_PANDAMETA
schemaPANDAARCH = DOMA_PANDAARCH
useJEDI = True
dump_sql = False
cache_dir = {cache_dir}
logdir = {log_dir}
pserveralias = localhost
pserverportcache = 25085
pserverhost = localhost
pserverhosthttp = localhost
pserverporthttp = 25080
record_statuschange = False
pandaEmailNotification = False
auth_config = {cache_dir}
token_cache_config = {cache_dir}/token_cache_config.json
endpoint_mapfile = {cache_dir}/ddmendpoints.json
configurator_use_cert = False
# read by upstream's WSGI application (pandaserver/server/panda.py) when it runs (devdb.panda_server):
# log each request's parameter names; clients authenticate by X.509 proxy only (no token decoding)
entryVerbose = True
token_authType = None
# upload_cache_file registers each sandbox in DOMA_PANDAMETA.usercacheusage (through the server's own
# register_cache_file endpoint, as upstream does) under this host name, so validate_cache_file can offer it for reuse
record_sandbox_info = True
sandboxHostname = 127.0.0.1
# cache files whose names match are stored gzipped; sandboxes (jobO.*.tar.gz, sources.*) must not match
compress_file_names = \\.log$
"""


def _jedi_cfg(vo: str, period: int, agents: dict[str, int]) -> str:
    mod_entries = ",".join(f"{vo}:any:{target}:{name}" for name, target in WATCHDOG_PLUGINS.items())
    proc_entries = ";".join(f"{vo}:any:1:{name}:{period}" for name in WATCHDOG_PLUGINS)

    def proc(section: str) -> str:
        return f"{vo}:any:{agents.get(section, 0)}"

    return f"""\
# written by pandajedi_wf_dev.devdb.panda_home for tests and the demo
[master]
uname =
gname =
loggername = jedi

[db]
dbhost = ${{PANDA_DB_HOST}}
dbpasswd = ${{PANDA_DB_PASSWORD}}
dbuser = ${{PANDA_DB_USER}}
dbname = ${{PANDA_DB_NAME}}
dbport = ${{PANDA_DB_PORT}}
nWorkers = 2
schemaJEDI = DOMA_PANDA
schemaDEFT = DOMA_DEFT
schemaPANDA = DOMA_PANDA
schemaPANDAARCH = DOMA_PANDAARCH
schemaMETA = DOMA_PANDAMETA

[ddm]
modConfig = {vo}:1:pandajedi.jediddm.GenDDMClient:GenDDMClient
voWithScope = {vo}
user_scope_in_lowercase = True

[confeeder]
procConfig = {proc("confeeder")}
nWorkers = 1
loopCycle = 5
checkInterval = 5

[taskrefine]
# production tasks (label managed) through our refiner plugin: upstream's GenTaskRefiner with tape inputs routed to
# our carousel (pandajedi_wf.jedi_agents.task_refiner); every other label through upstream's GenTaskRefiner alone
modConfig = {vo}:managed:pandajedi_wf.jedi_agents.task_refiner:GenTaskRefiner,{vo}:any:pandajedi.jedirefine.GenTaskRefiner:GenTaskRefiner
wf_refiner_classes = GenTaskRefiner=pandajedi.jedirefine.GenTaskRefiner:GenTaskRefiner
procConfig = {proc("taskrefine")}
nWorkers = 1
loopCycle = 5

[jobbroker]
# our workflow-aware broker wraps upstream's generic one (pandajedi_wf.jedi_agents.brokers): a task of no workflow
# is brokered by GenJobBroker exactly as without it
modConfig = {vo}:any:{JOB_BROKER_PLUGIN}
wf_inner_modConfig = {vo}:any:pandajedi.jedibrokerage.GenJobBroker:GenJobBroker

[jobthrottle]
modConfig = {vo}:any:pandajedi.jedithrottle.GenJobThrottler:GenJobThrottler

[jobgen]
procConfig = {proc("jobgen")}:
nTasks = 10
nFiles = 100
nWorkers = 1
loopCycle = 5
lockInterval = 5
typicalNumFile = :::logmerge:1000000

[postprocessor]
modConfig = {vo}:any:pandajedi.jedipprocess.GenPostProcessor:GenPostProcessor
procConfig = {proc("postprocessor")}
nWorkers = 1
nTasks = 10
loopCycle = 10

[watchdog]
modConfig = {mod_entries}
procConfig = {proc_entries}
loopCycle = {period}
# the carousel talks to the tape simulator in this development configuration (production: Rucio, the default)
wf_carousel_ddm = pandajedi_wf_dev.simulators.tape:dev_tape_simulator
# workflows in which nothing moved are looked at again after one period here (production default: 60 s)
wf_processor_recheck_seconds = {period}
waitForPicked = 30
waitForPending = 60
timeoutForPending = 7
timeoutForPendingVoLabel = {vo}:any:7
waitForLocked = 60
waitForThrottled = 120
waitForExhausted = 48
waitForAchieved = 60

[taskbroker]
# production tasks (label managed) choose their nucleus through our workflow-aware task broker, wrapping upstream's
# AtlasProdTaskBroker (pandajedi_wf.jedi_agents.task_brokers): a task of no workflow is brokered by it unchanged
modConfig = {vo}:managed:{TASK_BROKER_PLUGIN}
wf_inner_modConfig = {vo}:managed:pandajedi.jedibrokerage.AtlasProdTaskBroker:AtlasProdTaskBroker
procConfig = {proc("taskbroker")}
nWorkers = 1
loopCycle = 60

[tcommando]
procConfig = {proc("tcommando")}
nWorkers = 1
loopCycle = 10

[tasksetup]
modConfig = {vo}:any:pandajedi.jedisetup.GenTaskSetupper:GenTaskSetupper

[msgprocessor]

[mq]
"""


def _common_cfg(log_dir: Path) -> str:
    return f"""\
# written by pandajedi_wf_dev.devdb.panda_home for tests and the demo
[logger]
# the HTTP log handler (sendMsg) must not reach a CERN host: a closed local port fails fast
loghost = 127.0.0.1
monport-apache = 9
monurlprefix = /logger
method = POST
encoding = json
nemitters = 2
logdir = {log_dir}
log_level = INFO
rotating_policy = none
rotating_backup_count = 1
rotating_max_size = 1024
rotating_interval = 24
"""


def upstream_paths() -> list[str]:
    """Directories upstream imports from as top-level names (``taskbuffer``, ``liveconfigparser``, ...)."""
    paths = []
    for base in site.getsitepackages() + [site.getusersitepackages()]:
        for name in ("pandacommon", "pandaserver"):
            candidate = Path(base) / name
            if candidate.is_dir() and str(candidate) not in paths:
                paths.append(str(candidate))
    if len(paths) < 2:
        raise RuntimeError("upstream PanDA is not installed in this Python (need pandacommon and pandaserver; pip install panda-server-source)")
    return paths


def environment(panda_home: str | os.PathLike, db_env: dict[str, str]) -> dict[str, str]:
    """The variables upstream needs, for ``os.environ`` or a subprocess."""
    env = {
        "PANDA_HOME": str(Path(panda_home).resolve()),
        "PANDA_BEHIND_REAL_LB": "1",
        "PANDA_NO_ROOT": "1",
        "TZ": "UTC",
    }
    env.update(db_env)
    return env


def activate(panda_home: str | os.PathLike, pg) -> dict[str, str]:
    """Point this process at ``panda_home`` and the server ``pg`` (anything with ``env()``).

    Must run before the first ``pandaserver``/``pandajedi`` import: their config modules
    read the files and the environment once, at import time. Returns the variables set.
    """
    already = sorted(m for m in ("pandaserver.config.panda_config", "pandajedi.jediconfig.jedi_config") if m in sys.modules)
    if already:
        raise RuntimeError(f"activate() came too late: {', '.join(already)} already imported with another configuration")
    env = environment(panda_home, pg.env())
    os.environ.update(env)
    import time

    time.tzset()
    extra = upstream_paths()
    for path in reversed(extra):
        if path not in sys.path:
            sys.path.append(path)
    os.environ["PYTHONPATH"] = os.pathsep.join(_unique(extra + _project_root() + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    return env


def _project_root() -> list[str]:
    return [str(Path(__file__).resolve().parents[2])]


def _unique(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out
