"""Every description of the generated hostile corpus (``hostile_corpus.cases()``) gets a clear answer.

Each case runs in a forked child with its address space limited to 200 MB over what the child starts
with (``RLIMIT_AS``) and a CPU-time alarm: ``submit_workflow(check_only=True)`` must answer either
valid or with problems that each carry a message, and must never raise.  A valid description must
also survive what a real submission does next: its definition serialised as JSON (where a YAML bomb
used to explode) and the engine's first pass building every first task's parameters.  The child
reports its time and its peak resident memory growth (``VmHWM`` after resetting it through
``/proc/self/clear_refs``); the test requires < 200 MB for every case and an answer within 10 s of the child's
own CPU time (a guard against a description that makes validation hang or explode, measured in CPU so that a busy
machine does not make it fail; how fast the answers are is a figure the message prints, not a test).  Two pool
workers fork the children, so the corpus takes well under a minute on two cores.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_corpus  # noqa: E402

from pandajedi_wf.api.submission import submit_workflow  # noqa: E402
from pandajedi_wf.workflow import RunContext, WorkflowError, next_actions, read_values_file, validate_workflow  # noqa: E402

CPU_SECONDS = 10  # the hang guard: CPU time of the child, not wall time
MEMORY_BYTES = 200 * 1024 * 1024
TEMPLATES = {"container": {"vo": "atlas", "jobParameters": [{"type": "constant", "value": "__dummy_exec_str__"}]},
             "athena": {"vo": "atlas", "jobParameters": []}}

_CASES: list = []
_WORKDIR: Path | None = None


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _materialise(case, root: Path) -> Path:
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    (root / "box").mkdir(exist_ok=True)
    for link, target in case.symlinks.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        if not (root / link).exists():
            os.symlink(target, root / link)
    return root / "box"


def _answer(case, box: Path) -> dict:
    """What intake answers for one case (in the child, under its limits)."""
    inputs = case.inputs
    if case.inputs_file is not None:
        try:
            inputs = read_values_file(str(box / case.inputs_file), base_dir=str(box))
        except WorkflowError as exc:
            return {"ok": False, "problems": [p.to_dict() for p in exc.problems], "stage": "input values file"}
    spec = case.spec  # the text itself, or a file name inside the sandbox
    result = submit_workflow(None, language=case.language, spec=spec, input_values=inputs, base_dir=str(box), out_ds="user.corpus.wf",
                             user_name="corpus", task_templates=TEMPLATES, check_only=True)
    answer = {"ok": result.ok, "problems": result.problems}
    if result.ok:
        parsed = validate_workflow(case.language, spec, inputs, str(box))
        stored = json.dumps(parsed.workflow.to_dict())  # what the real submission writes to JEDI_WF_WORKFLOWS
        context = RunContext(out_ds="user.corpus.wf", user_name="corpus", workflow_id=1, workflow_status="parsed", task_templates=TEMPLATES)
        actions = next_actions(parsed.workflow, {}, context)  # the processor's first pass: first tasks' parameters built
        answer.update(stored_chars=len(stored), first_actions=len(actions))
    return answer


def _run_case(index: int) -> dict:
    """Fork one child for case ``index``; its answer, time and memory, or what went wrong."""
    case = _CASES[index]
    root = _WORKDIR / f"case{index}"
    root.mkdir(parents=True, exist_ok=True)
    box = _materialise(case, root)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: limits, answer, report, exit without running the parent's cleanup
        os.close(read_end)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (_status_kb("VmSize") * 1024 + MEMORY_BYTES, resource.RLIM_INFINITY))
            signal.setitimer(signal.ITIMER_VIRTUAL, CPU_SECONDS)  # SIGVTALRM's default action ends the child
            try:
                with open("/proc/self/clear_refs", "w") as refs:
                    refs.write("5")  # peak RSS := current RSS
            except OSError:
                pass
            rss_before = _status_kb("VmRSS")
            start, cpu = time.perf_counter(), time.process_time()
            answer = _answer(case, box)
            answer["seconds"] = time.perf_counter() - start
            answer["cpu"] = time.process_time() - cpu
            answer["memory"] = max(0, _status_kb("VmHWM") - rss_before) * 1024
            payload = json.dumps(answer)
        except BaseException:  # noqa: BLE001 - everything is reported to the parent
            payload = json.dumps({"error": traceback.format_exc()[-3000:]})
        data = payload.encode()
        while data:
            data = data[os.write(write_end, data):]
        os._exit(0)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(root, ignore_errors=True)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return {"error": f"no answer within {CPU_SECONDS} s of CPU (killed by the alarm)" if sig == signal.SIGVTALRM else f"killed by signal {sig}"}
    try:
        return json.loads(b"".join(chunks) or b'{"error": "no answer"}')
    except ValueError:
        return {"error": "unreadable answer"}


def _verdict(case, outcome: dict) -> str | None:
    """Why ``outcome`` is not acceptable for ``case``, or None."""
    if "error" in outcome:
        return outcome["error"]
    if outcome["memory"] > MEMORY_BYTES:
        return f"grew by {outcome['memory'] / 1e6:.0f} MB"
    problems = outcome["problems"]
    if outcome["ok"] == bool(problems):
        return f"ok={outcome['ok']} with problems {problems}"
    if any(not p.get("message") for p in problems):
        return f"a problem without message: {problems}"
    if any(p.get("code") in ("internal", "out_of_memory") for p in problems):
        return f"an unexpected exception inside validation: {problems}"
    if case.expect == "valid" and not outcome["ok"]:
        return f"refused a valid description: {problems}"
    if case.expect == "refused" and outcome["ok"]:
        return "accepted a description that must be refused"
    return None


def test_hostile_corpus_gets_clear_answers_fast_and_small(tmp_path):
    global _CASES, _WORKDIR
    _CASES, _WORKDIR = hostile_corpus.cases(), tmp_path
    assert len(_CASES) >= 400
    assert {c.language for c in _CASES} >= {"cwl", "snakemake", "yaml"}
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        outcomes = pool.map(_run_case, range(len(_CASES)), chunksize=4)
    elapsed = time.perf_counter() - start
    failures = []
    for case, outcome in zip(_CASES, outcomes):
        why = _verdict(case, outcome)
        if why:
            failures.append(f"{case.id} [{case.language}]: {why}")
    answered = [o for o in outcomes if "error" not in o]
    refused = sum(1 for o in answered if not o["ok"])
    slowest = max(answered, key=lambda o: o["seconds"])
    largest = max(answered, key=lambda o: o["memory"])
    summary = (f"hostile corpus: {len(_CASES)} cases, {refused} refused, {len(answered) - refused} valid, "
               f"max {slowest['seconds']:.3f} s ({_CASES[outcomes.index(slowest)].id}), "
               f"max {largest['memory'] / 1e6:.1f} MB ({_CASES[outcomes.index(largest)].id}), whole corpus {elapsed:.1f} s")
    print(summary)
    assert not failures, f"{len(failures)} case(s) failed ({summary}):\n" + "\n".join(failures[:60])


def test_the_corpus_is_generated_not_stored():
    here = Path(__file__).resolve().parent
    stored = [p for p in here.rglob("*") if p.suffix in (".cwl", ".smk") and hostile_corpus.EXAMPLES not in p.parents]  # ours are valid ones
    assert not stored, "the corpus is generated at test time, not kept as files"
    ids = [c.id for c in hostile_corpus.cases()]
    assert len(ids) == len(set(ids))
