-- An iDDS-shaped schema for tests: the five tables iDDS shares with PanDA, in schema doma_idds,
-- with the columns PanDA reads plus some it does not (JSON metadata, locking, polling times),
-- so that the views in pandajedi_wf/sql/postgres/80_jedi_idds_views.sql are checked against extra columns.
-- Shaped like the deployed iDDS: quoted upper-case sequence names, contents partitioned by
-- request_id (pg_partman in production, here only a DEFAULT partition), so its key is
-- (content_id, request_id). Run as the owner of doma_idds (role idds) after
-- CREATE SCHEMA doma_idds AUTHORIZATION idds.

CREATE SEQUENCE doma_idds."REQUEST_ID_SEQ" START WITH 1 INCREMENT BY 1;
CREATE SEQUENCE doma_idds."TRANSFORM_ID_SEQ" START WITH 1 INCREMENT BY 1;
CREATE SEQUENCE doma_idds."PROCESSING_ID_SEQ" START WITH 1 INCREMENT BY 1;
CREATE SEQUENCE doma_idds."COLLECTION_ID_SEQ" START WITH 1 INCREMENT BY 1;
CREATE SEQUENCE doma_idds."CONTENT_ID_SEQ" START WITH 1 INCREMENT BY 1;

CREATE TABLE doma_idds.requests (
    request_id           BIGINT         NOT NULL,
    scope                VARCHAR(25),
    name                 VARCHAR(255),
    requester            VARCHAR(20),
    request_type         INTEGER,
    username             VARCHAR(20),
    userdn               VARCHAR(200),
    transform_tag        VARCHAR(20),
    workload_id          INTEGER,
    priority             INTEGER,
    status               INTEGER        NOT NULL,
    substatus            INTEGER,
    oldstatus            INTEGER,
    locking              INTEGER,
    created_at           TIMESTAMP,
    updated_at           TIMESTAMP,
    next_poll_at         TIMESTAMP,
    accessed_at          TIMESTAMP,
    expired_at           TIMESTAMP,
    errors               VARCHAR(1024),
    request_metadata     JSONB,
    processing_metadata  JSONB,
    CONSTRAINT "REQUESTS_PK" PRIMARY KEY (request_id)
);

CREATE TABLE doma_idds.transforms (
    transform_id         BIGINT         NOT NULL,
    request_id           BIGINT,
    workload_id          INTEGER,
    transform_type       INTEGER,
    transform_tag        VARCHAR(20),
    priority             INTEGER,
    status               INTEGER        NOT NULL,
    substatus            INTEGER,
    oldstatus            INTEGER,
    locking              INTEGER,
    retries              INTEGER,
    created_at           TIMESTAMP,
    updated_at           TIMESTAMP,
    next_poll_at         TIMESTAMP,
    started_at           TIMESTAMP,
    finished_at          TIMESTAMP,
    expired_at           TIMESTAMP,
    name                 VARCHAR(255),
    errors               VARCHAR(1024),
    transform_metadata   JSONB,
    running_metadata     JSONB,
    CONSTRAINT "TRANSFORMS_PK" PRIMARY KEY (transform_id)
);

CREATE TABLE doma_idds.processings (
    processing_id        BIGINT         NOT NULL,
    transform_id         BIGINT         NOT NULL,
    request_id           BIGINT,
    workload_id          INTEGER,
    status               INTEGER        NOT NULL,
    substatus            INTEGER,
    oldstatus            INTEGER,
    locking              INTEGER,
    submitter            VARCHAR(20),
    submitted_id         INTEGER,
    created_at           TIMESTAMP,
    updated_at           TIMESTAMP,
    next_poll_at         TIMESTAMP,
    submitted_at         TIMESTAMP,
    finished_at          TIMESTAMP,
    expired_at           TIMESTAMP,
    errors               VARCHAR(1024),
    processing_metadata  JSONB,
    running_metadata     JSONB,
    output_metadata      JSONB,
    CONSTRAINT "PROCESSINGS_PK" PRIMARY KEY (processing_id),
    CONSTRAINT "PROCESSINGS_TRANSFORM_ID_FK" FOREIGN KEY (transform_id)
        REFERENCES doma_idds.transforms (transform_id)
);

CREATE TABLE doma_idds.collections (
    coll_id              BIGINT         NOT NULL,
    request_id           BIGINT,
    workload_id          INTEGER,
    transform_id         BIGINT         NOT NULL,
    coll_type            INTEGER,
    relation_type        INTEGER,
    scope                VARCHAR(25),
    name                 VARCHAR(255),
    bytes                INTEGER,
    status               INTEGER        NOT NULL,
    substatus            INTEGER,
    locking              INTEGER,
    total_files          INTEGER,
    storage_id           INTEGER,
    new_files            INTEGER,
    processed_files      INTEGER,
    processing_files     INTEGER,
    failed_files         INTEGER,
    missing_files        INTEGER,
    processing_id        INTEGER,
    retries              INTEGER,
    created_at           TIMESTAMP,
    updated_at           TIMESTAMP,
    next_poll_at         TIMESTAMP,
    accessed_at          TIMESTAMP,
    expired_at           TIMESTAMP,
    coll_metadata        JSONB,
    CONSTRAINT "COLLECTIONS_PK" PRIMARY KEY (coll_id),
    CONSTRAINT "COLLECTIONS_NAME_SCOPE_UQ" UNIQUE (name, scope, transform_id, relation_type),
    CONSTRAINT "COLLECTIONS_TRANSFORM_ID_FK" FOREIGN KEY (transform_id)
        REFERENCES doma_idds.transforms (transform_id)
);

CREATE TABLE doma_idds.contents (
    content_id           BIGINT         NOT NULL,
    transform_id         BIGINT,
    coll_id              BIGINT         NOT NULL,
    request_id           BIGINT         NOT NULL,
    workload_id          INTEGER,
    map_id               BIGINT,
    content_dep_id       BIGINT,
    scope                VARCHAR(25),
    name                 VARCHAR(4000),
    min_id               INTEGER,
    max_id               INTEGER,
    content_type         INTEGER,
    content_relation_type INTEGER,
    status               INTEGER        NOT NULL,
    substatus            INTEGER,
    locking              INTEGER,
    bytes                INTEGER,
    md5                  VARCHAR(32),
    adler32              VARCHAR(8),
    processing_id        INTEGER,
    storage_id           INTEGER,
    retries              INTEGER,
    external_content_id  BIGINT,
    path                 VARCHAR(4000),
    created_at           TIMESTAMP,
    updated_at           TIMESTAMP,
    accessed_at          TIMESTAMP,
    expired_at           TIMESTAMP,
    content_metadata     VARCHAR(100),
    CONSTRAINT "CONTENTS_PK" PRIMARY KEY (content_id, request_id)
) PARTITION BY RANGE (request_id);

CREATE TABLE doma_idds.contents_default PARTITION OF doma_idds.contents DEFAULT;

CREATE INDEX "CONTENTS_REQ_TF_COLL_IDX" ON doma_idds.contents (request_id, transform_id, coll_id, status);
