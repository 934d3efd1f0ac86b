-- pandajedi_wf 1.4.0, PostgreSQL: the installed schema version, written last so that its row
-- means the whole install went through. Upgrades (sql/postgres/upgrades/<from>_to_<to>.sql) update it.
-- Oracle twin: sql/oracle/90_jedi_wf_schema_version.sql.

CREATE TABLE doma_panda.jedi_wf_schema_version (
    component            VARCHAR(32)    NOT NULL,
    version              VARCHAR(16)    NOT NULL,
    applied_at           TIMESTAMP      NOT NULL,
    CONSTRAINT jedi_wf_schema_version_pk PRIMARY KEY (component)
);

INSERT INTO doma_panda.jedi_wf_schema_version (component, version, applied_at)
VALUES ('pandajedi_wf', '1.4.0', (CURRENT_TIMESTAMP AT TIME ZONE 'UTC'));
