-- pandajedi_wf 1.2.0 -> 1.3.0, PostgreSQL. Run as the owner of doma_panda on a database whose
-- JEDI_WF_SCHEMA_VERSION row says 1.2.0. Oracle twin: sql/oracle/upgrades/1.2.0_to_1.3.0.sql.
-- Each change is its own block below, saying why.

-- * Workflow processor: the automatic retries of a step are counted in a column, not read back from the
--   history's reason text (rewording a message could change how often a step is retried). The backfill
--   counts what the processor read until 1.2.0: history rows of automatic retries after the step's last
--   user command. A step in the middle of its retries keeps its budget across the upgrade.
ALTER TABLE doma_panda.jedi_wf_steps ADD COLUMN auto_retries INTEGER DEFAULT 0 NOT NULL;

UPDATE doma_panda.jedi_wf_steps s SET auto_retries = (
    SELECT COUNT(*) FROM doma_panda.jedi_wf_transitions t
    WHERE t.entity_type = 'step' AND t.entity_id = s.step_id AND t.reason LIKE 'automatic retry:%'
      AND t.to_status IN ('defined', 'retrying')
      AND t.transition_id > COALESCE((SELECT MAX(u.transition_id) FROM doma_panda.jedi_wf_transitions u
                                      WHERE u.entity_type = 'step' AND u.entity_id = s.step_id
                                        AND u.reason LIKE 'user command%'), 0))
WHERE s.step_id IN (SELECT a.entity_id FROM doma_panda.jedi_wf_transitions a
                    WHERE a.entity_type = 'step' AND a.reason LIKE 'automatic retry:%');

-- * Workflow processor: its claim walks the due workflows oldest first through an index on (check_after,
--   workflow_id) and stops at its batch, instead of reading every workflow of the processed statuses and sorting
--   them (the old (status, check_after) index cannot give one order across several statuses). An ended workflow
--   is not due until a command makes it so: its check_after becomes NULL, so the walk never passes over it.
DROP INDEX doma_panda.jedi_wf_workflows_status_idx;
CREATE INDEX jedi_wf_workflows_due_idx ON doma_panda.jedi_wf_workflows (check_after, workflow_id);

UPDATE doma_panda.jedi_wf_workflows SET check_after = NULL WHERE status IN ('done', 'finished', 'failed', 'cancelled');

UPDATE doma_panda.jedi_wf_schema_version SET version = '1.3.0', applied_at = (CURRENT_TIMESTAMP AT TIME ZONE 'UTC')
WHERE component = 'pandajedi_wf' AND version = '1.2.0';
