-- Upstream PanDA/JEDI tables needed to run upstream code in tests and the demo.
-- Written for pandajedi_wf (not upstream's schema): column lists follow the installed
-- Spec classes (JobSpec, FileSpec, DatasetSpec) and the SQL of the upstream code paths the tests drive.
-- Partitioned JEDI tables get only a DEFAULT partition (no pg_partman here).

SET search_path = doma_panda;

CREATE SEQUENCE jobsdefined4_pandaid_seq;
CREATE SEQUENCE filestable4_row_id_seq;
CREATE SEQUENCE subcounter_subid_seq;

CREATE TABLE jobsactive4 (
    pandaid bigint,
    jobdefinitionid bigint,
    schedulerid text,
    pilotid text,
    creationtime timestamp,
    creationhost text,
    modificationtime timestamp,
    modificationhost text,
    atlasrelease text,
    transformation text,
    homepackage text,
    prodserieslabel text,
    prodsourcelabel text,
    produserid text,
    assignedpriority bigint,
    currentpriority bigint,
    attemptnr bigint,
    maxattempt bigint,
    jobstatus text,
    jobname text,
    maxcpucount bigint,
    maxcpuunit text,
    maxdiskcount bigint,
    maxdiskunit text,
    ipconnectivity text,
    minramcount bigint,
    minramunit text,
    starttime timestamp,
    endtime timestamp,
    cpuconsumptiontime bigint,
    cpuconsumptionunit text,
    commandtopilot text,
    transexitcode text,
    piloterrorcode bigint,
    piloterrordiag text,
    exeerrorcode bigint,
    exeerrordiag text,
    superrorcode bigint,
    superrordiag text,
    ddmerrorcode bigint,
    ddmerrordiag text,
    brokerageerrorcode bigint,
    brokerageerrordiag text,
    jobdispatchererrorcode bigint,
    jobdispatchererrordiag text,
    taskbuffererrorcode bigint,
    taskbuffererrordiag text,
    computingsite text,
    computingelement text,
    jobparameters text,
    metadata text,
    proddblock text,
    dispatchdblock text,
    destinationdblock text,
    destinationse text,
    nevents bigint,
    grid text,
    cloud text,
    cpuconversion double precision,
    sourcesite text,
    destinationsite text,
    transfertype text,
    taskid bigint,
    cmtconfig text,
    statechangetime timestamp,
    proddbupdatetime timestamp,
    lockedby text,
    relocationflag bigint,
    jobexecutionid bigint,
    vo text,
    pilottiming text,
    workinggroup text,
    processingtype text,
    produsername text,
    ninputfiles bigint,
    countrygroup text,
    batchid text,
    parentid bigint,
    specialhandling text,
    jobsetid bigint,
    corecount bigint,
    ninputdatafiles bigint,
    inputfiletype text,
    inputfileproject text,
    inputfilebytes bigint,
    noutputdatafiles bigint,
    outputfilebytes bigint,
    jobmetrics text,
    workqueue_id bigint,
    jeditaskid bigint,
    jobsubstatus text,
    actualcorecount bigint,
    reqid bigint,
    maxrss bigint,
    maxvmem bigint,
    maxswap bigint,
    maxpss bigint,
    avgrss bigint,
    avgvmem bigint,
    avgswap bigint,
    avgpss bigint,
    maxwalltime bigint,
    nucleus text,
    eventservice bigint,
    failedattempt bigint,
    hs06sec bigint,
    gshare text,
    hs06 bigint,
    totrchar bigint,
    totwchar bigint,
    totrbytes bigint,
    totwbytes bigint,
    raterchar bigint,
    ratewchar bigint,
    raterbytes bigint,
    ratewbytes bigint,
    resource_type text,
    diskio bigint,
    memory_leak bigint,
    memory_leak_x2 double precision,
    container_name text,
    job_label text,
    gco2_regional double precision,
    gco2_global double precision,
    cpu_architecture_level text,
    outputfiletype text,
    meancorecount double precision,
    PRIMARY KEY (pandaid)
);
CREATE TABLE jobsdefined4 (LIKE jobsactive4 INCLUDING ALL);
CREATE TABLE jobswaiting4 (LIKE jobsactive4 INCLUDING ALL);
CREATE TABLE jobsarchived4 (LIKE jobsactive4 INCLUDING ALL);
CREATE INDEX jobsactive4_task_idx ON jobsactive4 (jeditaskid);
CREATE INDEX jobsdefined4_task_idx ON jobsdefined4 (jeditaskid);
CREATE INDEX jobsarchived4_task_idx ON jobsarchived4 (jeditaskid);
-- the archive of old jobs (schemaPANDAARCH), read beside jobsArchived4 by upstream's get_task_failure_metrics, which
-- retryTask_JEDI runs on every retry; nothing here writes it
CREATE TABLE doma_pandaarch.jobsarchived (LIKE jobsactive4 INCLUDING ALL);

CREATE TABLE filestable4 (
    row_id bigint,
    pandaid bigint,
    guid text,
    lfn text,
    type text,
    dataset text,
    status text,
    proddblock text,
    proddblocktoken text,
    dispatchdblock text,
    dispatchdblocktoken text,
    destinationdblock text,
    destinationdblocktoken text,
    destinationse text,
    fsize bigint,
    md5sum text,
    checksum text,
    scope text,
    jeditaskid bigint,
    datasetid bigint,
    fileid bigint,
    attemptnr bigint,
    modificationtime timestamp,
    PRIMARY KEY (row_id)
);
CREATE INDEX filestable4_pandaid_idx ON filestable4 (pandaid);

CREATE TABLE jobparamstable (
    pandaid bigint NOT NULL PRIMARY KEY,
    modificationtime timestamp,
    jobparameters text
);

CREATE TABLE metatable (
    pandaid bigint NOT NULL PRIMARY KEY,
    modificationtime timestamp,
    metadata text
);

CREATE TABLE datasets (
    vuid text,
    name text,
    version text,
    type text,
    status text,
    numberfiles bigint,
    currentfiles bigint,
    creationdate timestamp,
    modificationdate timestamp,
    moverid bigint,
    transferstatus bigint,
    subtype text,
    PRIMARY KEY (vuid)
);
CREATE INDEX datasets_name_idx ON datasets (name);

-- runtime configuration read by getConfigValue(component, key, app, vo)
CREATE TABLE config (
    app varchar(64) NOT NULL,
    component varchar(64) NOT NULL,
    key varchar(64) NOT NULL,
    value text NOT NULL,
    type varchar(64) NOT NULL,
    vo varchar(16) NOT NULL,
    descr text NOT NULL,
    value_json jsonb,
    PRIMARY KEY (app, component, key, vo)
);

CREATE TABLE schedconfig_json (
    panda_queue varchar(50) NOT NULL PRIMARY KEY,
    data jsonb,
    last_update timestamp
);

CREATE TABLE site (
    site_name varchar(52) NOT NULL PRIMARY KEY,
    role text,
    tier_level smallint
);

CREATE TABLE panda_site (
    panda_site_name varchar(52) NOT NULL PRIMARY KEY,
    site_name varchar(52),
    storage_site_name varchar(52),
    default_ddm_endpoint varchar(52),
    is_local varchar(1)
);

CREATE TABLE ddm_endpoint (
    ddm_endpoint_name varchar(52) NOT NULL PRIMARY KEY,
    site_name varchar(52),
    ddm_spacetoken_name varchar(52),
    type varchar(20),
    is_tape varchar(1),
    blacklisted varchar(1),
    blacklisted_read varchar(1),
    blacklisted_write varchar(1),
    space_total bigint,
    space_free bigint,
    space_used bigint,
    space_expired bigint,
    space_timestamp timestamp,
    space_min_free bigint,
    space_unavailable bigint,
    detailed_status jsonb DEFAULT '{}'
);

CREATE TABLE panda_ddm_relation (
    panda_site_name varchar(52) NOT NULL,
    ddm_endpoint_name varchar(52) NOT NULL,
    roles varchar(52),
    is_local varchar(1),
    order_read smallint,
    order_write smallint,
    default_read varchar(1),
    default_write varchar(1),
    scope varchar(52) NOT NULL DEFAULT 'default',
    PRIMARY KEY (panda_site_name, ddm_endpoint_name, scope)
);

CREATE TABLE harvester_slots (
    pandaqueuename varchar(50) NOT NULL,
    gshare varchar(32),
    resourcetype varchar(56),
    numslots integer,
    modificationtime timestamp,
    expirationtime timestamp
);

CREATE TABLE resource_types (
    resource_name varchar(56) NOT NULL PRIMARY KEY,
    mincore smallint,
    maxcore smallint,
    minrampercore integer,
    maxrampercore integer
);

CREATE TABLE global_shares (
    name varchar(32) NOT NULL PRIMARY KEY,
    value double precision NOT NULL,
    parent varchar(32),
    prodsourcelabel varchar(100),
    workinggroup varchar(100),
    campaign varchar(100),
    processingtype varchar(100),
    transpath varchar(128),
    vo varchar(32),
    rtype varchar(16),
    queue_id integer,
    throttled char(1)
);


CREATE TABLE jobs_share_stats (
    ts timestamp,
    gshare varchar(32),
    workqueue_id integer,
    resource_type varchar(56),
    computingsite varchar(128),
    jobstatus varchar(15),
    maxpriority integer,
    proc_status varchar(16),
    prorated_diskio_avg double precision,
    prorated_mem_avg double precision,
    njobs integer,
    hs double precision,
    vo varchar(32),
    nucleus varchar(52)  -- the task's nucleus (get_num_jobs_with_status_by_nucleus, production brokerage)
);
CREATE TABLE jobsdefined_share_stats (LIKE jobs_share_stats);

-- the network statistics per (source, destination) that upstream's task brokerage reads: AtlasProdTaskBroker's
-- transfer backlog check (getBackloggedNuclei: key 'Production Output_queued' per destination nucleus); written in
-- production by the network-matrix cron (insertNetworkMatrixData, same columns)
CREATE TABLE network_matrix_kv (
    src varchar(256) NOT NULL,
    dst varchar(256) NOT NULL,
    key varchar(256) NOT NULL,
    value double precision,
    ts timestamp,
    PRIMARY KEY (src, dst, key)
);

-- what upstream's production job brokerage (AtlasProdJobBroker, also run by AtlasProdTaskBroker's job check) loads
-- before it looks at any queue: the software tags per queue (load_sw_map) and the worker-node summaries
-- (get_architecture_level_map, get_worker_node_gpu_map). Upstream's MV_* are materialized views over its worker-node
-- tables (refreshed by cron); here plain tables of the columns those reads select, empty: no queue reports any
CREATE TABLE sw_tags (
    panda_queue varchar(50) PRIMARY KEY,
    data text,
    last_update timestamp
);

CREATE TABLE mv_worker_node_summary (
    panda_queue varchar(50),
    cpu_architecture_level varchar(20),
    total_logical_cpus bigint,
    pct_within_pq double precision
);

CREATE TABLE mv_worker_node_gpu_summary (
    panda_queue varchar(50),
    vendor varchar(128),
    model varchar(128),
    vram bigint,
    architecture varchar(128),
    framework_version varchar(128),
    driver_version varchar(128),
    gpus_per_host bigint
);
