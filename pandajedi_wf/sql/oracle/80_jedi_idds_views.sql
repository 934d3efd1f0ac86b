-- pandajedi_wf 1.0.0, Oracle: read-only views of the iDDS tables, in schema ATLAS_PANDA.
-- Prerequisite: grants/idds_read_access.sql, run by ATLAS_IDDS (Oracle needs the SELECT grant made
-- directly to ATLAS_PANDA, not through a role, to create a view over another schema's table).
-- Columns are listed explicitly: iDDS adds columns with its own migrations, and a view must keep
-- the shape PanDA reads whatever iDDS adds. Status and type columns are iDDS enum integers.
-- PostgreSQL twin: sql/postgres/80_jedi_idds_views.sql.

CREATE OR REPLACE VIEW ATLAS_PANDA.JEDI_IDDS_REQUESTS_V (
    request_id, scope, name, requester, request_type, username, workload_id, status,
    created_at, updated_at, errors
) AS
SELECT request_id, scope, name, requester, request_type, username, workload_id, status,
       created_at, updated_at, errors
FROM ATLAS_IDDS.REQUESTS;

CREATE OR REPLACE VIEW ATLAS_PANDA.JEDI_IDDS_TRANSFORMS_V (
    transform_id, request_id, workload_id, transform_type, name, status,
    created_at, updated_at, errors
) AS
SELECT transform_id, request_id, workload_id, transform_type, name, status,
       created_at, updated_at, errors
FROM ATLAS_IDDS.TRANSFORMS;

CREATE OR REPLACE VIEW ATLAS_PANDA.JEDI_IDDS_PROCESSINGS_V (
    processing_id, transform_id, request_id, workload_id, status, substatus,
    submitted_at, finished_at, created_at, updated_at, errors
) AS
SELECT processing_id, transform_id, request_id, workload_id, status, substatus,
       submitted_at, finished_at, created_at, updated_at, errors
FROM ATLAS_IDDS.PROCESSINGS;

CREATE OR REPLACE VIEW ATLAS_PANDA.JEDI_IDDS_COLLECTIONS_V (
    coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status,
    total_files, processed_files, processing_files, failed_files, missing_files,
    created_at, updated_at
) AS
SELECT coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status,
       total_files, processed_files, processing_files, failed_files, missing_files,
       created_at, updated_at
FROM ATLAS_IDDS.COLLECTIONS;

CREATE OR REPLACE VIEW ATLAS_PANDA.JEDI_IDDS_CONTENTS_V (
    content_id, transform_id, coll_id, request_id, workload_id, map_id, scope, name,
    content_relation_type, status, substatus, external_content_id, created_at, updated_at
) AS
SELECT content_id, transform_id, coll_id, request_id, workload_id, map_id, scope, name,
       content_relation_type, status, substatus, external_content_id, created_at, updated_at
FROM ATLAS_IDDS.CONTENTS;
