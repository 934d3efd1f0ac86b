-- Upstream PanDA/JEDI tables needed to run upstream code in tests and the demo.
-- Written for pandajedi_wf (not upstream's schema): column lists follow the installed
-- Spec classes (pandaserver/workflow/workflow_base.py: WorkflowSpec, WFStepSpec, WFDataSpec; sequences from their
-- _seqAttrMap) and the SQL of pandaserver/taskbuffer/db_proxy_mods/workflow_module.py.
-- These are upstream's native-workflow tables (schemaJEDI): the server's submit_workflow_raw_request writes a
-- 'registered' row here. This project's own tables are named jedi_wf_* and never these.
-- JSON columns are text: the Spec classes json.loads them, which a jsonb read back as a dict would break.

SET search_path = doma_panda;

CREATE SEQUENCE workflow_id_seq;
CREATE SEQUENCE workflow_step_id_seq;
CREATE SEQUENCE workflow_data_id_seq;

CREATE TABLE workflows (
    workflow_id bigint NOT NULL PRIMARY KEY,
    name text,
    parent_id bigint,
    loop_count bigint,
    status varchar(32) NOT NULL,
    prodsourcelabel varchar(20),
    username varchar(128),
    creation_time timestamp NOT NULL,
    start_time timestamp,
    end_time timestamp,
    modification_time timestamp,
    check_time timestamp,
    locked_by varchar(64),
    lock_time timestamp,
    raw_request_json text,
    definition_json text,
    parameters text
);
-- WorkflowInterface picks workflows by status and check_time; sub-workflows by parent
CREATE INDEX workflows_status_idx ON workflows (status, check_time);
CREATE INDEX workflows_parent_idx ON workflows (parent_id);
CREATE INDEX workflows_user_idx ON workflows (username);

CREATE TABLE workflow_steps (
    step_id bigint NOT NULL PRIMARY KEY,
    name text,
    workflow_id bigint NOT NULL,
    member_id bigint,
    type varchar(32),
    status varchar(32) NOT NULL,
    flavor varchar(32),
    target_id varchar(64),
    creation_time timestamp NOT NULL,
    start_time timestamp,
    end_time timestamp,
    modification_time timestamp,
    check_time timestamp,
    locked_by varchar(64),
    lock_time timestamp,
    definition_json text,
    parameters text
);
CREATE INDEX workflow_steps_workflow_idx ON workflow_steps (workflow_id, status);

CREATE TABLE workflow_data (
    data_id bigint NOT NULL PRIMARY KEY,
    name text,
    workflow_id bigint NOT NULL,
    source_step_id bigint,
    type varchar(32),
    status varchar(32) NOT NULL,
    flavor varchar(32),
    target_id varchar(256),
    creation_time timestamp NOT NULL,
    start_time timestamp,
    end_time timestamp,
    modification_time timestamp,
    check_time timestamp,
    locked_by varchar(64),
    lock_time timestamp,
    metadata text,
    parameters text
);
CREATE INDEX workflow_data_workflow_idx ON workflow_data (workflow_id, status);
CREATE INDEX workflow_data_name_idx ON workflow_data (name, workflow_id);
