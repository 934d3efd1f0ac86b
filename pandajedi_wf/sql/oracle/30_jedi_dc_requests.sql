-- pandajedi_wf 1.0.0, Oracle: data carousel (tape staging) tables in schema ATLAS_PANDA.
-- PostgreSQL twin: sql/postgres/30_jedi_dc_requests.sql.

CREATE SEQUENCE ATLAS_PANDA.JEDI_DC_REQUEST_ID_SEQ START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;

-- One staging request per tape dataset, and several JEDI tasks may wait on it (jedi_dc_relations).
-- dataset_size and staged_size are bytes. need_by_time (1.4.0) is set while only workflows' pre-stages want the
-- request (jedi_dc_prestages): when its recall should start, NULL once a task waits on it.
CREATE TABLE ATLAS_PANDA.JEDI_DC_REQUESTS (
    request_id           NUMBER(11)     NOT NULL,
    dataset              VARCHAR2(512)  NOT NULL,
    scope                VARCHAR2(64),
    source_rse           VARCHAR2(64),
    source_tape          VARCHAR2(64),
    destination_rse      VARCHAR2(64),
    rule_id              VARCHAR2(64),
    status               VARCHAR2(32)   NOT NULL,
    prev_status          VARCHAR2(32),
    total_files          NUMBER(9),
    staged_files         NUMBER(9),
    dataset_size         NUMBER(20),
    staged_size          NUMBER(20),
    gshare               VARCHAR2(64),
    owner_user           VARCHAR2(128),
    priority             NUMBER(9),
    pin_only             NUMBER(1)      DEFAULT 0 NOT NULL,
    n_source_switches    NUMBER(9)      DEFAULT 0 NOT NULL,
    tried_sources        CLOB CHECK (tried_sources IS JSON),
    rule_intent_time     TIMESTAMP,
    last_progress_time   TIMESTAMP,
    lifetime_until       TIMESTAMP,
    creation_time        TIMESTAMP      NOT NULL,
    start_time           TIMESTAMP,
    end_time             TIMESTAMP,
    modification_time    TIMESTAMP      NOT NULL,
    locked_by            VARCHAR2(64),
    lock_time            TIMESTAMP,
    error_dialog         VARCHAR2(4000),
    need_by_time         TIMESTAMP,
    CONSTRAINT JEDI_DC_REQUESTS_PK PRIMARY KEY (request_id),
    CONSTRAINT JEDI_DC_REQUESTS_PIN_ONLY_CK CHECK (pin_only IN (0, 1))
);

-- At most one live request per dataset: the statuses are the non-final states of
-- pandajedi_wf/carousel/lifecycle.py (a test keeps them equal).
-- Function-based: rows outside the active statuses map to NULL, which Oracle leaves out of the index.
CREATE UNIQUE INDEX ATLAS_PANDA.JEDI_DC_REQUESTS_ACTIVE_UK ON ATLAS_PANDA.JEDI_DC_REQUESTS (
    CASE WHEN status IN ('queued', 'submitting', 'staging', 'switching', 'done') THEN dataset END
);
CREATE INDEX ATLAS_PANDA.JEDI_DC_REQUESTS_DATASET_IDX ON ATLAS_PANDA.JEDI_DC_REQUESTS (dataset);
CREATE INDEX ATLAS_PANDA.JEDI_DC_REQUESTS_TAPE_IDX ON ATLAS_PANDA.JEDI_DC_REQUESTS (status, source_tape);
CREATE INDEX ATLAS_PANDA.JEDI_DC_REQUESTS_RULE_IDX ON ATLAS_PANDA.JEDI_DC_REQUESTS (rule_id);

-- Which JEDI task waits on which staging request. released_time is set when the task is let go.
CREATE TABLE ATLAS_PANDA.JEDI_DC_RELATIONS (
    request_id           NUMBER(11)     NOT NULL,
    jedi_task_id         NUMBER(11)     NOT NULL,
    creation_time        TIMESTAMP      NOT NULL,
    released_time        TIMESTAMP,
    CONSTRAINT JEDI_DC_RELATIONS_PK PRIMARY KEY (request_id, jedi_task_id),
    CONSTRAINT JEDI_DC_RELATIONS_REQUEST_FK FOREIGN KEY (request_id)
        REFERENCES ATLAS_PANDA.JEDI_DC_REQUESTS (request_id)
);

CREATE INDEX ATLAS_PANDA.JEDI_DC_RELATIONS_TASK_IDX ON ATLAS_PANDA.JEDI_DC_RELATIONS (jedi_task_id);

-- 1.4.0: workflow-level pre-staging. A tape input of a later step of a workflow, planned when the workflow starts:
-- ready_time is the reading step's estimated earliest start, need_by_time when its recall should start. The
-- carousel takes the row in (taken_time, outcome 'requested', 'shared' with an active request, 'on_disk' or
-- 'unavailable', request_id the request it made or joined) and releases it once the workflow ended or is being
-- cancelled or finished (released_time): a request no task and no unreleased pre-stage wants is retired.
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

-- Measured recall throughput per tape (exponentially weighted moving average, bytes per second).
CREATE TABLE ATLAS_PANDA.JEDI_DC_TAPE_STATS (
    tape                 VARCHAR2(64)   NOT NULL,
    throughput_bps       BINARY_DOUBLE,
    n_samples            NUMBER(11)     DEFAULT 0 NOT NULL,
    updated_at           TIMESTAMP,
    CONSTRAINT JEDI_DC_TAPE_STATS_PK PRIMARY KEY (tape)
);
