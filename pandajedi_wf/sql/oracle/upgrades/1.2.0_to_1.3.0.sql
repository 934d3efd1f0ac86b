-- pandajedi_wf 1.2.0 -> 1.3.0, Oracle. Run as the owner of ATLAS_PANDA (sqlplus @file) on a schema whose
-- JEDI_WF_SCHEMA_VERSION row says 1.2.0. PostgreSQL twin: sql/postgres/upgrades/1.2.0_to_1.3.0.sql.
-- Each change is its own block below, saying why.

-- * Workflow processor: the automatic retries of a step are counted in a column, not read back from the
--   history's reason text (rewording a message could change how often a step is retried). The backfill
--   counts what the processor read until 1.2.0: history rows of automatic retries after the step's last
--   user command. A step in the middle of its retries keeps its budget across the upgrade. Adding a NOT NULL
--   column with a DEFAULT is a dictionary-only change on Oracle 12c and later.
ALTER TABLE ATLAS_PANDA.JEDI_WF_STEPS ADD (auto_retries NUMBER(9) DEFAULT 0 NOT NULL);

UPDATE ATLAS_PANDA.JEDI_WF_STEPS s SET auto_retries = (
    SELECT COUNT(*) FROM ATLAS_PANDA.JEDI_WF_TRANSITIONS t
    WHERE t.entity_type = 'step' AND t.entity_id = s.step_id AND t.reason LIKE 'automatic retry:%'
      AND t.to_status IN ('defined', 'retrying')
      AND t.transition_id > NVL((SELECT MAX(u.transition_id) FROM ATLAS_PANDA.JEDI_WF_TRANSITIONS u
                                 WHERE u.entity_type = 'step' AND u.entity_id = s.step_id
                                   AND u.reason LIKE 'user command%'), 0))
WHERE s.step_id IN (SELECT a.entity_id FROM ATLAS_PANDA.JEDI_WF_TRANSITIONS a
                    WHERE a.entity_type = 'step' AND a.reason LIKE 'automatic retry:%');

-- * Workflow processor: its claim walks the due workflows oldest first through an index on (check_after,
--   workflow_id) and stops at its batch, instead of reading every workflow of the processed statuses and sorting
--   them (the old (status, check_after) index cannot give one order across several statuses). An ended workflow
--   is not due until a command makes it so: its check_after becomes NULL, so the walk never passes over it.
DROP INDEX ATLAS_PANDA.JEDI_WF_WORKFLOWS_STATUS_IDX;
CREATE INDEX ATLAS_PANDA.JEDI_WF_WORKFLOWS_DUE_IDX ON ATLAS_PANDA.JEDI_WF_WORKFLOWS (check_after, workflow_id);

UPDATE ATLAS_PANDA.JEDI_WF_WORKFLOWS SET check_after = NULL WHERE status IN ('done', 'finished', 'failed', 'cancelled');

UPDATE ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION SET version = '1.3.0', applied_at = SYS_EXTRACT_UTC(SYSTIMESTAMP)
WHERE component = 'pandajedi_wf' AND version = '1.2.0';

COMMIT;
