-- pandajedi_wf 1.0.0 -> 1.1.0, Oracle: cheaper step and workflow updates for the processor.
-- Run as the owner of ATLAS_PANDA (sqlplus @file) on a schema whose JEDI_WF_SCHEMA_VERSION row says 1.0.0.
-- PostgreSQL twin: sql/postgres/upgrades/1.0.0_to_1.1.0.sql.
--
-- * JEDI_WF_STEPS_STATUS_IDX (workflow_id, status) goes: every lookup of a workflow's steps already uses
--   JEDI_WF_STEPS_NODE_UK (workflow_id, node_key), and each status change of a step maintained it.
-- * Steps and workflows keep 20% of each block free (PCTFREE 20) for rows that grow when updated (a step's
--   task parameters are written when it is submitted), against row migration. Blocks formatted before the
--   upgrade keep their setting until the table is moved (ALTER TABLE ... MOVE ONLINE).

DROP INDEX ATLAS_PANDA.JEDI_WF_STEPS_STATUS_IDX;

ALTER TABLE ATLAS_PANDA.JEDI_WF_STEPS PCTFREE 20;

ALTER TABLE ATLAS_PANDA.JEDI_WF_WORKFLOWS PCTFREE 20;

UPDATE ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION SET version = '1.1.0', applied_at = SYS_EXTRACT_UTC(SYSTIMESTAMP)
WHERE component = 'pandajedi_wf' AND version = '1.0.0';

COMMIT;
