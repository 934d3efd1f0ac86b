"""Slices of a dataset on the real Rucio 41.5.1 server (``rucio_server`` fixture): what staging part of a dataset's
files by a rule of its own takes, checked before the carousel stages slices (it does not yet: see README, "Tight
buffers"). A rule given a list of file DIDs is one rule per file, so a slice is a dataset DID of the carousel's own
with the slice's files attached (``RucioStagingDDM.make_slice_dataset``); one rule on it recalls and holds just those
files, from the tape named as source, and expiring it (the carousel's retire) releases them while the dataset's other
slice stays held."""

from __future__ import annotations

import time
import uuid

import pytest

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.cycle import MemoryBook, retire, run_cycle
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.slicing import slice_ranges
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.adapter import DDMError
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

SIZES = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]


@pytest.fixture
def site(rucio_server):
    tag = uuid.uuid4().hex[:8].upper()
    tape = rucio_server.add_rse(f"SL_{tag}_TAPE", "TAPE")
    disk = rucio_server.add_rse(f"SLD_{tag}_DATADISK", "DISK")
    rucio_server.add_distance(tape, disk)
    scope = f"data{tag[:5].lower()}"
    rucio_server.add_scope(scope)
    carousel_scope = f"crsl{tag[:5].lower()}"  # the carousel's own scope for its slice datasets
    rucio_server.add_scope(carousel_scope)
    name = f"{scope}.slices.RAW.{tag.lower()}"
    files = rucio_server.add_dataset(scope, name, [tape], file_sizes=SIZES)
    return {"tape": tape, "disk": disk, "dataset": f"{scope}:{name}", "files": [f"{scope}:{f['name']}" for f in files], "carousel_scope": carousel_scope, "client": rucio_server.client()}


def locks(site, rule_id) -> dict[str, str]:
    return {lock["name"]: lock["state"] for lock in site["client"].list_replica_locks(rule_id)}


def short(files) -> set[str]:
    return {f.split(":", 1)[1] for f in files}


def test_a_rule_on_a_list_of_file_dids_is_one_rule_per_file(rucio_server, site):
    """Why a slice needs a dataset of its own: Rucio makes one rule per DID it is given."""
    ids = site["client"].add_replication_rule(
        [dict(zip(("scope", "name"), f.split(":", 1))) for f in site["files"][:2]], 1, site["disk"], source_replica_expression=site["tape"], lifetime=600
    )
    assert len(ids) == 2 and len(set(ids)) == 2


def test_a_slice_rule_recalls_and_holds_just_its_files_and_its_retire_leaves_the_other_slice_held(rucio_server, site):
    ddm = RucioStagingDDM(site["client"])
    (a0, a1), (b0, b1) = slice_ranges(SIZES, 3)
    first, second = f"{site['carousel_scope']}:slice0000", f"{site['carousel_scope']}:slice0001"
    ddm.make_slice_dataset(first, site["dataset"], site["files"][a0:a1])
    ddm.make_slice_dataset(first, site["dataset"], site["files"][a0:a1])  # replayed after a crash: nothing more
    ddm.make_slice_dataset(second, site["dataset"], site["files"][b0:b1])
    assert short(f"{f['scope']}:{f['name']}" for f in site["client"].list_files(*first.split(":"))) == short(site["files"][:3])
    assert len(list(site["client"].list_files(*site["dataset"].split(":")))) == 5  # the files stay in their dataset

    one = ddm.create_staging_rule(first, site["tape"], site["disk"], "Staging", 3600)
    two = ddm.create_staging_rule(second, site["tape"], site["disk"], "Staging", 3600)
    assert set(locks(site, one)) == short(site["files"][:3]) and set(locks(site, two)) == short(site["files"][3:])
    assert {r["source_replica_expression"] for r in rucio_server.transfer_requests(one)} == {site["tape"]}

    rucio_server.complete_transfers(one)
    rucio_server.complete_transfers(two)
    progress = ddm.get_rules([one, two])
    assert (progress[one].state, progress[one].locks_ok, progress[two].locks_ok) == ("OK", 3, 2)
    assert sum(f.n_bytes for f in ddm.list_staged_files(one)) == sum(SIZES[:3])  # sizes of the slice's own files

    ddm.delete_rule(one)  # the carousel's retire of the first slice: lifetime 0, then the judge-cleaner
    rucio_server.clean_rules()
    assert ddm.get_rules([one]) == {} and ddm.get_rules([two])[two].state == "OK"
    held = {lock["name"] for lock in site["client"].list_replica_locks(two)}
    assert held == short(site["files"][3:])


def test_a_closed_slice_missing_files_is_refused_not_silently_kept(rucio_server, site):
    ddm = RucioStagingDDM(site["client"])
    name = f"{site['carousel_scope']}:closed"
    ddm.make_slice_dataset(name, site["dataset"], site["files"][:1])
    with pytest.raises(DDMError) as refused:
        ddm.make_slice_dataset(name, site["dataset"], site["files"][:2])
    assert refused.value.kind == "UnsupportedOperation"


def test_the_carousel_cycle_stages_and_retires_slices_as_requests_of_their_own(rucio_server, site):
    """Two slices as two requests of the same cycle (as ours-slices in the benchmark): each admitted, followed to DONE
    from its own rule, the first retired while the second is still staging."""
    ddm = RucioStagingDDM(site["client"])
    requests = []
    for k, (a, b) in enumerate(slice_ranges(SIZES, 3)):
        name = f"{site['carousel_scope']}:cyc{k}"
        ddm.make_slice_dataset(name, site["dataset"], site["files"][a:b])
        requests.append(StagingRequest(k + 1, name, b - a, sum(SIZES[a:b]), "alice", "User Analysis", site["disk"], (site["tape"],), created_at=time.time()))
    book = MemoryBook(requests)
    config = load_config({"tapes": {site["tape"]: {"expected_bytes_per_second": 1e9}}, "rule_lifetime_seconds": 3600, "extend_below_seconds": 600})
    run_cycle(config, book, ddm, time.time(), {})
    assert {rec.status for rec in book.by_id.values()} == {lc.STAGING}
    rucio_server.complete_transfers(book.by_id[1].rule_id)
    run_cycle(config, book, ddm, time.time(), {})
    assert (book.by_id[1].status, book.by_id[1].bytes_done, book.by_id[2].status) == (lc.DONE, sum(SIZES[:3]), lc.STAGING)
    retired = retire(book, ddm, book.by_id[1])
    rucio_server.clean_rules()
    assert retired.status == lc.RETIRED and ddm.get_rules([retired.rule_id]) == {}
    assert ddm.get_rules([book.by_id[2].rule_id])[book.by_id[2].rule_id].locks_replicating == 2
