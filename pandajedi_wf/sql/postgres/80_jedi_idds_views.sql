-- pandajedi_wf 1.0.0, PostgreSQL: read-only views of the iDDS tables, in schema doma_panda.
-- Prerequisite: grants/idds_read_access.sql, run by the owner of doma_idds (the views' owner
-- must hold USAGE on doma_idds and SELECT on these tables).
-- Columns are listed explicitly: iDDS adds columns with its own migrations, and a view must keep
-- the shape PanDA reads whatever iDDS adds. Status and type columns are iDDS enum integers.
-- Oracle twin: sql/oracle/80_jedi_idds_views.sql.

CREATE OR REPLACE VIEW doma_panda.jedi_idds_requests_v (
    request_id, scope, name, requester, request_type, username, workload_id, status,
    created_at, updated_at, errors
) AS
SELECT request_id, scope, name, requester, request_type, username, workload_id, status,
       created_at, updated_at, errors
FROM doma_idds.requests;

CREATE OR REPLACE VIEW doma_panda.jedi_idds_transforms_v (
    transform_id, request_id, workload_id, transform_type, name, status,
    created_at, updated_at, errors
) AS
SELECT transform_id, request_id, workload_id, transform_type, name, status,
       created_at, updated_at, errors
FROM doma_idds.transforms;

CREATE OR REPLACE VIEW doma_panda.jedi_idds_processings_v (
    processing_id, transform_id, request_id, workload_id, status, substatus,
    submitted_at, finished_at, created_at, updated_at, errors
) AS
SELECT processing_id, transform_id, request_id, workload_id, status, substatus,
       submitted_at, finished_at, created_at, updated_at, errors
FROM doma_idds.processings;

CREATE OR REPLACE VIEW doma_panda.jedi_idds_collections_v (
    coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status,
    total_files, processed_files, processing_files, failed_files, missing_files,
    created_at, updated_at
) AS
SELECT coll_id, transform_id, request_id, workload_id, relation_type, scope, name, status,
       total_files, processed_files, processing_files, failed_files, missing_files,
       created_at, updated_at
FROM doma_idds.collections;

CREATE OR REPLACE VIEW doma_panda.jedi_idds_contents_v (
    content_id, transform_id, coll_id, request_id, workload_id, map_id, scope, name,
    content_relation_type, status, substatus, external_content_id, created_at, updated_at
) AS
SELECT content_id, transform_id, coll_id, request_id, workload_id, map_id, scope, name,
       content_relation_type, status, substatus, external_content_id, created_at, updated_at
FROM doma_idds.contents;
