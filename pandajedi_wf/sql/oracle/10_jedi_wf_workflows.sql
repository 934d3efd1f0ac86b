-- pandajedi_wf 1.3.0, Oracle: workflow tables in schema ATLAS_PANDA.
-- Run as the owner of ATLAS_PANDA (sqlplus @file).
-- Times are naive UTC written by the application. JSON columns are CLOB checked IS JSON.
-- PostgreSQL twin: sql/postgres/10_jedi_wf_workflows.sql (tests/test_ddl_equivalence.py keeps them equal).

-- Workflow ids come from upstream PanDA's ATLAS_PANDA.WORKFLOW_ID_SEQ, the sequence of its own WORKFLOWS table:
-- the PanDA server gives a pchain_native submission its id from it and our intake keeps that id, so one
-- sequence for every workflow means no two workflows share an id. Prerequisite: upstream's schema for PanDA
-- >= 1.0.4 (ATLAS_PANDA.WORKFLOWS and ATLAS_PANDA.WORKFLOW_ID_SEQ) is installed in this schema.

-- One row per user workflow (a pchain submission, or a sub-workflow of one).
-- The processor claims rows with status in its active set and check_after <= now,
-- ordered by check_after, FOR UPDATE SKIP LOCKED.
CREATE TABLE ATLAS_PANDA.JEDI_WF_WORKFLOWS (
    workflow_id          NUMBER(11)     NOT NULL,
    parent_workflow_id   NUMBER(11),
    name                 VARCHAR2(256),
    user_name            VARCHAR2(128)  NOT NULL,
    user_dn              VARCHAR2(512),
    vo                   VARCHAR2(32),
    prod_source_label    VARCHAR2(32),
    language             VARCHAR2(16),
    status               VARCHAR2(32)   NOT NULL,
    prev_status          VARCHAR2(32),
    out_ds               VARCHAR2(256),
    definition           CLOB CHECK (definition IS JSON),
    request              CLOB CHECK (request IS JSON),
    retry_policy         CLOB CHECK (retry_policy IS JSON),
    error_dialog         VARCHAR2(4000),
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    status_change_time   TIMESTAMP,
    check_after          TIMESTAMP,
    locked_by            VARCHAR2(64),
    lock_time            TIMESTAMP,
    CONSTRAINT JEDI_WF_WORKFLOWS_PK PRIMARY KEY (workflow_id),
    CONSTRAINT JEDI_WF_WORKFLOWS_PARENT_FK FOREIGN KEY (parent_workflow_id)
        REFERENCES ATLAS_PANDA.JEDI_WF_WORKFLOWS (workflow_id)
) PCTFREE 20;

-- The processor's queue: due workflows oldest first (its claim walks this index in ORDER BY order and stops at its
-- batch). An ended workflow's check_after is NULL, so it is not in the walk (nor in the index) until a command
-- makes it due.
CREATE INDEX ATLAS_PANDA.JEDI_WF_WORKFLOWS_DUE_IDX ON ATLAS_PANDA.JEDI_WF_WORKFLOWS (check_after, workflow_id);
CREATE INDEX ATLAS_PANDA.JEDI_WF_WORKFLOWS_USER_IDX ON ATLAS_PANDA.JEDI_WF_WORKFLOWS (user_name, status);
CREATE INDEX ATLAS_PANDA.JEDI_WF_WORKFLOWS_PARENT_IDX ON ATLAS_PANDA.JEDI_WF_WORKFLOWS (parent_workflow_id);

CREATE SEQUENCE ATLAS_PANDA.JEDI_WF_STEP_ID_SEQ START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;

-- One row per node instance of a workflow: a loop iteration or a scatter slice is its own row
-- (node_key tells them apart). task_name is unique so that a step submitted twice after a crash
-- can never produce two JEDI tasks with the same name. auto_retries counts the automatic retries the
-- processor started since the last user command on the step (its retry policy's budget).
CREATE TABLE ATLAS_PANDA.JEDI_WF_STEPS (
    step_id              NUMBER(11)     NOT NULL,
    workflow_id          NUMBER(11)     NOT NULL,
    node_key             VARCHAR2(512)  NOT NULL,
    node_id              NUMBER(9),
    name                 VARCHAR2(256),
    step_type            VARCHAR2(32),
    status               VARCHAR2(32)   NOT NULL,
    prev_status          VARCHAR2(32),
    iteration            NUMBER(9)      DEFAULT 0 NOT NULL,
    scatter_index        NUMBER(9),
    parent_keys          CLOB CHECK (parent_keys IS JSON),
    condition            CLOB CHECK (condition IS JSON),
    jedi_task_id         NUMBER(11),
    task_name            VARCHAR2(256),
    attempt_nr           NUMBER(9)      DEFAULT 0 NOT NULL,
    generation           NUMBER(9)      DEFAULT 0 NOT NULL,
    auto_retries         NUMBER(9)      DEFAULT 0 NOT NULL,
    max_attempts         NUMBER(9),
    retry_after          TIMESTAMP,
    task_params          CLOB CHECK (task_params IS JSON),
    outputs              CLOB CHECK (outputs IS JSON),
    results              CLOB CHECK (results IS JSON),
    error_class          VARCHAR2(32),
    error_dialog         VARCHAR2(4000),
    submit_intent_time   TIMESTAMP,
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    status_change_time   TIMESTAMP,
    CONSTRAINT JEDI_WF_STEPS_PK PRIMARY KEY (step_id),
    CONSTRAINT JEDI_WF_STEPS_NODE_UK UNIQUE (workflow_id, node_key),
    CONSTRAINT JEDI_WF_STEPS_TASK_NAME_UK UNIQUE (task_name),
    CONSTRAINT JEDI_WF_STEPS_WORKFLOW_FK FOREIGN KEY (workflow_id)
        REFERENCES ATLAS_PANDA.JEDI_WF_WORKFLOWS (workflow_id)
) PCTFREE 20;

CREATE INDEX ATLAS_PANDA.JEDI_WF_STEPS_TASK_IDX ON ATLAS_PANDA.JEDI_WF_STEPS (jedi_task_id);

CREATE SEQUENCE ATLAS_PANDA.JEDI_WF_DATA_ID_SEQ START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;

-- Datasets and containers a workflow produces or consumes.
CREATE TABLE ATLAS_PANDA.JEDI_WF_DATA (
    data_id              NUMBER(11)     NOT NULL,
    workflow_id          NUMBER(11)     NOT NULL,
    producer_step_id     NUMBER(11),
    name                 VARCHAR2(256)  NOT NULL,
    data_type            VARCHAR2(64),
    status               VARCHAR2(32)   NOT NULL,
    n_files              NUMBER(9),
    n_files_done         NUMBER(9),
    creation_time        TIMESTAMP      NOT NULL,
    modification_time    TIMESTAMP      NOT NULL,
    CONSTRAINT JEDI_WF_DATA_PK PRIMARY KEY (data_id),
    CONSTRAINT JEDI_WF_DATA_NAME_UK UNIQUE (workflow_id, name),
    CONSTRAINT JEDI_WF_DATA_WORKFLOW_FK FOREIGN KEY (workflow_id)
        REFERENCES ATLAS_PANDA.JEDI_WF_WORKFLOWS (workflow_id)
);

CREATE SEQUENCE ATLAS_PANDA.JEDI_WF_COMMAND_ID_SEQ START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;

-- User and operator commands (kill, retry, rerun, pause, resume, finish), queued for the processor.
CREATE TABLE ATLAS_PANDA.JEDI_WF_COMMANDS (
    command_id           NUMBER(11)     NOT NULL,
    workflow_id          NUMBER(11)     NOT NULL,
    command              VARCHAR2(32)   NOT NULL,
    params               CLOB CHECK (params IS JSON),
    requester            VARCHAR2(512),
    requester_role       VARCHAR2(64),
    status               VARCHAR2(16)   NOT NULL,
    message              VARCHAR2(4000),
    creation_time        TIMESTAMP      NOT NULL,
    done_time            TIMESTAMP,
    CONSTRAINT JEDI_WF_COMMANDS_PK PRIMARY KEY (command_id),
    CONSTRAINT JEDI_WF_COMMANDS_WORKFLOW_FK FOREIGN KEY (workflow_id)
        REFERENCES ATLAS_PANDA.JEDI_WF_WORKFLOWS (workflow_id)
);

CREATE INDEX ATLAS_PANDA.JEDI_WF_COMMANDS_WF_IDX ON ATLAS_PANDA.JEDI_WF_COMMANDS (workflow_id, status);
CREATE INDEX ATLAS_PANDA.JEDI_WF_COMMANDS_STATUS_IDX ON ATLAS_PANDA.JEDI_WF_COMMANDS (status, creation_time);
