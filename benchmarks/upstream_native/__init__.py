"""Upstream PanDA's native workflow engine (``pandaserver.workflow.workflow_core``) driven on the benchmark's database.

Benchmark-only: upstream's WORKFLOWS / WORKFLOW_STEPS / WORKFLOW_DATA tables are created here for the run and dropped
after it; they never belong in ``pandajedi_wf/sql/`` or the package.
"""
