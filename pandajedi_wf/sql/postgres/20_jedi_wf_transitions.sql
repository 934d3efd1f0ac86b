-- pandajedi_wf 1.0.0, PostgreSQL: tables shared by the workflow processor and the data carousel.
-- Oracle twin: sql/oracle/20_jedi_wf_transitions.sql.

CREATE SEQUENCE doma_panda.jedi_wf_transition_id_seq START WITH 1 INCREMENT BY 1;

-- Append-only history of status changes of workflows, steps and staging requests.
-- No foreign keys: it is written on every transition, by both agents, and purged on its own schedule.
CREATE TABLE doma_panda.jedi_wf_transitions (
    transition_id        BIGINT         NOT NULL,
    entity_type          VARCHAR(16)    NOT NULL,
    entity_id            BIGINT         NOT NULL,
    workflow_id          BIGINT,
    from_status          VARCHAR(32),
    to_status            VARCHAR(32)    NOT NULL,
    reason               VARCHAR(4000),
    actor                VARCHAR(128),
    transition_time      TIMESTAMP      NOT NULL,
    CONSTRAINT jedi_wf_transitions_pk PRIMARY KEY (transition_id),
    CONSTRAINT jedi_wf_transitions_type_ck CHECK (entity_type IN ('workflow', 'step', 'staging'))
);

CREATE INDEX jedi_wf_transitions_entity_idx ON doma_panda.jedi_wf_transitions (entity_type, entity_id);
CREATE INDEX jedi_wf_transitions_wf_idx ON doma_panda.jedi_wf_transitions (workflow_id);

-- One row per agent process: what its last cycle did, so operators see a stuck agent at a glance.
CREATE TABLE doma_panda.jedi_wf_agent_heartbeats (
    agent                VARCHAR(64)    NOT NULL,
    pid                  VARCHAR(128)   NOT NULL,
    host                 VARCHAR(128),
    cycle_start          TIMESTAMP,
    cycle_end            TIMESTAMP,
    n_cycles             BIGINT         DEFAULT 0 NOT NULL,
    last_status          VARCHAR(16),
    last_message         VARCHAR(4000),
    stats                JSONB,
    CONSTRAINT jedi_wf_agent_heartbeats_pk PRIMARY KEY (agent, pid)
);
