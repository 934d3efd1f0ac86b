-- pandajedi_wf 1.0.0, Oracle: read access of ATLAS_PANDA to the iDDS tables.
-- WHO RUNS IT: ATLAS_IDDS (the owner of the tables), or a DBA.
-- WHEN: before sql/oracle/80_jedi_idds_views.sql. Re-running it is harmless.
-- The grant goes to ATLAS_PANDA directly (a role grant does not let ATLAS_PANDA create views).
-- Partitions of these tables are covered by the grant on the table.

GRANT SELECT ON ATLAS_IDDS.REQUESTS TO ATLAS_PANDA;
GRANT SELECT ON ATLAS_IDDS.TRANSFORMS TO ATLAS_PANDA;
GRANT SELECT ON ATLAS_IDDS.PROCESSINGS TO ATLAS_PANDA;
GRANT SELECT ON ATLAS_IDDS.COLLECTIONS TO ATLAS_PANDA;
GRANT SELECT ON ATLAS_IDDS.CONTENTS TO ATLAS_PANDA;
