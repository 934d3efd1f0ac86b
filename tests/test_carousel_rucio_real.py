"""The carousel's Rucio side against a real Rucio 41.5.1 server (``rucio_server`` fixture, tests/conftest.py): our
adapter ``ddm/rucio_adapter.py`` under the carousel's own cycle (``carousel.cycle.run_cycle``, requests in a
MemoryBook), every state read from Rucio. Transfers complete or stick through Rucio itself: the transfer request is
set DONE, or NO_SOURCES/FAILED with an error, and one conveyor-finisher pass applies it (replica, lock, rule);
judge-repairer and judge-cleaner passes run in-process when the test says so (``pandajedi_wf_dev.devdb.rucio_server``).
Faults the server cannot be made to produce (timeouts, an unavailable server) are in test_carousel_rucio_adapter.py.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import CarouselConfigError, load_config
from pandajedi_wf.carousel.cycle import MemoryBook, retire, run_cycle
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.adapter import DDMError
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

SIZES = [1_000_000, 2_500_000, 4_000_000]


@pytest.fixture
def site(rucio_server):
    """Two TAPE RSEs (FAST, SLOW) linked to a DISK RSE, a scope, and a helper making closed datasets on tape."""
    tag = uuid.uuid4().hex[:8].upper()
    fast = rucio_server.add_rse(f"FAST_{tag}_TAPE", "TAPE")
    slow = rucio_server.add_rse(f"SLOW_{tag}_TAPE", "TAPE")
    disk = rucio_server.add_rse(f"NUC_{tag}_DATADISK", "DISK")
    for tape in (fast, slow):
        rucio_server.add_distance(tape, disk)
    scope = f"data{tag[:5].lower()}"
    rucio_server.add_scope(scope)

    def dataset(label: str, tapes=(fast,), sizes=SIZES) -> tuple[str, list[dict]]:
        name = f"{scope}.{label}.RAW.{tag.lower()}"
        files = rucio_server.add_dataset(scope, name, list(tapes), file_sizes=list(sizes))
        return f"{scope}:{name}", files

    config = load_config(
        {
            "tapes": {fast: {"expected_bytes_per_second": 1e9}, slow: {"expected_bytes_per_second": 1e6}},
            "rule_lifetime_seconds": 3600,
            "extend_below_seconds": 600,
            "lifetime_extension_seconds": 7200,
            "max_source_switches": 2,
        }
    )
    return {"fast": fast, "slow": slow, "disk": disk, "scope": scope, "dataset": dataset, "config": config, "client": rucio_server.client()}


def request(request_id: int, dataset: str, site, sources=None, created_at: float | None = None, priority: int = 1000) -> StagingRequest:
    return StagingRequest(
        request_id=request_id,
        dataset=dataset,
        n_files=len(SIZES),
        n_bytes=sum(SIZES),
        user="alice",
        gshare="User Analysis",
        destination=site["disk"],
        sources=tuple(sources or (site["fast"],)),
        task_priority=priority,
        created_at=time.time() if created_at is None else created_at,
    )


def cycle(site, book, now: float | None = None):
    return run_cycle(site["config"], book, RucioStagingDDM(site["client"]), time.time() if now is None else now, {})


def rule_of(site, rec) -> dict:
    return site["client"].get_replication_rule(rec.rule_id)


def names(files, *indexes) -> list[str]:
    return [files[i]["name"] for i in indexes]


def first_file_arrived(rucio_server, site, label: str):
    """A dataset on both tapes, recalled by the carousel (from FAST), its first file on disk."""
    dataset, files = site["dataset"](label, tapes=(site["fast"], site["slow"]))
    book = MemoryBook([request(1, dataset, site, sources=(site["fast"], site["slow"]))])
    cycle(site, book)
    rec = book.by_id[1]
    rucio_server.complete_transfers(rec.rule_id, names=names(files, 0))
    return book, rec, files


def test_the_carousel_creates_its_recall_rule_with_the_options_it_sets(rucio_server, site):
    dataset, files = site["dataset"]("create")
    book = MemoryBook([request(1, dataset, site, sources=(site["fast"], site["slow"]))])
    report = cycle(site, book)
    rec = book.by_id[1]
    assert (report.started, rec.status, rec.source) == (1, lc.STAGING, site["fast"])  # the faster tape

    rule = rule_of(site, rec)
    assert (rule["scope"], rule["name"], rule["rse_expression"], rule["copies"]) == (*dataset.split(":"), site["disk"], 1)
    assert (rule["grouping"], rule["notification"], rule["activity"], rule["source_replica_expression"]) == ("DATASET", "PROGRESS", "Staging", site["fast"])
    assert (rule["state"], rule["locks_replicating_cnt"], rule["account"]) == ("REPLICATING", 3, "root")
    assert rule["priority"] == 4  # first (and only) place in its tape's queue, set right after creation
    queued = rucio_server.transfer_requests(rec.rule_id)
    assert sorted(r["name"] for r in queued) == sorted(f["name"] for f in files)
    assert {(r["state"], r["source_replica_expression"], r["priority"]) for r in queued} == {("QUEUED", site["fast"], 4)}


def test_a_restarted_carousel_adopts_the_rule_it_created_before_the_crash(rucio_server, site):
    """Crash after add_replication_rule, before the rule id was saved: the request is still 'submitting' (the intent
    written first); the next cycle finds the rule (list_did_rules) instead of making a second one."""
    dataset, _ = site["dataset"]("adopt")
    ddm = RucioStagingDDM(site["client"])
    before_crash = ddm.create_staging_rule(dataset, site["fast"], site["disk"], "Staging", 3600)
    book = MemoryBook([request(1, dataset, site)])
    book.save(book.by_id[1], lc.SUBMITTING, source=site["fast"], tried=(site["fast"],))

    report = cycle(site, book)
    rec = book.by_id[1]
    assert (rec.status, rec.rule_id, report.errors) == (lc.STAGING, before_crash, [])
    scope, name = dataset.split(":")
    ours = [r for r in site["client"].list_did_rules(scope, name) if r["rse_expression"] == site["disk"]]
    assert [r["id"] for r in ours] == [before_crash]
    with pytest.raises(DDMError) as again:  # what a blind second creation would have met
        ddm.create_staging_rule(dataset, site["fast"], site["disk"], "Staging", 3600)
    assert again.value.kind == "DuplicateRule"


def test_a_rule_made_by_another_process_between_lookup_and_creation_is_adopted_on_duplicate_rule(rucio_server, site):
    """The other way to meet an existing rule: it did not exist when the cycle looked (list_did_rules), another
    carousel process made it before our add_replication_rule, and the real server answers DuplicateRule."""
    dataset, _ = site["dataset"]("race")
    other = RucioStagingDDM(site["client"])
    made_by_other: list[str] = []

    class Racing(RucioStagingDDM):
        def find_staging_rule(self, dataset_name, destination):
            found = super().find_staging_rule(dataset_name, destination)
            if not made_by_other:  # the first lookup sees nothing; the other process creates the rule right after
                made_by_other.append(other.create_staging_rule(dataset_name, site["fast"], destination, "Staging", 3600))
            return found

    book = MemoryBook([request(1, dataset, site)])
    report = run_cycle(site["config"], book, Racing(site["client"]), time.time(), {})
    rec = book.by_id[1]
    assert (report.errors, rec.status, rec.rule_id) == ([], lc.STAGING, made_by_other[0])
    scope, name = dataset.split(":")
    assert [r["id"] for r in site["client"].list_did_rules(scope, name) if r["rse_expression"] == site["disk"]] == made_by_other


def test_staged_files_and_bytes_are_read_from_the_rules_ok_locks(rucio_server, site):
    dataset, files = site["dataset"]("bytes")
    book = MemoryBook([request(1, dataset, site)])
    cycle(site, book)
    rec = book.by_id[1]
    rucio_server.complete_transfers(rec.rule_id, names=names(files, 0, 2))

    cycle(site, book)
    rec = book.by_id[1]
    assert (rec.status, rec.files_done, rec.bytes_done, rec.bytes_left) == (lc.STAGING, 2, SIZES[0] + SIZES[2], SIZES[1])
    staged = RucioStagingDDM(site["client"]).list_staged_files(rec.rule_id)
    assert sorted((f.name, f.rse, f.n_bytes) for f in staged) == sorted((files[i]["name"], site["disk"], SIZES[i]) for i in (0, 2))

    rucio_server.complete_transfers(rec.rule_id)
    cycle(site, book)
    rec = book.by_id[1]
    assert (rec.status, rec.files_done, rec.bytes_done) == (lc.DONE, 3, sum(SIZES))
    assert rule_of(site, rec)["state"] == "OK"


def test_a_rule_about_to_expire_is_kept_alive(rucio_server, site):
    dataset, _ = site["dataset"]("lifetime")
    book = MemoryBook([request(1, dataset, site)])
    start = time.time()
    cycle(site, book, now=start)
    rec = book.by_id[1]
    assert 3500 < rucio_server.client().get_replication_rule(rec.rule_id)["expires_at"].timestamp() - start <= 3605

    report = cycle(site, book, now=start + 3100)  # 500 s left, below extend_below_seconds (600)
    assert report.extended == 1
    left = RucioStagingDDM(site["client"]).get_rules([rec.rule_id])[rec.rule_id].expires_at - time.time()
    assert 7100 < left <= 7205  # lifetime_extension_seconds from the server's now
    assert cycle(site, book, now=start + 3200).extended == 0  # far from expiry again: no call


def test_rule_priorities_follow_the_tape_queue_and_rise_while_tasks_wait(rucio_server, site):
    first, files = site["dataset"]("prio1")
    second, _ = site["dataset"]("prio2")
    now = time.time()
    book = MemoryBook([request(1, first, site, created_at=now - 60, priority=1100), request(2, second, site, created_at=now - 30)])
    cycle(site, book, now=now)
    one, two = book.by_id[1], book.by_id[2]
    assert (rule_of(site, one)["priority"], rule_of(site, two)["priority"]) == (4, 3)  # first of two, second of two
    assert {r["priority"] for r in rucio_server.transfer_requests(two.rule_id)} == {3}  # queued transfers follow

    rucio_server.complete_transfers(one.rule_id)
    report = cycle(site, book, now=now + 60)
    assert book.by_id[1].status == lc.DONE
    assert (report.reprioritised, rule_of(site, book.by_id[2])["priority"]) == (1, 4)  # alone in the queue now
    assert cycle(site, book, now=now + 120).reprioritised == 0  # unchanged: no call

    site["config"] = dataclasses.replace(site["config"], priority_age_step_seconds=600)  # (before its rule looks hung)
    report = cycle(site, book, now=now + 700)  # its tasks waited longer than priority_age_step_seconds
    assert rule_of(site, book.by_id[2])["priority"] == 5
    assert {r["priority"] for r in rucio_server.transfer_requests(two.rule_id)} == {5}


def test_stuck_files_are_boosted_and_rucios_repairer_then_requeues_them(rucio_server, site):
    book, rec, files = first_file_arrived(rucio_server, site, "boost")
    assert stick_for_good(rucio_server, site, rec, files, 1) > 1  # (a failed read is first retried by Rucio itself)
    rucio_server.repair_rules(delta=1800)  # the repairer as deployed: a rule stuck just now is not its turn yet
    assert (rule_of(site, rec)["state"], rule_of(site, rec)["locks_stuck_cnt"]) == ("STUCK", 1)

    report = cycle(site, book)
    rec = book.by_id[1]
    assert (report.boosted, report.switched, rec.status, rec.source) == (1, 0, lc.STAGING, site["fast"])
    assert rec.boosted_at > 0 and "boost_rule" in rec.error and "bring-online timeout" in rec.error
    rucio_server.repair_rules(delta=1800)  # boosted: now it is
    rule = rule_of(site, rec)
    assert (rule["state"], rule["locks_stuck_cnt"], rule["locks_replicating_cnt"], rule["locks_ok_cnt"]) == ("REPLICATING", 0, 2, 1)
    assert sorted(r["name"] for r in rucio_server.transfer_requests(rec.rule_id)) == sorted(names(files, 1, 2))

    rucio_server.complete_transfers(rec.rule_id)
    cycle(site, book)
    assert (book.by_id[1].status, book.by_id[1].boosted_at) == (lc.DONE, 0.0)


def stick_for_good(rucio_server, site, rec, files, *indexes):
    """FTS fails the reads again and again: Rucio requeues them until it gives up and sticks the locks."""
    for attempt in range(1, 8):
        rucio_server.stick_transfers(rec.rule_id, names=names(files, *indexes), state="FAILED", error="TRANSFER_FAILED: bring-online timeout")
        if rule_of(site, rec)["state"] == "STUCK":
            return attempt
    raise AssertionError("Rucio never stuck the lock")


def test_a_rule_still_stuck_after_its_boost_moves_to_the_other_tape(rucio_server, site):
    book, rec, files = first_file_arrived(rucio_server, site, "reboost")
    stick_for_good(rucio_server, site, rec, files, 1)
    start = time.time()
    assert cycle(site, book, now=start).boosted == 1
    rucio_server.repair_rules(delta=1800)  # requeued ...
    stick_for_good(rucio_server, site, book.by_id[1], files, 1)  # ... and stuck again
    assert (cycle(site, book, now=start + 60).switched, book.by_id[1].source) == (0, site["fast"])  # the boost's time
    wait = site["config"].boost_wait_seconds
    report = cycle(site, book, now=start + wait)
    rec = book.by_id[1]
    assert (report.switched, rec.status, rec.source, rec.dead, rec.boosted_at) == (1, lc.STAGING, site["slow"], (), 0.0)
    assert "still stuck" in rec.error and "after boost_rule" in rec.error
    assert rule_of(site, rec)["source_replica_expression"] == site["slow"]
    rucio_server.repair_rules(delta=1800)
    queued = rucio_server.transfer_requests(rec.rule_id)  # the stuck file AND the one still queued on the old tape
    assert {(r["name"], r["state"], r["source_replica_expression"]) for r in queued} == {(f["name"], "QUEUED", site["slow"]) for f in files[1:]}
    rucio_server.complete_transfers(rec.rule_id)
    assert (cycle(site, book, now=start + wait + 60).done, book.by_id[1].status) == (1, lc.DONE)


def test_no_sources_moves_the_rule_to_the_other_tape_at_once_and_never_back(rucio_server, site):
    book, rec, files = first_file_arrived(rucio_server, site, "nosrc")
    rucio_server.stick_transfers(rec.rule_id, names=names(files, 1, 2))  # Rucio's own text: RequestErrMsg.NO_SOURCES:...
    assert "NO_SOURCES" in rule_of(site, rec)["error"]

    report = cycle(site, book)
    rec = book.by_id[1]
    assert (report.boosted, report.switched, rec.status, rec.source, rec.dead, rec.switches) == (0, 1, lc.STAGING, site["slow"], (site["fast"],), 1)
    assert rule_of(site, rec)["source_replica_expression"] == site["slow"]
    rucio_server.repair_rules(delta=1800)  # the switch boosted the rule: the repairer takes it at its next pass
    queued = rucio_server.transfer_requests(rec.rule_id)
    assert sorted(r["name"] for r in queued) == sorted(names(files, 1, 2))
    assert {(r["state"], r["source_replica_expression"]) for r in queued} == {("QUEUED", site["slow"])}

    rucio_server.stick_transfers(rec.rule_id, names=names(files, 2))  # the other tape cannot serve it either
    report = cycle(site, book)
    rec = book.by_id[1]
    assert (report.failed, rec.status) == (1, lc.FAILED)
    assert f"no usable source left (NO_SOURCES from {site['fast']}, {site['slow']})" in rec.error
    assert rule_of(site, rec)["expires_at"].timestamp() <= time.time() + 5  # released at once (lifetime 0)


def test_permanent_refusals_fail_the_request_with_rucios_reason(rucio_server, site):
    missing = f"{site['scope']}:{site['scope']}.never.registered"
    blocked_dataset, _ = site["dataset"]("blocked")
    blocked_disk = rucio_server.add_rse(f"BLOCKED_{uuid.uuid4().hex[:6].upper()}_DATADISK", "DISK")
    rucio_server.add_distance(site["fast"], blocked_disk)
    site["client"].update_rse(blocked_disk, {"availability_write": False})
    blocked = request(2, blocked_dataset, site)
    book = MemoryBook([request(1, missing, site), StagingRequest(**{**blocked.__dict__, "destination": blocked_disk})])

    report = cycle(site, book)
    assert (report.failed, report.rule_retries) == (2, 0)
    assert book.by_id[1].status == lc.FAILED and "DataIdentifierNotFound" in book.by_id[1].error
    assert book.by_id[2].status == lc.FAILED and "RSEWriteBlocked" in book.by_id[2].error


def test_a_retired_request_releases_its_rule_and_rucios_cleaner_removes_it(rucio_server, site):
    dataset, _ = site["dataset"]("retire")
    book = MemoryBook([request(1, dataset, site)])
    cycle(site, book)
    rucio_server.complete_transfers(book.by_id[1].rule_id)
    cycle(site, book)
    rec = book.by_id[1]
    assert rec.status == lc.DONE

    rec = retire(book, RucioStagingDDM(site["client"]), rec)
    assert rec.status == lc.RETIRED
    assert rule_of(site, rec)["expires_at"].timestamp() <= time.time() + 5  # expired now, not in one hour
    rucio_server.clean_rules()
    ddm = RucioStagingDDM(site["client"])
    assert ddm.get_rules([rec.rule_id]) == {}  # gone for good
    scope, name = dataset.split(":")
    assert [r for r in site["client"].list_did_rules(scope, name) if r["rse_expression"] == site["disk"]] == []


def test_the_rule_activity_is_checked_against_the_servers_schema_without_creating_anything(rucio_server, site):
    from pandajedi_wf.daemons.data_carousel import _Notes, check_rule_activity

    ddm = RucioStagingDDM(site["client"])
    ddm.validate_activity("Staging", site["disk"])
    with pytest.raises(DDMError) as refused:
        ddm.validate_activity("Data Carousel", site["disk"])
    assert refused.value.kind == "InvalidObject"
    assert not [r for r in site["client"].list_replication_rules({"rse_expression": site["disk"]})]

    notes = _Notes()
    check_rule_activity(ddm, load_config({"default_destination": site["disk"]}), notes)
    with pytest.raises(CarouselConfigError, match=r"'rule_activity' 'Data Carousel Production' is refused by DDM \(InvalidObject\)"):
        check_rule_activity(ddm, load_config({"rule_activity": "Data Carousel Production", "default_destination": site["disk"]}), notes)
    assert notes.errors == []
