-- Upstream PanDA/JEDI tables needed to run upstream code in tests and the demo.
-- Written for pandajedi_wf (not upstream's schema): column lists follow the installed
-- Spec classes (no Spec class; columns from the upstream SQL on T_TASK and PRODSYS_COMM) and the SQL of the upstream code paths the tests drive.
-- Partitioned JEDI tables get only a DEFAULT partition (no pg_partman here).

SET search_path = doma_deft;

CREATE SEQUENCE prodsys2_task_id_seq;

-- task requests; insertTaskParamsPanda writes here and getTasksToRefine_JEDI reads status 'waiting'
CREATE TABLE t_task (
    taskid bigint NOT NULL PRIMARY KEY,
    parent_tid bigint,
    chain_tid bigint,
    status varchar(12),
    total_done_jobs bigint,
    total_req_jobs bigint,
    total_events bigint,
    total_input_events bigint,
    submit_time timestamp NOT NULL,
    start_time timestamp,
    timestamp timestamp,
    vo varchar(32),
    prodsourcelabel varchar(20),
    taskname text,
    username varchar(128),
    priority bigint,
    current_priority bigint,
    jedi_task_parameters text
);
CREATE INDEX t_task_status_idx ON t_task (status, vo, prodsourcelabel);

-- commands to tasks (kill, finish, retry, pause, resume), executed by TaskCommando
CREATE TABLE prodsys_comm (
    comm_task bigint NOT NULL PRIMARY KEY,
    comm_meta bigint,
    comm_owner varchar(32),
    comm_cmd text,
    comm_ts bigint,
    comm_comment varchar(128),
    comm_parameters text
);
