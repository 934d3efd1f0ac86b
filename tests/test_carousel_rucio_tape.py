"""The carousel's cycle over the tape simulator's drives in front of a real Rucio server (``RucioTape``): the drives
decide when a file lands or sticks, Rucio's own conveyor-finisher applies it, and the carousel reads every state
from Rucio (rule, locks, staged bytes, NO_SOURCES error)."""

from __future__ import annotations

import uuid

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.cycle import MemoryBook, run_cycle
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM
from pandajedi_wf_dev.simulators.tape import RucioTape, SimDataset, TapeEndpoint

SIZES = [1_000_000, 2_000_000, 3_000_000]  # read at 1 MB/s by one drive after a 10 s mount: land at 11, 13, 16 s


def recall(rucio_server, on_tapes_in_physics):
    tag = uuid.uuid4().hex[:8].upper()
    fast, slow = rucio_server.add_rse(f"RF_{tag}_TAPE", "TAPE"), rucio_server.add_rse(f"RS_{tag}_TAPE", "TAPE")
    disk = rucio_server.add_rse(f"RN_{tag}_DATADISK", "DISK")
    for tape in (fast, slow):
        rucio_server.add_distance(tape, disk)
    scope = f"tape{tag[:5].lower()}"
    rucio_server.add_scope(scope)
    dataset = f"{scope}:{scope}.RAW.{tag.lower()}"
    rucio_server.add_dataset(scope, dataset.split(":")[1], [fast, slow], file_sizes=SIZES)
    tapes = [TapeEndpoint(fast, 1, 1e6, 10.0), TapeEndpoint(slow, 1, 1e6, 10.0)]
    physics_tapes = tuple({"fast": fast, "slow": slow}[t] for t in on_tapes_in_physics)
    drive = RucioTape(rucio_server, RucioStagingDDM(rucio_server.client()), tapes, [SimDataset(dataset, tuple(SIZES), physics_tapes)], start_time=1e9)
    config = load_config({"tapes": {fast: {"expected_bytes_per_second": 1e9}, slow: {"expected_bytes_per_second": 1e6}}, "cycle_seconds": 5})
    request = StagingRequest(1, dataset, len(SIZES), sum(SIZES), "alice", "User Analysis", disk, (fast, slow), created_at=1e9)
    return drive, config, MemoryBook([request]), {"fast": fast, "slow": slow, "disk": disk}


def run(drive, config, book, seconds: float, step: float = 5.0) -> list:
    seen = []
    for _ in range(int(seconds / step)):
        run_cycle(config, book, drive, drive.now, {})
        rec = book.by_id[1]
        seen.append((rec.status, rec.files_done, rec.bytes_done, rec.source))
        drive.advance(step)
    return seen


def test_the_drives_land_files_through_rucio_and_the_carousel_follows_them_file_by_file(rucio_server):
    drive, config, book, rses = recall(rucio_server, ["fast", "slow"])
    seen = run(drive, config, book, 30)
    partial = [(n, staged) for status, n, staged, _ in seen if status == lc.STAGING and n]
    assert partial and all(staged == sum(SIZES[:n]) for n, staged in partial)  # on disk before the rule is OK, exact bytes
    assert seen[-1] == (lc.DONE, 3, sum(SIZES), rses["fast"])
    rule = drive.ddm.client.get_replication_rule(book.by_id[1].rule_id)
    assert (rule["state"], rule["locks_ok_cnt"]) == ("OK", 3)


def test_a_tape_without_the_files_answers_no_sources_in_rucio_and_the_carousel_moves_to_the_other(rucio_server):
    drive, config, book, rses = recall(rucio_server, ["slow"])  # Rucio lists the fast tape; its drives find nothing
    seen = run(drive, config, book, 60)
    rec = book.by_id[1]
    assert (rec.status, rec.source, rec.dead, rec.switches) == (lc.DONE, rses["slow"], (rses["fast"],), 1)
    assert any(status == lc.STAGING and source == rses["fast"] for status, _, _, source in seen)
    assert f"NO_SOURCES on {rses['fast']}" in rec.error  # the reason of the switch, from Rucio's rule error
    assert drive.ddm.client.get_replication_rule(rec.rule_id)["source_replica_expression"] == rses["slow"]
