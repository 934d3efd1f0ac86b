-- pandajedi_wf 1.3.0, PostgreSQL: workflow tables in schema doma_panda.
-- Run as the owner of doma_panda (psql -f, or one psycopg2 execute per file).
-- Times are naive UTC written by the application. JSON columns are JSONB.
-- Oracle twin: sql/oracle/10_jedi_wf_workflows.sql (tests/test_ddl_equivalence.py keeps them equal).

-- Workflow ids come from upstream PanDA's doma_panda.workflow_id_seq, the sequence of its own workflows table:
-- the PanDA server gives a pchain_native submission its id from it and our intake keeps that id, so one
-- sequence for every workflow means no two workflows share an id. Prerequisite: upstream's schema for PanDA
-- >= 1.0.4 (doma_panda.workflows and doma_panda.workflow_id_seq) is installed in this database.

-- One row per user workflow (a pchain submission, or a sub-workflow of one).
-- The processor claims rows with status in its active set and check_after <= now,
-- ordered by check_after, FOR UPDATE SKIP LOCKED.
CREATE TABLE doma_panda.jedi_wf_workflows (
    workflow_id          BIGINT         NOT NULL,
    parent_workflow_id   BIGINT,
    name                 VARCHAR(256),
    user_name            VARCHAR(128)   NOT NULL,
    user_dn              VARCHAR(512),
    vo                   VARCHAR(32),
    prod_source_label    VARCHAR(32),
    language             VARCHAR(16),
    status               VARCHAR(32)    NOT NULL,
    prev_status          VARCHAR(32),
    out_ds               VARCHAR(256),
    definition           JSONB,
    request              JSONB,
    retry_policy         JSONB,
    error_dialog         VARCHAR(4000),
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    status_change_time   TIMESTAMP,
    check_after          TIMESTAMP,
    locked_by            VARCHAR(64),
    lock_time            TIMESTAMP,
    CONSTRAINT jedi_wf_workflows_pk PRIMARY KEY (workflow_id),
    CONSTRAINT jedi_wf_workflows_parent_fk FOREIGN KEY (parent_workflow_id)
        REFERENCES doma_panda.jedi_wf_workflows (workflow_id)
) WITH (fillfactor = 80);

-- The processor's queue: due workflows oldest first (its claim walks this index in ORDER BY order and stops at its
-- batch). An ended workflow's check_after is NULL, so it is not in the walk until a command makes it due.
CREATE INDEX jedi_wf_workflows_due_idx ON doma_panda.jedi_wf_workflows (check_after, workflow_id);
CREATE INDEX jedi_wf_workflows_user_idx ON doma_panda.jedi_wf_workflows (user_name, status);
CREATE INDEX jedi_wf_workflows_parent_idx ON doma_panda.jedi_wf_workflows (parent_workflow_id);

CREATE SEQUENCE doma_panda.jedi_wf_step_id_seq START WITH 1 INCREMENT BY 1;

-- One row per node instance of a workflow: a loop iteration or a scatter slice is its own row
-- (node_key tells them apart). task_name is unique so that a step submitted twice after a crash
-- can never produce two JEDI tasks with the same name. auto_retries counts the automatic retries the
-- processor started since the last user command on the step (its retry policy's budget).
CREATE TABLE doma_panda.jedi_wf_steps (
    step_id              BIGINT         NOT NULL,
    workflow_id          BIGINT         NOT NULL,
    node_key             VARCHAR(512)   NOT NULL,
    node_id              INTEGER,
    name                 VARCHAR(256),
    step_type            VARCHAR(32),
    status               VARCHAR(32)    NOT NULL,
    prev_status          VARCHAR(32),
    iteration            INTEGER        DEFAULT 0 NOT NULL,
    scatter_index        INTEGER,
    parent_keys          JSONB,
    condition            JSONB,
    jedi_task_id         BIGINT,
    task_name            VARCHAR(256),
    attempt_nr           INTEGER        DEFAULT 0 NOT NULL,
    generation           INTEGER        DEFAULT 0 NOT NULL,
    auto_retries         INTEGER        DEFAULT 0 NOT NULL,
    max_attempts         INTEGER,
    retry_after          TIMESTAMP,
    task_params          JSONB,
    outputs              JSONB,
    results              JSONB,
    error_class          VARCHAR(32),
    error_dialog         VARCHAR(4000),
    submit_intent_time   TIMESTAMP,
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    status_change_time   TIMESTAMP,
    CONSTRAINT jedi_wf_steps_pk PRIMARY KEY (step_id),
    CONSTRAINT jedi_wf_steps_node_uk UNIQUE (workflow_id, node_key),
    CONSTRAINT jedi_wf_steps_task_name_uk UNIQUE (task_name),
    CONSTRAINT jedi_wf_steps_workflow_fk FOREIGN KEY (workflow_id)
        REFERENCES doma_panda.jedi_wf_workflows (workflow_id)
) WITH (fillfactor = 80);

CREATE INDEX jedi_wf_steps_task_idx ON doma_panda.jedi_wf_steps (jedi_task_id);

CREATE SEQUENCE doma_panda.jedi_wf_data_id_seq START WITH 1 INCREMENT BY 1;

-- Datasets and containers a workflow produces or consumes.
CREATE TABLE doma_panda.jedi_wf_data (
    data_id              BIGINT         NOT NULL,
    workflow_id          BIGINT         NOT NULL,
    producer_step_id     BIGINT,
    name                 VARCHAR(256)   NOT NULL,
    data_type            VARCHAR(64),
    status               VARCHAR(32)    NOT NULL,
    n_files              INTEGER,
    n_files_done         INTEGER,
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    CONSTRAINT jedi_wf_data_pk PRIMARY KEY (data_id),
    CONSTRAINT jedi_wf_data_name_uk UNIQUE (workflow_id, name),
    CONSTRAINT jedi_wf_data_workflow_fk FOREIGN KEY (workflow_id)
        REFERENCES doma_panda.jedi_wf_workflows (workflow_id)
);

CREATE SEQUENCE doma_panda.jedi_wf_command_id_seq START WITH 1 INCREMENT BY 1;

-- User and operator commands (kill, retry, rerun, pause, resume, finish), queued for the processor.
CREATE TABLE doma_panda.jedi_wf_commands (
    command_id           BIGINT         NOT NULL,
    workflow_id          BIGINT         NOT NULL,
    command              VARCHAR(32)    NOT NULL,
    params               JSONB,
    requester            VARCHAR(512),
    requester_role       VARCHAR(64),
    status               VARCHAR(16)    NOT NULL,
    message              VARCHAR(4000),
    creation_time        TIMESTAMP      NOT NULL,
    done_time            TIMESTAMP,
    CONSTRAINT jedi_wf_commands_pk PRIMARY KEY (command_id),
    CONSTRAINT jedi_wf_commands_workflow_fk FOREIGN KEY (workflow_id)
        REFERENCES doma_panda.jedi_wf_workflows (workflow_id)
);

CREATE INDEX jedi_wf_commands_wf_idx ON doma_panda.jedi_wf_commands (workflow_id, status);
CREATE INDEX jedi_wf_commands_status_idx ON doma_panda.jedi_wf_commands (status, creation_time);
