-- pandajedi_wf 1.1.0 -> 1.2.0, PostgreSQL: workflow ids come from upstream's doma_panda.workflow_id_seq.
-- Run as the owner of doma_panda on a database whose JEDI_WF_SCHEMA_VERSION row says 1.1.0.
-- Prerequisite: upstream's workflow tables (PanDA >= 1.0.4 schema), whose doma_panda.workflow_id_seq this
-- script advances, so the role running it needs UPDATE on that sequence (upstream makes panda its owner).
-- Oracle twin: sql/oracle/upgrades/1.1.0_to_1.2.0.sql.
--
-- * The PanDA server gives a pchain_native submission its id from workflow_id_seq and our intake stores the
--   workflow under that id: one sequence for every workflow, so jedi_wf_workflow_id_seq goes.
-- * First workflow_id_seq moves past every id we drew from our own sequence: its next value becomes the
--   greater of a fresh nextval (above anything it gave before) and MAX(workflow_id) + 1 (is_called false, so
--   nextval returns exactly that). setval sets an absolute value: an id the server draws in the instant
--   between the nextval and the setval could be drawn again, so run this while no workflow is being submitted.

SELECT setval('doma_panda.workflow_id_seq',
              GREATEST(nextval('doma_panda.workflow_id_seq'),
                       (SELECT COALESCE(MAX(workflow_id), 0) + 1 FROM doma_panda.jedi_wf_workflows)),
              false);

DROP SEQUENCE doma_panda.jedi_wf_workflow_id_seq;

UPDATE doma_panda.jedi_wf_schema_version SET version = '1.2.0', applied_at = (CURRENT_TIMESTAMP AT TIME ZONE 'UTC')
WHERE component = 'pandajedi_wf' AND version = '1.1.0';
