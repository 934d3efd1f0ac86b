-- pandajedi_wf 1.3.0 -> 1.4.0, Oracle. Run as the owner of ATLAS_PANDA (sqlplus @file) on a schema whose
-- JEDI_WF_SCHEMA_VERSION row says 1.3.0. PostgreSQL twin: sql/postgres/upgrades/1.3.0_to_1.4.0.sql.
-- Each change is its own block below, saying why.

-- * Workflow-level pre-staging: a staging request only workflows' pre-stages want carries when its recall should
--   start (NULL for every request made before: each was made for a waiting task).
ALTER TABLE ATLAS_PANDA.JEDI_DC_REQUESTS ADD (need_by_time TIMESTAMP);

-- * Workflow-level pre-staging: the tape inputs of a workflow's later steps, planned when it starts, each taken
--   in by the carousel (a request made or joined) and released once the workflow no longer needs it.
CREATE TABLE ATLAS_PANDA.JEDI_DC_PRESTAGES (
    workflow_id          NUMBER(11)     NOT NULL,
    dataset              VARCHAR2(512)  NOT NULL,
    node_key             VARCHAR2(512)  NOT NULL,
    ready_time           TIMESTAMP      NOT NULL,
    need_by_time         TIMESTAMP      NOT NULL,
    request_id           NUMBER(11),
    outcome              VARCHAR2(16),
    creation_time        TIMESTAMP      NOT NULL,
    taken_time           TIMESTAMP,
    released_time        TIMESTAMP,
    CONSTRAINT JEDI_DC_PRESTAGES_PK PRIMARY KEY (workflow_id, dataset),
    CONSTRAINT JEDI_DC_PRESTAGES_WORKFLOW_FK FOREIGN KEY (workflow_id)
        REFERENCES ATLAS_PANDA.JEDI_WF_WORKFLOWS (workflow_id),
    CONSTRAINT JEDI_DC_PRESTAGES_REQUEST_FK FOREIGN KEY (request_id)
        REFERENCES ATLAS_PANDA.JEDI_DC_REQUESTS (request_id)
);

CREATE INDEX ATLAS_PANDA.JEDI_DC_PRESTAGES_REQUEST_IDX ON ATLAS_PANDA.JEDI_DC_PRESTAGES (request_id);
CREATE INDEX ATLAS_PANDA.JEDI_DC_PRESTAGES_TAKEN_IDX ON ATLAS_PANDA.JEDI_DC_PRESTAGES (taken_time, released_time);

UPDATE ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION SET version = '1.4.0', applied_at = SYS_EXTRACT_UTC(SYSTIMESTAMP)
WHERE component = 'pandajedi_wf' AND version = '1.3.0';

COMMIT;
