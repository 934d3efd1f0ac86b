"""Loops wait for their junction's results.json instead of ending when it cannot be read.

The engine reads a loop's continuation from the junction step's results; a finished junction whose results are not
in hand yet (Rucio slow, download failing, no reader configured) is shown to the engine as still ``running``, so the
loop neither stops early nor goes on blindly, and the reason is in the step's history.
"""

from __future__ import annotations

from pandajedi_wf.control.step_graph import enclosing


def _in_loop_body(node_key: str) -> bool:
    """The junction sits directly in a loop iteration's body (its results decide that loop)."""
    body = enclosing(node_key)
    return body is not None and body[1] is not None


def needs_results(s: dict) -> bool:
    return (
        s.get("step_type") == "junction"
        and s["status"] in ("done", "finished")
        and s.get("results") is None
        and _in_loop_body(s["node_key"])
        and bool(s.get("jedi_task_id"))
    )


def fetch(plan, s: dict, reader) -> None:
    """Try to read the results now; on failure leave a history note (once per distinct reason)."""
    if reader is None:
        reason = "waiting for results.json: no junction results reader is configured (panda_jedi.cfg wf_processor_junction_results)"
    else:
        try:
            s["results"] = reader.fetch(int(s["jedi_task_id"]), s["task_name"])
            plan.results.append((s, s["results"]))
            return
        except Exception as exc:
            reason = f"waiting for results.json: {exc}"
    if s.get("error_dialog") != reason:  # a new reason: shown on the step and in its history, once
        s["error_dialog"] = reason
        plan.note(s, reason)
        plan.dialogs.append((s, reason))
