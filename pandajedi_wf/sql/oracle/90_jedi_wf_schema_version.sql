-- pandajedi_wf 1.4.0, Oracle: the installed schema version, written last so that its row
-- means the whole install went through. Upgrades (sql/oracle/upgrades/<from>_to_<to>.sql) update it.
-- PostgreSQL twin: sql/postgres/90_jedi_wf_schema_version.sql.

CREATE TABLE ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION (
    component            VARCHAR2(32)   NOT NULL,
    version              VARCHAR2(16)   NOT NULL,
    applied_at           TIMESTAMP      NOT NULL,
    CONSTRAINT JEDI_WF_SCHEMA_VERSION_PK PRIMARY KEY (component)
);

INSERT INTO ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION (component, version, applied_at)
VALUES ('pandajedi_wf', '1.4.0', SYS_EXTRACT_UTC(SYSTIMESTAMP));

COMMIT;
