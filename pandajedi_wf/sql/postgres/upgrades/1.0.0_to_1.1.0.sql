-- pandajedi_wf 1.0.0 -> 1.1.0, PostgreSQL: cheaper step and workflow updates for the processor.
-- Run as the owner of doma_panda on a database whose JEDI_WF_SCHEMA_VERSION row says 1.0.0.
-- Oracle twin: sql/oracle/upgrades/1.0.0_to_1.1.0.sql.
--
-- * jedi_wf_steps_status_idx (workflow_id, status) goes: every lookup of a workflow's steps already uses
--   jedi_wf_steps_node_uk (workflow_id, node_key), and an index on status made every status change of a step
--   a non-HOT update that wrote a new entry in all five indexes.
-- * Steps and workflows keep 20% of each page free (fillfactor 80), so a status change or a lease can put the
--   new row version on the same page (a HOT update, no index writes). Pages written before the upgrade keep
--   their fill until they are rewritten (VACUUM FULL or pg_repack if that matters).

DROP INDEX doma_panda.jedi_wf_steps_status_idx;

ALTER TABLE doma_panda.jedi_wf_steps SET (fillfactor = 80);

ALTER TABLE doma_panda.jedi_wf_workflows SET (fillfactor = 80);

UPDATE doma_panda.jedi_wf_schema_version SET version = '1.1.0', applied_at = (CURRENT_TIMESTAMP AT TIME ZONE 'UTC')
WHERE component = 'pandajedi_wf' AND version = '1.0.0';
