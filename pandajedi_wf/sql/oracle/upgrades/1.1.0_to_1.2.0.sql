-- pandajedi_wf 1.1.0 -> 1.2.0, Oracle: workflow ids come from upstream's ATLAS_PANDA.WORKFLOW_ID_SEQ.
-- Run as the owner of ATLAS_PANDA (sqlplus @file) on a schema whose JEDI_WF_SCHEMA_VERSION row says 1.1.0.
-- Prerequisite: upstream's workflow tables (PanDA >= 1.0.4 schema), whose ATLAS_PANDA.WORKFLOW_ID_SEQ this
-- script advances (ATLAS_PANDA owns it). The PL/SQL block ends with a '/' line, which makes sqlplus run it.
-- PostgreSQL twin: sql/postgres/upgrades/1.1.0_to_1.2.0.sql.
--
-- * The PanDA server gives a pchain_native submission its id from WORKFLOW_ID_SEQ and our intake stores the
--   workflow under that id: one sequence for every workflow, so JEDI_WF_WORKFLOW_ID_SEQ goes.
-- * First WORKFLOW_ID_SEQ moves past every id we drew from our own sequence. The block draws one NEXTVAL and,
--   if that is not above MAX(workflow_id), sets INCREMENT BY to the gap, draws once more (which lands on
--   MAX(workflow_id) + 1) and puts the sequence's own increment back. This is relative, unlike
--   ALTER SEQUENCE ... RESTART START WITH n (Oracle 18c and later): a value the PanDA server draws meanwhile
--   is still above every earlier one and is never handed out twice, and it runs on every Oracle version.
--   If the sequence still is not above MAX(workflow_id) the block raises, before anything is dropped.

DECLARE
    v_max_id     NUMBER;
    v_next_id    NUMBER;
    v_increment  NUMBER;
BEGIN
    SELECT NVL(MAX(workflow_id), 0) INTO v_max_id FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS;
    SELECT increment_by INTO v_increment FROM all_sequences
    WHERE sequence_owner = 'ATLAS_PANDA' AND sequence_name = 'WORKFLOW_ID_SEQ';
    v_next_id := ATLAS_PANDA.WORKFLOW_ID_SEQ.NEXTVAL;
    IF v_next_id <= v_max_id THEN
        EXECUTE IMMEDIATE 'ALTER SEQUENCE ATLAS_PANDA.WORKFLOW_ID_SEQ INCREMENT BY ' || TO_CHAR(v_max_id - v_next_id + 1);
        v_next_id := ATLAS_PANDA.WORKFLOW_ID_SEQ.NEXTVAL;
        EXECUTE IMMEDIATE 'ALTER SEQUENCE ATLAS_PANDA.WORKFLOW_ID_SEQ INCREMENT BY ' || TO_CHAR(v_increment);
    END IF;
    IF v_next_id <= v_max_id THEN
        RAISE_APPLICATION_ERROR(-20001, 'WORKFLOW_ID_SEQ gave ' || v_next_id || ', not above workflow id ' || v_max_id);
    END IF;
END;
/

DROP SEQUENCE ATLAS_PANDA.JEDI_WF_WORKFLOW_ID_SEQ;

UPDATE ATLAS_PANDA.JEDI_WF_SCHEMA_VERSION SET version = '1.2.0', applied_at = SYS_EXTRACT_UTC(SYSTIMESTAMP)
WHERE component = 'pandajedi_wf' AND version = '1.1.0';

COMMIT;
