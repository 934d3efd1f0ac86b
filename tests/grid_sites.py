"""Sites, disk endpoints and queues in the reference tables upstream's SiteMapper reads, for broker tests: added for a
test and removed after it (clean_db keeps reference tables)."""

from __future__ import annotations

import contextlib


def _remove(cur, sites: dict[str, str]) -> None:
    for table, column in (("schedconfig_json", "panda_queue"), ("panda_ddm_relation", "panda_site_name"), ("panda_site", "panda_site_name")):
        cur.execute(f"DELETE FROM doma_panda.{table} WHERE {column} = ANY(%s)", (list(sites),))
    cur.execute("DELETE FROM doma_panda.ddm_endpoint WHERE site_name = ANY(%s)", (list(sites.values()),))
    cur.execute("DELETE FROM doma_panda.site WHERE site_name = ANY(%s)", (list(sites.values()),))


@contextlib.contextmanager
def sites_in_reference_tables(pg, jedi_taskbuffer, sites: dict[str, str], *, role: str, tier_level: int, disk_bytes: int,
                              ddm_roles: str, queue_json):
    """``sites`` (queue -> site): each site with the CRIC ``role``, one DATADISK endpoint of ``disk_bytes`` (90% free)
    with ``ddm_roles`` for its queue, and the queue's schedconfig ``queue_json(queue, site)``. Upstream's cached
    SiteMapper is dropped on the way in and out."""
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            _remove(cur, sites)
            for queue, site in sites.items():
                cur.execute("INSERT INTO doma_panda.site (site_name, role, tier_level) VALUES (%s, %s, %s)", (site, role, tier_level))
                cur.execute(
                    "INSERT INTO doma_panda.ddm_endpoint (ddm_endpoint_name, site_name, ddm_spacetoken_name, type, is_tape, blacklisted, "
                    "blacklisted_read, blacklisted_write, space_total, space_free, space_used, space_expired, space_timestamp) "
                    "VALUES (%s, %s, 'DATADISK', 'DATADISK', 'N', 'N', 'N', 'N', %s, %s, %s, 0, now() AT TIME ZONE 'UTC')",
                    (f"{site}_DATADISK", site, disk_bytes, disk_bytes * 9 // 10, disk_bytes // 10),
                )
                cur.execute(
                    "INSERT INTO doma_panda.panda_site (panda_site_name, site_name, storage_site_name, default_ddm_endpoint, is_local) "
                    "VALUES (%s, %s, %s, %s, 'N')", (queue, site, site, f"{site}_DATADISK"),
                )
                cur.execute(
                    "INSERT INTO doma_panda.panda_ddm_relation (panda_site_name, ddm_endpoint_name, roles, is_local, order_read, order_write, "
                    "default_read, default_write, scope) VALUES (%s, %s, %s, 'Y', 1, 1, 'Y', 'Y', 'default')",
                    (queue, f"{site}_DATADISK", ddm_roles),
                )
                cur.execute("INSERT INTO doma_panda.schedconfig_json (panda_queue, data, last_update) VALUES (%s, %s, now() AT TIME ZONE 'UTC')",
                            (queue, queue_json(queue, site)))
        jedi_taskbuffer.last_update_site_mapper = None  # upstream caches its SiteMapper for 10 minutes
        yield
        with conn.cursor() as cur:
            _remove(cur, sites)
    finally:
        conn.close()
        jedi_taskbuffer.last_update_site_mapper = None
