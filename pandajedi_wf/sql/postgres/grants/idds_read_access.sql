-- pandajedi_wf 1.0.0, PostgreSQL: read access of the PanDA role to the iDDS tables.
-- WHO RUNS IT: the owner of schema doma_idds (the iDDS role, e.g. "idds"), or a superuser.
-- WHEN: before sql/postgres/80_jedi_idds_views.sql. Re-running it is harmless.
-- The PanDA role is "panda" (owner of doma_panda). Edit the name if your deployment differs.
-- SELECT on the partitioned parent doma_idds.contents covers all its partitions, present and future.

GRANT USAGE ON SCHEMA doma_idds TO panda;

GRANT SELECT ON doma_idds.requests, doma_idds.transforms, doma_idds.processings,
    doma_idds.collections, doma_idds.contents TO panda;
