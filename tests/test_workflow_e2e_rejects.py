"""Malformed descriptions are refused at intake with a precise error on a ``failed`` workflow row, and neither they
nor a workflow that breaks inside the processor disturb the other workflows of the same processor cycle."""

from __future__ import annotations


from wf_db_support import EXAMPLES, explain, new_grid, step_rows, submit, workflow_row

BAD = {
    "cycle": ("yaml", "steps:\n  a:\n    type: prun\n    inDS: b/outDS\n    exec: x\n  b:\n    type: prun\n    inDS: a/outDS\n    exec: y\n",
              "steps form a cycle: a -> b -> a"),
    "unknown_type": ("yaml", "steps:\n  a:\n    type: frobnicate\n    exec: x\n", "unknown step type 'frobnicate'"),
    "missing_input": ("yaml", "steps:\n  a:\n    type: prun\n    inDS: '{nothere}'\n    exec: x\n", "refers to 'nothere'"),
    "broken_yaml": ("yaml", "steps:\n  a: [\n", "broken YAML at line 3"),
    "broken_cwl": ("cwl", "cwlVersion: v1.0\nclass: Workflow\ninputs: []\noutputs: []\nsteps:\n  a:\n    run: prun\n    in: {opt_exec: {default: x}\n",
                   "broken YAML at line 9"),
    "quotes": ("yaml", "steps:\n  \"it's\":\n    type: prun\n    exec: x\n", "contains \"'\""),
    "unicode": ("yaml", "steps:\n  schritt_\u00fc:\n    type: prun\n    exec: x\n", "contains '\u00fc'"),
    "huge": ("yaml", "steps:\n" + "".join(f"  s{i}:\n    type: prun\n    exec: x\n" for i in range(100_000)), "the limit is 1000000 bytes"),
}


def test_malformed_descriptions_fail_at_intake_and_the_cycle_runs_the_good_one(db, jedi_taskbuffer):
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.taskbuffer import workflows

    good = submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds="user.dev.good1")
    refused = {}
    for case, (language, text, expected) in BAD.items():
        result = submit_workflow(db, language=language, spec=text, out_ds=f"user.dev.bad.{case}", user_name="dev.user", vo="wlcg")
        assert not result.ok and result.status == "failed", case
        row = workflow_row(db, result.workflow_id)
        assert row["status"] == "failed" and expected in row["error_dialog"], (case, row["error_dialog"])
        assert row["error_dialog"].startswith("invalid workflow description: ")
        refused[case] = result.workflow_id
    # the step cap also holds when the byte cap is lifted: 100,000 steps are refused while being read
    from pandajedi_wf.workflow import Limits

    result = submit_workflow(db, language="yaml", spec=BAD["huge"][1], out_ds="user.dev.bad.steps", user_name="dev.user", vo="wlcg",
                             limits=Limits(max_bytes=10**8))
    assert "more than 2000 steps" in workflow_row(db, result.workflow_id)["error_dialog"]
    refused["steps"] = result.workflow_id
    # a stored workflow whose definition the processor cannot read: its error is recorded, the others go on
    with db.transaction():
        broken_id = workflows.insert(db, name="broken", user_name="dev.user", user_dn=None, vo="wlcg", prod_source_label="user",
                                     language="yaml", status="parsed", out_ds="user.dev.broken", definition={"nodes": "not a list"},
                                     request={}, error_dialog=None, now=utcnow())
    good2 = submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds="user.dev.good2")
    new_grid(db, jedi_taskbuffer)  # registers the input datasets (nothing runs: no tick)

    stats = CycleStats()
    workflow_processor.cycle(db, stats, jedi_taskbuffer, owner="test-proc")

    assert stats.counters["workflows_claimed"] == 3  # refused workflows are never claimed
    assert stats.counters["workflow_errors"] == 1
    assert "processor error" in workflow_row(db, broken_id)["error_dialog"]
    assert workflow_row(db, broken_id)["status"] == "parsed"
    for wf_id in (good.workflow_id, good2.workflow_id):
        assert workflow_row(db, wf_id)["status"] == "running", explain(db, wf_id)
        top = next(r for r in step_rows(db, wf_id).values() if r["name"] == "top")
        assert top["status"] == "submitted" and top["jedi_task_id"] is not None
    for case, wf_id in refused.items():
        assert step_rows(db, wf_id) == {}, case
        assert workflow_row(db, wf_id)["status"] == "failed"
