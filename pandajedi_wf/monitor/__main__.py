"""``python -m pandajedi_wf.monitor [--port 8080] [--host 127.0.0.1] [--once FILE] [--identity-header NAME]``.

Connects with the settings of panda_server.cfg (found through PANDA_HOME, as for the PanDA server); the agents'
periods come from ``panda_jedi.cfg [watchdog] procConfig`` when it is readable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import html, snapshot
from .collect import MonitorSource


def _proc_config() -> str | None:
    """``panda_jedi.cfg [watchdog] procConfig``, or None where JEDI is not configured (a monitoring host need not be)."""
    try:
        from pandajedi.jediconfig import jedi_config

        return getattr(getattr(jedi_config, "watchdog", None), "procConfig", None)
    except Exception:
        return None


DEFAULT_TASK_URL = "https://bigpanda.cern.ch/task/{task_id}/"


def _production_dns() -> tuple[str, ...]:
    try:
        from pandaserver.config import panda_config

        return tuple(getattr(panda_config, "production_dns", ()) or ())
    except Exception:
        return ()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pandajedi_wf.monitor", description="Read-only monitoring pages for pandajedi_wf workflows and the data carousel.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument("--once", metavar="FILE", help="write the overview page to FILE and exit instead of serving")
    parser.add_argument("--user", help="with --once: only this user's workflows")
    parser.add_argument("--identity-header", metavar="NAME", default=None,
                        help="request header in which the trusted front end puts the verified DN (e.g. X-SSL-Client-S-DN); "
                        "without it every page is read-only")
    parser.add_argument("--fqans-header", metavar="NAME", default=None, help="request header with the verified VOMS FQANs, comma-separated")
    parser.add_argument("--task-url", default=DEFAULT_TASK_URL,
                        help="link of a JEDI task in PanDA's monitor, {task_id} replaced (default %(default)s; '' for none)")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="how often an open workflow page asks what changed")
    parser.add_argument("--vo", default=None, help="VO of the carousel's CONFIG row (default: the VO of wf_carousel in procConfig)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        from pandajedi_wf.taskbuffer.connection import WfDatabase

        db = WfDatabase()
        db.connect()
    except Exception as exc:
        print(
            f"cannot reach the PanDA database ({type(exc).__name__}: {exc}); set PANDA_HOME so that "
            "$PANDA_HOME/etc/panda/panda_server.cfg names the database, as for the PanDA server",
            file=sys.stderr,
        )
        return 5
    proc_config = _proc_config()
    vo = args.vo or snapshot.agent_vo(proc_config, "wf_carousel")
    source = MonitorSource(db, periods=snapshot.agent_periods(proc_config), vo=vo)
    if args.once:
        Path(args.once).write_text(html.render_overview(source.overview(user_name=args.user)), encoding="utf-8")
        print(f"wrote {args.once}")
        return 0
    from .server import make_server

    from .identity import IdentityHeaders

    server = make_server(source, args.host, args.port, on_error=db.close,
                         identity_headers=IdentityHeaders(args.identity_header, args.fqans_header),
                         task_url=args.task_url or None, poll_ms=int(args.poll_seconds * 1000), production_dns=_production_dns())
    host, port = server.server_address[:2]
    mode = f"actions for the identity in header {args.identity_header}" if args.identity_header else "read-only (no --identity-header)"
    print(f"pandajedi_wf monitor on http://{host}:{port}/ , {mode} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
