"""``pandajedi-wf``: submit, inspect and command workflows (verbs follow pbook).

Exit codes (scripts may rely on them):

  0  ok
  1  refused: the command is not accepted in the workflow's state, or not by this requester
  2  usage error: bad arguments, unreadable file
  3  not found: no such workflow or JEDI task
  4  invalid workflow: the description (or its input values / templates) was refused
  5  backend error: database or JEDI unavailable, or the backend is not configured
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from enum import IntEnum
from typing import Any, Callable, TextIO

from . import render
from .client import BackendError, ClientError, InvalidWorkflow, WorkflowClient, WorkflowNotFound, make_client

PROG = "pandajedi-wf"
DESCRIPTION = (
    "Operator's tool over the PanDA database: submit, inspect and command pchain workflows run by JEDI. Users use "
    "pchain_native and pbook through the PanDA server instead. Commands sent here are recorded as the operator "
    "(operator:<login name>) with the operator's rights."
)
OPERATOR_ROLE = "operator"
WORKFLOW_STATUSES = ("registered", "parsed", "running", "paused", "finishing", "cancelling", "done", "finished", "failed", "cancelled")
LANGUAGES = ("cwl", "snakemake", "yaml")
SIMPLE_COMMANDS = {
    "kill": "Kill a workflow: cancel its pending steps and kill its running JEDI tasks.",
    "retry": "Retry the failed, partial and cancelled steps of a workflow, and reset what depends on them.",
    "pause": "Pause a workflow: submit no new step and pause its running JEDI tasks.",
    "resume": "Resume a paused workflow.",
    "finish": "Finish a workflow: running steps end, nothing new is submitted.",
}


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    NOT_FOUND = 3
    INVALID = 4
    BACKEND = 5


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` decides the exit code and stream."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of tables")

    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", default=False, help="print JSON instead of tables")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True

    submit = verbs.add_parser("submit", parents=[common], help="submit a workflow (or only check it with --check)")
    submit.add_argument("spec", metavar="SPEC", help="main description file: CWL, Snakefile or native YAML")
    submit.add_argument("--language", choices=LANGUAGES, help="language of SPEC (default: from its name: .cwl, Snakefile/.smk, .yaml/.yml)")
    submit.add_argument("--inputs", "--yaml", dest="inputs", metavar="FILE", help="input values (YAML or JSON map), like pchain --yaml")
    submit.add_argument("--outDS", dest="out_ds", metavar="NAME", help="output dataset name prefix (required unless --check)")
    submit.add_argument("--templates", metavar="FILE", help="JSON task parameter templates (pchain taskParams)")
    submit.add_argument("--retry-policy", metavar="FILE", help="JSON automatic retry policy of this workflow (see README)")
    submit.add_argument("--name", help="workflow name (default: from the description)")
    submit.add_argument("--owner", help="user the workflow belongs to (user name or DN; default: the operator's login name)")
    submit.add_argument("--vo", default="atlas", help="VO of the workflow's JEDI tasks (default: atlas; e.g. wlcg on a generic JEDI)")
    submit.add_argument("--prodSourceLabel", dest="prod_source_label", default="user", help="prodSourceLabel of its tasks (default: user)")
    submit.add_argument("--check", action="store_true", help="validate only; nothing is submitted")

    show = verbs.add_parser("show", parents=[common], help="show a workflow with its steps, data, tasks and history")
    show.add_argument("workflow_id", metavar="ID", type=_positive_int, nargs="?", help="workflow ID")
    show.add_argument("--task", dest="jedi_task_id", metavar="JEDITASKID", type=_positive_int, help="find the workflow by one of its JEDI tasks")

    listing = verbs.add_parser("list", parents=[common], help="list workflows by user and status")
    listing.add_argument("--user", help="only this user's workflows")
    listing.add_argument("--status", choices=WORKFLOW_STATUSES, metavar="STATUS", help=f"only workflows in this status ({', '.join(WORKFLOW_STATUSES)})")
    listing.add_argument("--limit", type=_positive_int, default=1000, help="at most this many (default 1000)")

    for verb, text in SIMPLE_COMMANDS.items():
        sub = verbs.add_parser(verb, parents=[common], help=text, description=text)
        sub.add_argument("workflow_id", metavar="ID", type=_positive_int, help="workflow ID")
        if verb == "finish":
            sub.add_argument("--now", action="store_true", help="also send JEDI 'finish' to running tasks instead of letting them end")

    rerun = verbs.add_parser("rerun-from", parents=[common], help="run a step and everything downstream of it again")
    rerun.add_argument("workflow_id", metavar="ID", type=_positive_int, help="workflow ID")
    rerun.add_argument("step", metavar="STEP", help="step name or node key (see 'show')")
    return parser


def infer_language(spec: str) -> str:
    base = os.path.basename(spec)
    lower = base.lower()
    if lower.endswith(".cwl"):
        return "cwl"
    if lower in ("snakefile",) or lower.endswith((".smk", ".snakefile")):
        return "snakemake"
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    raise UsageError(f"{PROG} submit: cannot tell the language of {base!r} from its name; give --language {'|'.join(LANGUAGES)}")


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read()
    except OSError as exc:
        raise UsageError(f"{PROG} submit: cannot read {what} {path!r}: {exc.strerror}") from None


def read_input_values(path: str) -> dict:
    import yaml

    text = _read(path, "input values")
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidWorkflow(f"input values {path!r} are not valid YAML/JSON: {exc}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidWorkflow(f"input values {path!r} must be a map of input name to value, got {type(values).__name__}")
    return values


def read_json_object(path: str, what: str, shape: str = "a JSON object") -> dict:
    text = _read(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidWorkflow(f"{what} {path!r} are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise InvalidWorkflow(f"{what} {path!r} must be {shape}")
    return value


def read_templates(path: str) -> dict:
    return read_json_object(path, "templates", "a JSON object of step type -> task parameters")


class _Run:
    """One invocation: parsed arguments, the client, and the output streams."""

    def __init__(self, args: argparse.Namespace, client_factory: Callable[[], WorkflowClient], out: TextIO, err: TextIO):
        self.args = args
        self._client_factory = client_factory
        self._client: WorkflowClient | None = None
        self.out = out
        self.err = err

    @property
    def client(self) -> WorkflowClient:
        """Made on first use: ``submit --check`` never needs the database."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def emit(self, value: Any, text: str, problem: bool = False) -> None:
        """JSON always goes to stdout (scripts read it); a refusal in text form goes to stderr."""
        if self.args.json:
            print(render.to_json(value), file=self.out)
        else:
            print(text, file=self.err if problem else self.out)

    def submit(self) -> int:
        a = self.args
        if not a.check and not a.out_ds:
            raise UsageError(f"{PROG} submit: --outDS is required (or use --check to validate only)")
        language = a.language or infer_language(a.spec)
        spec = os.path.abspath(a.spec)
        if not os.path.isfile(spec):
            raise UsageError(f"{PROG} submit: no such file {a.spec!r}")
        values = read_input_values(a.inputs) if a.inputs else None
        templates = read_templates(a.templates) if a.templates else None
        extra = {"retry_policy": read_json_object(a.retry_policy, "retry policy")} if a.retry_policy else {}
        base_dir = os.path.dirname(spec)
        if a.check:  # parsing needs no database
            from pandajedi_wf.api.submission import submit_workflow

            result = submit_workflow(None, language=language, spec=spec, input_values=values, base_dir=base_dir, out_ds="check",
                                     user_name="check", check_only=True).to_dict()
            self.emit(result, render.validation(result), problem=not result.get("ok"))
        else:
            result = self.client.submit(
                language=language,
                spec=spec,
                input_values=values,
                base_dir=base_dir,
                out_ds=a.out_ds,
                task_templates=templates,
                name=a.name,
                owner=a.owner or getpass.getuser(),
                vo=a.vo,
                prod_source_label=a.prod_source_label,
                requester=operator(),
                **extra,
            )
            self.emit(result, render.submitted(result), problem=not result.get("ok"))
        return ExitCode.OK if result.get("ok") else ExitCode.INVALID

    def show(self) -> int:
        a = self.args
        if (a.workflow_id is None) == (a.jedi_task_id is None):
            raise UsageError(f"{PROG} show: give either a workflow ID or --task JEDITASKID")
        wf = self.client.show(a.workflow_id) if a.workflow_id is not None else self.client.show_by_task(a.jedi_task_id)
        self.emit(wf, render.workflow_detail(wf))
        return ExitCode.OK

    def list(self) -> int:
        a = self.args
        items = self.client.list(a.user, a.status, limit=a.limit)
        self.emit(items, render.workflow_list(items))
        return ExitCode.OK

    def command(self) -> int:
        a = self.args
        command = "rerun" if a.verb == "rerun-from" else a.verb
        params: dict = {}
        if command == "rerun":
            params["step"] = a.step
        if command == "finish" and a.now:
            params["now"] = True
        result = self.client.command(a.workflow_id, command, params or None, operator(), OPERATOR_ROLE)
        status = result.get("status")
        text = render.command_result(a.workflow_id, command, result)
        if status == "refused":
            self.emit(result, text, problem=True)
            return ExitCode.REFUSED
        if status == "failed":
            self.emit(result, text, problem=True)
            return ExitCode.BACKEND
        if status not in ("queued", "done"):
            raise BackendError(f"backend answered {command} with unknown status {status!r}")
        self.emit(result, text)
        return ExitCode.OK


def operator() -> str:
    """Who the command is recorded as: the operator at this terminal, never a user named on the command line."""
    return f"operator:{getpass.getuser()}"


def main(argv: list[str] | None = None, client_factory: Callable[[], WorkflowClient] = make_client, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command line; returns the exit code (see the module docstring)."""
    return int(_main(argv, client_factory, out or sys.stdout, err or sys.stderr))


def _main(argv: list[str] | None, client_factory: Callable[[], WorkflowClient], out: TextIO, err: TextIO) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(exc, file=err)
        print(f"try '{PROG} --help'", file=err)
        return ExitCode.USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        run = _Run(args, client_factory, out, err)
        if args.verb == "submit":
            return run.submit()
        if args.verb == "show":
            return run.show()
        if args.verb == "list":
            return run.list()
        return run.command()
    except UsageError as exc:
        print(exc, file=err)
        return ExitCode.USAGE
    except WorkflowNotFound as exc:
        print(f"{PROG}: not found: {exc}", file=err)
        return ExitCode.NOT_FOUND
    except InvalidWorkflow as exc:
        print(f"{PROG}: invalid workflow: {exc}", file=err)
        if exc.problems:
            print(render.problems(exc.problems), file=err)
        return ExitCode.INVALID
    except BackendError as exc:
        print(f"{PROG}: backend error: {exc}", file=err)
        return ExitCode.BACKEND
    except ClientError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return ExitCode.BACKEND


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
