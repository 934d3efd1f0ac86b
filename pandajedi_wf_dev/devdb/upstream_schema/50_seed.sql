-- Minimal reference data so upstream's SiteMapper, work-queue map and job brokerage work:
-- one site with one PanDA queue (allow_no_pilot, so brokerage accepts it without pilots),
-- one disk endpoint, one wlcg work queue per queue type (= prodSourceLabel) and two
-- leaf global shares (user analysis, production); a task matching none is refused.
SET search_path = doma_panda;

INSERT INTO site (site_name, role, tier_level) VALUES ('DEV_SITE', 'nucleus', 1);

INSERT INTO ddm_endpoint (ddm_endpoint_name, site_name, ddm_spacetoken_name, type, is_tape, blacklisted,
                          blacklisted_read, blacklisted_write, space_total, space_free, space_used, space_expired,
                          space_timestamp)
VALUES ('DEV_SITE_DATADISK', 'DEV_SITE', 'DATADISK', 'DATADISK', 'N', 'N', 'N', 'N',
        1000000, 900000, 100000, 0, now() AT TIME ZONE 'UTC');

INSERT INTO panda_site (panda_site_name, site_name, storage_site_name, default_ddm_endpoint, is_local)
VALUES ('DEV_QUEUE', 'DEV_SITE', 'DEV_SITE', 'DEV_SITE_DATADISK', 'N');

INSERT INTO panda_ddm_relation (panda_site_name, ddm_endpoint_name, roles, is_local, order_read, order_write,
                                default_read, default_write, scope)
VALUES ('DEV_QUEUE', 'DEV_SITE_DATADISK', 'read_lan,write_lan', 'Y', 1, 1, 'Y', 'Y', 'default');

INSERT INTO schedconfig_json (panda_queue, data, last_update)
VALUES ('DEV_QUEUE', '{
    "siteid": "DEV_QUEUE", "nickname": "DEV_QUEUE", "panda_resource": "DEV_QUEUE", "atlas_site": "DEV_SITE",
    "vo_name": "wlcg", "cloud": "WORLD", "status": "online", "state": "ACTIVE", "type": "unified",
    "capability": "ucore", "catchall": "allow_no_pilot", "corecount": 1, "corepower": 10,
    "maxrss": 4000, "minrss": 0, "maxtime": 86400, "mintime": 0, "maxwdir": 100000, "maxinputsize": 100000,
    "memory": 4000, "pledgedcpu": 0, "space": 0, "tier": "T1", "tier_level": 1, "jobseed": "std",
    "wnconnectivity": "full", "direct_access_lan": false, "direct_access_wan": false, "is_cvmfs": true,
    "fairsharepolicy": "", "defaulttoken": "", "workflow": "pull_ups", "maxdiskio": 0,
    "ddm": "DEV_SITE_DATADISK", "comment_": "pandajedi_wf dev queue",
    "ddmendpoints": {"DEV_SITE_DATADISK": {}}
}', now() AT TIME ZONE 'UTC');

INSERT INTO resource_types (resource_name, mincore, maxcore, minrampercore, maxrampercore)
VALUES ('SCORE', 1, 1, NULL, NULL), ('MCORE', 2, NULL, NULL, NULL);

INSERT INTO jedi_work_queue (queue_id, queue_name, queue_type, vo, status, partitionid, stretchable, queue_share,
                             queue_order, criteria, variables, queue_function)
VALUES (1, 'wlcg_user', 'user', 'wlcg', 'active', NULL, NULL, NULL, 1, NULL, NULL, 'Resource'),
       (2, 'wlcg_managed', 'managed', 'wlcg', 'active', NULL, NULL, NULL, 1, NULL, NULL, 'Resource'),
       (3, 'wlcg_test', 'test', 'wlcg', 'active', NULL, NULL, NULL, 1, NULL, NULL, 'Resource');

INSERT INTO global_shares (name, value, parent, prodsourcelabel, workinggroup, campaign, processingtype, transpath,
                           vo, rtype, queue_id, throttled)
VALUES ('User Analysis', 50, NULL, 'user', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'N'),
       ('Production', 50, NULL, 'managed|test|ptest|prod_test', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'N');
