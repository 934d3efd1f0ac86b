-- Maintenance that pg_cron runs upstream; here the tests (or the demo) call it.
SET search_path = doma_panda;

-- JEDI_AUX_Status_MinTaskID holds, per task status, the smallest jediTaskID in that status:
-- many upstream queries join it (tabT.jediTaskID >= tabA.min_jediTaskID) to skip old partitions,
-- so a task is invisible to them until this has run after the task reached its status.
CREATE OR REPLACE PROCEDURE jedi_refresh_min_taskid_by_status()
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM jedi_aux_status_mintaskid;
    INSERT INTO jedi_aux_status_mintaskid (status, min_jeditaskid)
        SELECT status, MIN(jeditaskid) FROM jedi_tasks WHERE status IS NOT NULL GROUP BY status;
END;
$$;
