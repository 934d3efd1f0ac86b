"""Loops wait for their junction's results.json instead of ending when it cannot be read.

The engine reads a loop's continuation from the junction step's results; a finished junction whose results are not
in hand yet (Rucio slow, download failing, no reader configured) is shown to the engine as still ``running``
(``step_row.needs_results``), so the loop neither stops early nor goes on blindly, and the reason is in the step's
history.
"""

from __future__ import annotations


def fetch(plan, s, reader) -> None:
    """Try to read the results now; on failure leave a history note (once per distinct reason)."""
    if reader is None:
        reason = "waiting for results.json: no junction results reader is configured (panda_jedi.cfg wf_processor_junction_results)"
    else:
        try:
            s.results = reader.fetch(int(s.jedi_task_id), s.task_name)
            plan.results.append((s, s.results))
            return
        except Exception as exc:  # the reader's failures are many (Rucio, HTTP, JSON): each is a reason to wait
            reason = f"waiting for results.json: {exc}"
    if s.error_dialog != reason:  # a new reason: shown on the step and in its history, once
        s.error_dialog = reason
        plan.note(s, reason)
        plan.dialogs.append((s, reason))
