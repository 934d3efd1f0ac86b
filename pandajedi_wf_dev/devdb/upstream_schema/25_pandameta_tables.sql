-- Upstream PanDA "meta" tables (schemaMETA = DOMA_PANDAMETA) the exercised code reads:
-- users is checked by insertTaskParamsPanda (checkBanUser) on every submission.
SET search_path = doma_pandameta;

CREATE SEQUENCE users_id_seq;

CREATE TABLE users (
    id bigint NOT NULL DEFAULT nextval('users_id_seq') PRIMARY KEY,
    name varchar(100) NOT NULL,
    dn varchar(150),
    email varchar(60),
    url varchar(100),
    location varchar(60),
    classa varchar(30),
    classp varchar(30),
    classxp varchar(30),
    sitepref varchar(60),
    gridpref varchar(20),
    queuepref varchar(60),
    scriptcache varchar(100),
    types varchar(60),
    sites varchar(250),
    njobsa integer,
    njobsp integer,
    njobs1 integer,
    njobs7 integer,
    njobs30 integer,
    cpua1 bigint,
    cpua7 bigint,
    cpua30 bigint,
    cpup1 bigint,
    cpup7 bigint,
    cpup30 bigint,
    cpuxp1 bigint,
    cpuxp7 bigint,
    cpuxp30 bigint,
    quotaa1 bigint,
    quotaa7 bigint,
    quotaa30 bigint,
    quotap1 bigint,
    quotap7 bigint,
    quotap30 bigint,
    quotaxp1 bigint,
    quotaxp7 bigint,
    quotaxp30 bigint,
    space1 integer,
    space7 integer,
    space30 integer,
    lastmod timestamp,
    firstjob timestamp,
    latestjob timestamp,
    pagecache text,
    cachetime timestamp,
    ncurrent integer,
    jobid integer,
    status varchar(20),
    vo varchar(20)
);

CREATE INDEX users_name_idx ON users (name);

-- the pilots' requests per queue (written by the server's updateSiteData); production job brokerage skips a queue
-- whose pilots have not asked for a job lately (getInactiveSites_JEDI reads site, flag, hours, laststart)
CREATE TABLE sitedata (
    site varchar(52) NOT NULL,
    flag varchar(20) NOT NULL,
    hours integer NOT NULL,
    getjob integer,
    updatejob integer,
    nojob integer,
    getjobabs integer,
    updatejobabs integer,
    nojobabs integer,
    lastmod timestamp,
    laststart timestamp,
    nstart integer,
    finished integer,
    failed integer,
    defined integer,
    assigned integer,
    waiting integer,
    activated integer,
    holding integer,
    running integer,
    transferring integer,
    PRIMARY KEY (site, flag, hours)
);
