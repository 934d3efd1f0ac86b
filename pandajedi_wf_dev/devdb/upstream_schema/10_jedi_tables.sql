-- Upstream PanDA/JEDI tables needed to run upstream code in tests and the demo.
-- Written for pandajedi_wf (not upstream's schema): column lists follow the installed
-- Spec classes (JediTaskSpec, JediDatasetSpec, JediFileSpec) and the SQL of the upstream code paths the tests drive.
-- Partitioned JEDI tables get only a DEFAULT partition (no pg_partman here).

SET search_path = doma_panda;

CREATE SEQUENCE jedi_datasets_id_seq;
CREATE SEQUENCE jedi_dataset_cont_fileid_seq;
CREATE SEQUENCE jedi_output_template_id_seq;

CREATE TABLE jedi_tasks (
    jeditaskid bigint,
    taskname text,
    status text,
    username text,
    creationdate timestamp,
    modificationtime timestamp,
    starttime timestamp,
    endtime timestamp,
    frozentime timestamp,
    prodsourcelabel text,
    workinggroup text,
    vo text,
    corecount bigint,
    tasktype text,
    processingtype text,
    taskpriority bigint,
    currentpriority bigint,
    architecture text,
    transuses text,
    transhome text,
    transpath text,
    lockedby text,
    lockedtime timestamp,
    termcondition text,
    splitrule text,
    walltime bigint,
    walltimeunit text,
    outdiskcount bigint,
    outdiskunit text,
    workdiskcount bigint,
    workdiskunit text,
    ramcount bigint,
    ramunit text,
    iointensity bigint,
    iointensityunit text,
    workqueue_id bigint,
    progress bigint,
    failurerate bigint,
    errordialog text,
    reqid bigint,
    oldstatus text,
    cloud text,
    site text,
    countrygroup text,
    parent_tid bigint,
    eventservice bigint,
    ticketid text,
    ticketsystemtype text,
    statechangetime timestamp,
    superstatus text,
    campaign text,
    mergeramcount bigint,
    mergeramunit text,
    mergewalltime bigint,
    mergewalltimeunit text,
    throttledtime timestamp,
    numthrottled bigint,
    mergecorecount bigint,
    goal bigint,
    assessmenttime timestamp,
    cputime bigint,
    cputimeunit text,
    cpuefficiency bigint,
    basewalltime bigint,
    nucleus text,
    baseramcount bigint,
    ttcrequested timestamp,
    ttcpredicted timestamp,
    ttcpredictiondate timestamp,
    rescuetime timestamp,
    requesttype text,
    gshare text,
    resource_type text,
    usejumbo text,
    diskio bigint,
    diskiounit text,
    memory_leak_core bigint,
    memory_leak_x2 double precision,
    attemptnr bigint,
    container_name text,
    framework text,
    activatedtime timestamp,
    queuedtime timestamp,
    actiontime timestamp,
    realmodificationtime timestamp,
    PRIMARY KEY (jeditaskid)
) PARTITION BY RANGE (jeditaskid);
CREATE TABLE jedi_tasks_default PARTITION OF jedi_tasks DEFAULT;
CREATE INDEX jedi_tasks_status_idx ON jedi_tasks (status, vo, prodsourcelabel);
CREATE INDEX jedi_tasks_name_idx ON jedi_tasks (taskname);
-- As upstream's schema has them (panda-database: JEDI_TASKS_REALMODTIME_IDX on both backends, trigger
-- UPDATE_REALMODIFICATIONTIME): realModificationTime is the real time of the last change of modificationTime (JEDI
-- writes old modificationTimes on purpose to reorder its queues), and indexed. The workflow processor's wake-up reads
-- changed tasks through it.
CREATE INDEX jedi_tasks_realmodtime_idx ON jedi_tasks (realmodificationtime);
CREATE FUNCTION jedi_tasks_realmodtime_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.modificationtime IS DISTINCT FROM OLD.modificationtime THEN
        NEW.realmodificationtime := CURRENT_TIMESTAMP AT TIME ZONE 'UTC';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jedi_tasks_realmodtime BEFORE INSERT OR UPDATE ON jedi_tasks FOR EACH ROW EXECUTE FUNCTION jedi_tasks_realmodtime_trg();

CREATE TABLE jedi_datasets (
    jeditaskid bigint,
    datasetid bigint,
    datasetname text,
    containername text,
    type text,
    creationtime timestamp,
    modificationtime timestamp,
    vo text,
    cloud text,
    site text,
    masterid bigint,
    provenanceid bigint,
    status text,
    state text,
    statechecktime timestamp,
    statecheckexpiration timestamp,
    frozentime timestamp,
    nfiles bigint,
    nfilestobeused bigint,
    nfilesused bigint,
    nfilesfinished bigint,
    nfilesfailed bigint,
    nfilesonhold bigint,
    nevents bigint,
    neventstobeused bigint,
    neventsused bigint,
    lockedby text,
    lockedtime timestamp,
    attributes text,
    streamname text,
    storagetoken text,
    destination text,
    templateid bigint,
    nfileswaiting bigint,
    nfilesmissing bigint,
    PRIMARY KEY (jeditaskid, datasetid)
) PARTITION BY RANGE (jeditaskid);
CREATE TABLE jedi_datasets_default PARTITION OF jedi_datasets DEFAULT;

CREATE TABLE jedi_dataset_contents (
    jeditaskid bigint,
    datasetid bigint,
    fileid bigint,
    creationdate timestamp,
    lastattempttime timestamp,
    lfn text,
    guid text,
    type text,
    status text,
    fsize bigint,
    checksum text,
    scope text,
    attemptnr bigint,
    maxattempt bigint,
    nevents bigint,
    keeptrack bigint,
    startevent bigint,
    endevent bigint,
    firstevent bigint,
    boundaryid bigint,
    pandaid bigint,
    failedattempt bigint,
    lumiblocknr bigint,
    outpandaid bigint,
    maxfailure bigint,
    ramcount bigint,
    is_waiting text,
    proc_status text,
    constituent_id bigint,
    PRIMARY KEY (jeditaskid, datasetid, fileid)
) PARTITION BY RANGE (jeditaskid);
CREATE TABLE jedi_dataset_contents_default PARTITION OF jedi_dataset_contents DEFAULT;
CREATE INDEX jedi_dataset_contents_status_idx ON jedi_dataset_contents (jeditaskid, datasetid, status);

CREATE TABLE jedi_taskparams (
    jeditaskid bigint NOT NULL,
    taskparams text,
    PRIMARY KEY (jeditaskid)
) PARTITION BY RANGE (jeditaskid);
CREATE TABLE jedi_taskparams_default PARTITION OF jedi_taskparams DEFAULT;

CREATE TABLE jedi_jobparams_template (
    jeditaskid bigint NOT NULL,
    jobparamstemplate text,
    PRIMARY KEY (jeditaskid)
);

CREATE TABLE jedi_output_template (
    jeditaskid bigint NOT NULL,
    datasetid bigint NOT NULL,
    outtempid bigint NOT NULL DEFAULT nextval('jedi_output_template_id_seq'),
    filenametemplate text,
    maxserialnr bigint,
    serialnr bigint,
    sourcename text,
    streamname text,
    outtype varchar(20),
    PRIMARY KEY (jeditaskid, datasetid, outtempid)
);

CREATE TABLE jedi_events (
    jeditaskid bigint NOT NULL,
    pandaid bigint NOT NULL,
    fileid bigint NOT NULL,
    job_processid bigint NOT NULL,
    datasetid bigint,
    status smallint,
    def_min_eventid bigint,
    def_max_eventid bigint,
    processed_upto_eventid bigint,
    attemptnr smallint,
    objstore_id bigint,
    event_offset bigint,
    is_jumbo smallint,
    ziprow_id bigint,
    file_not_deleted char(1),
    error_code integer,
    path_convention smallint,
    error_diag varchar(500),
    PRIMARY KEY (jeditaskid, pandaid, fileid, job_processid)
);

CREATE TABLE jedi_dataset_locality (
    jeditaskid bigint NOT NULL,
    datasetid bigint NOT NULL,
    rse text NOT NULL,
    timestamp timestamp,
    PRIMARY KEY (jeditaskid, datasetid, rse)
);

CREATE TABLE jedi_process_lock (
    vo varchar(16) NOT NULL,
    prodsourcelabel varchar(20) NOT NULL,
    cloud varchar(10),
    workqueue_id integer NOT NULL,
    resource_type varchar(56) NOT NULL,
    component varchar(56),
    lockedby varchar(40) NOT NULL,
    lockedtime timestamp NOT NULL
);
CREATE UNIQUE INDEX jedi_process_lock_uq ON jedi_process_lock (vo, prodsourcelabel, cloud, workqueue_id, resource_type, component);

-- min jediTaskID per status, refreshed by jedi_refresh_min_taskid_by_status() (pg_cron upstream)
CREATE TABLE jedi_aux_status_mintaskid (
    status varchar(64) NOT NULL PRIMARY KEY,
    min_jeditaskid bigint NOT NULL
);

CREATE TABLE jedi_work_queue (
    queue_id integer NOT NULL PRIMARY KEY,
    queue_name varchar(16) NOT NULL,
    queue_type varchar(16) NOT NULL,
    vo varchar(16) NOT NULL,
    status varchar(64),
    partitionid integer,
    stretchable smallint,
    queue_share smallint,
    queue_order smallint,
    criteria text,
    variables text,
    queue_function varchar(16)
);

CREATE TABLE jedi_job_retry_history (
    jeditaskid bigint NOT NULL,
    oldpandaid bigint NOT NULL,
    newpandaid bigint NOT NULL,
    ins_utc_tstamp timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
    relationtype varchar(16),
    originpandaid bigint
);

-- one row per task status change (record_task_status_change)
CREATE TABLE tasks_statuslog (
    jeditaskid bigint NOT NULL,
    modificationtime timestamp NOT NULL,
    status text NOT NULL,
    modificationhost text,
    attemptnr bigint,
    reason text
);
CREATE INDEX tasks_statuslog_task_idx ON tasks_statuslog (jeditaskid);

-- one row per task attempt (register, retry), written by registerTaskInOneShot_JEDI and retries
CREATE TABLE task_attempts (
    jeditaskid bigint NOT NULL,
    attemptnr bigint NOT NULL,
    starttime timestamp,
    endtime timestamp,
    startstatus text,
    endstatus text,
    PRIMARY KEY (jeditaskid, attemptnr)
);

CREATE TABLE task_evaluation (
    jeditaskid bigint NOT NULL,
    metric varchar(128) NOT NULL,
    value_json jsonb,
    timestamp timestamp,
    PRIMARY KEY (jeditaskid, metric)
);
