-- pandajedi_wf 1.0.0, PostgreSQL: data carousel (tape staging) tables in schema doma_panda.
-- Oracle twin: sql/oracle/30_jedi_dc_requests.sql.

CREATE SEQUENCE doma_panda.jedi_dc_request_id_seq START WITH 1 INCREMENT BY 1;

-- One staging request per tape dataset, and several JEDI tasks may wait on it (jedi_dc_relations).
-- dataset_size and staged_size are bytes. need_by_time (1.4.0) is set while only workflows' pre-stages want the
-- request (jedi_dc_prestages): when its recall should start, NULL once a task waits on it.
CREATE TABLE doma_panda.jedi_dc_requests (
    request_id           BIGINT         NOT NULL,
    dataset              VARCHAR(512)   NOT NULL,
    scope                VARCHAR(64),
    source_rse           VARCHAR(64),
    source_tape          VARCHAR(64),
    destination_rse      VARCHAR(64),
    rule_id              VARCHAR(64),
    status               VARCHAR(32)    NOT NULL,
    prev_status          VARCHAR(32),
    total_files          INTEGER,
    staged_files         INTEGER,
    dataset_size         BIGINT,
    staged_size          BIGINT,
    gshare               VARCHAR(64),
    owner_user           VARCHAR(128),
    priority             INTEGER,
    pin_only             SMALLINT       DEFAULT 0 NOT NULL,
    n_source_switches    INTEGER        DEFAULT 0 NOT NULL,
    tried_sources        JSONB,
    rule_intent_time     TIMESTAMP,
    last_progress_time   TIMESTAMP,
    lifetime_until       TIMESTAMP,
    creation_time        TIMESTAMP      NOT NULL,
    start_time           TIMESTAMP,
    end_time             TIMESTAMP,
    modification_time    TIMESTAMP      NOT NULL,
    locked_by            VARCHAR(64),
    lock_time            TIMESTAMP,
    error_dialog         VARCHAR(4000),
    need_by_time         TIMESTAMP,
    CONSTRAINT jedi_dc_requests_pk PRIMARY KEY (request_id),
    CONSTRAINT jedi_dc_requests_pin_only_ck CHECK (pin_only IN (0, 1))
);

-- At most one live request per dataset: the statuses are the non-final states of
-- pandajedi_wf/carousel/lifecycle.py (a test keeps them equal).
CREATE UNIQUE INDEX jedi_dc_requests_active_uk ON doma_panda.jedi_dc_requests (dataset)
    WHERE status IN ('queued', 'submitting', 'staging', 'switching', 'done');
CREATE INDEX jedi_dc_requests_dataset_idx ON doma_panda.jedi_dc_requests (dataset);
CREATE INDEX jedi_dc_requests_tape_idx ON doma_panda.jedi_dc_requests (status, source_tape);
CREATE INDEX jedi_dc_requests_rule_idx ON doma_panda.jedi_dc_requests (rule_id);

-- Which JEDI task waits on which staging request. released_time is set when the task is let go.
CREATE TABLE doma_panda.jedi_dc_relations (
    request_id           BIGINT         NOT NULL,
    jedi_task_id         BIGINT         NOT NULL,
    creation_time        TIMESTAMP      NOT NULL,
    released_time        TIMESTAMP,
    CONSTRAINT jedi_dc_relations_pk PRIMARY KEY (request_id, jedi_task_id),
    CONSTRAINT jedi_dc_relations_request_fk FOREIGN KEY (request_id)
        REFERENCES doma_panda.jedi_dc_requests (request_id)
);

CREATE INDEX jedi_dc_relations_task_idx ON doma_panda.jedi_dc_relations (jedi_task_id);

-- 1.4.0: workflow-level pre-staging. A tape input of a later step of a workflow, planned when the workflow starts:
-- ready_time is the reading step's estimated earliest start, need_by_time when its recall should start. The
-- carousel takes the row in (taken_time, outcome 'requested', 'shared' with an active request, 'on_disk' or
-- 'unavailable', request_id the request it made or joined) and releases it once the workflow ended or is being
-- cancelled or finished (released_time): a request no task and no unreleased pre-stage wants is retired.
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

-- Measured recall throughput per tape (exponentially weighted moving average, bytes per second).
CREATE TABLE doma_panda.jedi_dc_tape_stats (
    tape                 VARCHAR(64)    NOT NULL,
    throughput_bps       DOUBLE PRECISION,
    n_samples            BIGINT         DEFAULT 0 NOT NULL,
    updated_at           TIMESTAMP,
    CONSTRAINT jedi_dc_tape_stats_pk PRIMARY KEY (tape)
);
