-- pandajedi_wf 1.0.0, Oracle: tables shared by the workflow processor and the data carousel.
-- PostgreSQL twin: sql/postgres/20_jedi_wf_transitions.sql.

CREATE SEQUENCE ATLAS_PANDA.JEDI_WF_TRANSITION_ID_SEQ START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;

-- Append-only history of status changes of workflows, steps and staging requests.
-- No foreign keys: it is written on every transition, by both agents, and purged on its own schedule.
CREATE TABLE ATLAS_PANDA.JEDI_WF_TRANSITIONS (
    transition_id        NUMBER(11)     NOT NULL,
    entity_type          VARCHAR2(16)   NOT NULL,
    entity_id            NUMBER(11)     NOT NULL,
    workflow_id          NUMBER(11),
    from_status          VARCHAR2(32),
    to_status            VARCHAR2(32)   NOT NULL,
    reason               VARCHAR2(4000),
    actor                VARCHAR2(128),
    transition_time      TIMESTAMP      NOT NULL,
    CONSTRAINT JEDI_WF_TRANSITIONS_PK PRIMARY KEY (transition_id),
    CONSTRAINT JEDI_WF_TRANSITIONS_TYPE_CK CHECK (entity_type IN ('workflow', 'step', 'staging'))
);

CREATE INDEX ATLAS_PANDA.JEDI_WF_TRANSITIONS_ENTITY_IDX ON ATLAS_PANDA.JEDI_WF_TRANSITIONS (entity_type, entity_id);
CREATE INDEX ATLAS_PANDA.JEDI_WF_TRANSITIONS_WF_IDX ON ATLAS_PANDA.JEDI_WF_TRANSITIONS (workflow_id);

-- One row per agent process: what its last cycle did, so operators see a stuck agent at a glance.
CREATE TABLE ATLAS_PANDA.JEDI_WF_AGENT_HEARTBEATS (
    agent                VARCHAR2(64)   NOT NULL,
    pid                  VARCHAR2(128)  NOT NULL,
    host                 VARCHAR2(128),
    cycle_start          TIMESTAMP,
    cycle_end            TIMESTAMP,
    n_cycles             NUMBER(11)     DEFAULT 0 NOT NULL,
    last_status          VARCHAR2(16),
    last_message         VARCHAR2(4000),
    stats                CLOB CHECK (stats IS JSON),
    CONSTRAINT JEDI_WF_AGENT_HEARTBEATS_PK PRIMARY KEY (agent, pid)
);
