"""Crash repair finds the task DEFT holds when the workflow's user is known by a certificate DN.

``insertTaskParamsPanda`` (no production role) writes DEFT ``T_TASK.userName`` as the *cleaned* DN
(``CoreUtils.clean_user_id``), never the workflow's ``user_name``. A repair that looked the task up by ``user_name``
missed it and called JEDI a second time: the duplicate answer happened to name the same task while it was queued,
but once the task had ended, the second call made JEDI *re-execute* it (``incexec``) and the step was failed as
refused. Both cases are driven through upstream's real ``insertTaskParamsPanda`` (which writes DEFT).
"""

from __future__ import annotations

import datetime

import pytest

from wf_db_support import EXAMPLES, TEMPLATES, step_rows

DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=devuser/CN=123456/CN=Dev User"


class ProcessDied(BaseException):
    """Stands for the processor being killed right after JEDI accepted the task."""


class CountingTaskBuffer:
    """Upstream's task buffer; optionally the first submission kills the caller after JEDI took the task."""

    def __init__(self, task_buffer, die_after_first: bool = False):
        self.task_buffer, self.die, self.calls = task_buffer, die_after_first, 0

    def insertTaskParamsPanda(self, *args, **kwargs):
        self.calls += 1
        answer = self.task_buffer.insertTaskParamsPanda(*args, **kwargs)
        if self.die and self.calls == 1:
            assert answer[0] == 0, answer
            raise ProcessDied()
        return answer

    def __getattr__(self, name):
        return getattr(self.task_buffer, name)


@pytest.mark.parametrize("task_ended", [False, True], ids=["task-queued", "task-already-finished"])
def test_repair_adopts_the_deft_task_of_a_dn_user_without_calling_jedi_again(db, jedi_taskbuffer, task_ended):
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf_dev.simulators.grid import GridSimulator

    result = submit_workflow(db, language="cwl", spec=str(EXAMPLES / "chain.cwl"), base_dir=str(EXAMPLES), out_ds="user.devuser.dn",
                             user_name="devuser", user_dn=DN, vo="wlcg", task_templates=TEMPLATES)
    now = utcnow()
    with pytest.raises(ProcessDied):
        workflow_processor.cycle(db, CycleStats(), CountingTaskBuffer(jedi_taskbuffer, die_after_first=True), now=now, owner="proc-1")
    db.reconnect()
    (top,) = [r for r in step_rows(db, result.workflow_id).values() if r["name"] == "top"]
    assert top["status"] == "submitting"
    ((task_id, deft_user),) = db.query(f"SELECT taskid, userName FROM {db.schema_deft}.T_TASK WHERE taskName=:n", {":n": top["task_name"]})
    assert deft_user == "Dev User"  # what upstream wrote: neither user_name nor the DN
    if task_ended:  # TaskRefiner made the JEDI task and it ended before a processor came back
        GridSimulator(db, jedi_taskbuffer).tick()
        db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET status='finished' WHERE jediTaskID=:t", {":t": task_id})

    task_buffer = CountingTaskBuffer(jedi_taskbuffer)
    workflow_processor.cycle(db, CycleStats(), task_buffer, now=now + datetime.timedelta(hours=1), owner="proc-2")

    assert task_buffer.calls == 0, "the repair called JEDI again instead of adopting the task DEFT holds"
    top = step_rows(db, result.workflow_id)[top["node_key"]]
    assert int(top["jedi_task_id"]) == int(task_id) and top["status"] in ("submitted", "finished"), top
    reasons = [r[0] for r in db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' AND entity_id=:s "
                                      "AND from_status='submitting'", {":s": top["step_id"]})]
    assert reasons == [f"adopted JEDI task {task_id} found in DEFT after an interrupted submission"], reasons
    assert db.query(f"SELECT comm_cmd FROM {db.schema_deft}.PRODSYS_COMM WHERE comm_task=:t", {":t": task_id}) == []  # no incexec
