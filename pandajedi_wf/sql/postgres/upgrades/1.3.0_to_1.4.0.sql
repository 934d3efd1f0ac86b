-- pandajedi_wf 1.3.0 -> 1.4.0, PostgreSQL. Run as the owner of doma_panda on a database whose
-- JEDI_WF_SCHEMA_VERSION row says 1.3.0. Oracle twin: sql/oracle/upgrades/1.3.0_to_1.4.0.sql.
-- Each change is its own block below, saying why.

-- * Workflow-level pre-staging: a staging request only workflows' pre-stages want carries when its recall should
--   start (NULL for every request made before: each was made for a waiting task).
ALTER TABLE doma_panda.jedi_dc_requests ADD COLUMN need_by_time TIMESTAMP;

-- * Workflow-level pre-staging: the tape inputs of a workflow's later steps, planned when it starts, each taken
--   in by the carousel (a request made or joined) and released once the workflow no longer needs it.
CREATE TABLE doma_panda.jedi_dc_prestages (
    workflow_id          BIGINT         NOT NULL,
    dataset              VARCHAR(512)   NOT NULL,
    node_key             VARCHAR(512)   NOT NULL,
    ready_time           TIMESTAMP      NOT NULL,
    need_by_time         TIMESTAMP      NOT NULL,
    request_id           BIGINT,
    outcome              VARCHAR(16),
    creation_time        TIMESTAMP      NOT NULL,
    taken_time           TIMESTAMP,
    released_time        TIMESTAMP,
    CONSTRAINT jedi_dc_prestages_pk PRIMARY KEY (workflow_id, dataset),
    CONSTRAINT jedi_dc_prestages_workflow_fk FOREIGN KEY (workflow_id)
        REFERENCES doma_panda.jedi_wf_workflows (workflow_id),
    CONSTRAINT jedi_dc_prestages_request_fk FOREIGN KEY (request_id)
        REFERENCES doma_panda.jedi_dc_requests (request_id)
);

CREATE INDEX jedi_dc_prestages_request_idx ON doma_panda.jedi_dc_prestages (request_id);
CREATE INDEX jedi_dc_prestages_taken_idx ON doma_panda.jedi_dc_prestages (taken_time, released_time);

UPDATE doma_panda.jedi_wf_schema_version SET version = '1.4.0', applied_at = (CURRENT_TIMESTAMP AT TIME ZONE 'UTC')
WHERE component = 'pandajedi_wf' AND version = '1.3.0';
