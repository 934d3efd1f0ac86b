"""A real Rucio 41.5.1 server (``devdb.rucio_server``), driven by ``.venv``'s rucio-clients as JEDI and our carousel
drive it: staging rules from tape, their locks and transfers completed or stuck by Rucio's own conveyor-finisher
and judge-repairer (no FTS), and our carousel's Rucio adapter on top.
"""

from __future__ import annotations

import time
import uuid

import pytest
from rucio.common import exception as rucio_exc

from pandajedi_wf.ddm import adapter as ddm_adapter
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM


@pytest.fixture
def tape_dataset(rucio_server):
    """A TAPE and a DISK RSE linked tape -> disk, and a closed 3-file dataset on tape only (fresh names per test)."""
    tag = uuid.uuid4().hex[:8].upper()
    tape = rucio_server.add_rse(f"T1_{tag}_TAPE", "TAPE")
    disk = rucio_server.add_rse(f"T1_{tag}_DATADISK", "DISK")
    rucio_server.add_distance(tape, disk)
    scope = f"data{tag[:4].lower()}"
    rucio_server.add_scope(scope)
    name = f"{scope}.00123456.physics_Main.RAW.{tag.lower()}"
    files = rucio_server.add_dataset(scope, name, [tape], n_files=3)
    return {"tape": tape, "disk": disk, "scope": scope, "name": name, "files": files}


def _staging_rule(client, ds, **extra):
    return client.add_replication_rule(
        dids=[{"scope": ds["scope"], "name": ds["name"]}],
        copies=1,
        rse_expression=ds["disk"],
        grouping="DATASET",
        activity="Staging",
        source_replica_expression=ds["tape"],
        lifetime=3600,
        notify="P",
        **extra,
    )[0]


def test_the_server_answers_ping_and_its_client_config_reaches_it_as_upstream_builds_clients(rucio_server):
    from rucio.client import Client

    assert rucio_server.is_ready()
    with rucio_server.client_config():
        assert Client().whoami()["account"] == "root"  # no arguments: what AtlasDDMClient does
    text = rucio_server.client_config_path.read_text()
    assert f"rucio_host = {rucio_server.url}" in text and "auth_type = userpass" in text
    assert f"Listening at: {rucio_server.url}" in rucio_server.log_path.read_text()  # gunicorn's log, named in failures


def test_a_failing_server_side_operation_says_what_failed(rucio_server, tape_dataset):
    from pandajedi_wf_dev.devdb.rucio_server import RucioServerError

    rule_id = _staging_rule(rucio_server.client(), tape_dataset)
    with pytest.raises(RucioServerError, match=r"finish_transfers.*LookupError: rule \w+ has no transfer request for \['no.such.file'\]"):
        rucio_server.complete_transfers(rule_id, names=["no.such.file"])
    assert rucio_server.transfer_requests(rule_id)  # the worker is still there for the next operation


def test_a_staging_rule_from_tape_replicates_with_one_lock_per_file_refuses_a_duplicate_and_ends_ok(rucio_server, tape_dataset):
    client, ds = rucio_server.client(), tape_dataset
    rule_id = _staging_rule(client, ds)

    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_replicating_cnt"], rule["locks_ok_cnt"], rule["locks_stuck_cnt"]) == ("REPLICATING", 3, 0, 0)
    assert rule["source_replica_expression"] == ds["tape"] and rule["notification"] == "PROGRESS"
    locks = list(client.list_replica_locks(rule_id))
    assert sorted(lock["name"] for lock in locks) == sorted(f["name"] for f in ds["files"])
    assert {(lock["rse"], lock["state"]) for lock in locks} == {(ds["disk"], "REPLICATING")}
    assert {r["state"] for r in rucio_server.transfer_requests(rule_id)} == {"QUEUED"}

    with pytest.raises(rucio_exc.DuplicateRule):
        _staging_rule(client, ds)

    first = ds["files"][0]["name"]
    rucio_server.complete_transfers(rule_id, names=[first])
    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_ok_cnt"], rule["locks_replicating_cnt"]) == ("REPLICATING", 1, 2)
    assert {lock["name"]: lock["state"] for lock in client.list_replica_locks(rule_id)}[first] == "OK"

    rucio_server.complete_transfers(rule_id)
    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_ok_cnt"], rule["locks_replicating_cnt"], rule["locks_stuck_cnt"]) == ("OK", 3, 0, 0)
    on_disk = [r for r in client.list_replicas([{"scope": ds["scope"], "name": ds["name"]}]) if r["states"].get(ds["disk"]) == "AVAILABLE"]
    assert len(on_disk) == 3


def test_a_transfer_without_sources_makes_the_rule_stuck_with_its_error_and_the_repairer_requeues_it(rucio_server, tape_dataset):
    client, ds = rucio_server.client(), tape_dataset
    rule_id = _staging_rule(client, ds)
    rucio_server.complete_transfers(rule_id, names=[ds["files"][0]["name"]])
    rucio_server.stick_transfers(rule_id, names=[ds["files"][1]["name"]], error="tape drive refused the cartridge")

    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_ok_cnt"], rule["locks_replicating_cnt"], rule["locks_stuck_cnt"]) == ("STUCK", 1, 1, 1)
    assert "tape drive refused the cartridge" in rule["error"]
    states = {lock["name"]: lock["state"] for lock in client.list_replica_locks(rule_id)}
    assert states[ds["files"][1]["name"]] == "STUCK"

    rucio_server.repair_rules()
    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_ok_cnt"], rule["locks_replicating_cnt"], rule["locks_stuck_cnt"]) == ("REPLICATING", 1, 2, 0)
    assert sorted(r["name"] for r in rucio_server.transfer_requests(rule_id)) == sorted(f["name"] for f in ds["files"][1:])


def test_the_generic_schema_accepts_only_its_activities(rucio_server, tape_dataset):
    """Rucio validates the activity against the server's schema: the generic one (this server) lists 'Staging',
    ATLAS's lists upstream's 'Data Carousel Analysis' / 'Data Carousel Production' (DataCarousel.py)."""
    with pytest.raises(rucio_exc.InvalidObject):
        rucio_server.client().add_replication_rule(
            [{"scope": tape_dataset["scope"], "name": tape_dataset["name"]}], 1, tape_dataset["disk"], activity="Not An Activity"
        )


# ---- our carousel's Rucio adapter (pandajedi_wf/ddm/rucio_adapter.py) against the real server -----------------


def test_the_carousel_adapter_creates_finds_follows_extends_and_deletes_a_staging_rule(rucio_server, tape_dataset):
    ds = tape_dataset
    dataset = f"{ds['scope']}:{ds['name']}"
    ddm = RucioStagingDDM(rucio_server.client())

    replicas = ddm.list_tape_replicas([dataset])[dataset]
    assert [(r.rse, r.is_tape, r.n_files, r.total_files, r.complete) for r in replicas] == [(ds["tape"], True, 3, 3, True)]
    assert replicas[0].n_bytes == sum(f["bytes"] for f in ds["files"])

    rule_id = ddm.create_staging_rule(dataset, ds["tape"], ds["disk"], "Staging", 3600)
    assert ddm.find_staging_rule(dataset, ds["disk"]) == rule_id
    with pytest.raises(ddm_adapter.DuplicateRuleError) as dup:
        ddm.create_staging_rule(dataset, ds["tape"], ds["disk"], "Staging", 3600)
    assert dup.value.kind == "DuplicateRule"

    progress = ddm.get_rules([rule_id])[rule_id]
    assert (progress.state, progress.locks_ok, progress.locks_replicating, progress.locks_stuck) == ("REPLICATING", 0, 3, 0)
    assert progress.source_expression == ds["tape"]
    assert 3500 < progress.expires_at - time.time() <= 3600 + 5

    rucio_server.complete_transfers(rule_id, names=[ds["files"][0]["name"]])
    staged = ddm.list_staged_files(rule_id)
    assert [(f.scope, f.name, f.rse) for f in staged] == [(ds["scope"], ds["files"][0]["name"], ds["disk"])]

    ddm.extend_rule_lifetime(rule_id, 7200)
    assert 7100 < ddm.get_rules([rule_id])[rule_id].expires_at - time.time() <= 7200 + 5
    ddm.switch_rule_source(rule_id, None)  # the queued transfers are cancelled: STUCK until the repairer requeues them
    assert (ddm.get_rules([rule_id])[rule_id].source_expression, ddm.get_rules([rule_id])[rule_id].state) == (None, ddm_adapter.RULE_STUCK)
    rucio_server.repair_rules(delta=1800)  # boosted by the switch: taken at the repairer's next pass
    assert {r["source_replica_expression"] for r in rucio_server.transfer_requests(rule_id)} == {None}

    rucio_server.complete_transfers(rule_id)
    assert ddm.get_rules([rule_id])[rule_id].state == ddm_adapter.RULE_OK
    assert len(ddm.list_staged_files(rule_id)) == 3

    ddm.delete_rule(rule_id)  # lifetime 0: expired now (delete_replication_rule would keep it one more hour)
    assert ddm.get_rules([rule_id])[rule_id].expires_at - time.time() <= 5
    rucio_server.clean_rules()  # the judge-cleaner's next pass
    assert ddm.get_rules([rule_id]) == {}


def test_the_carousel_adapter_maps_the_real_servers_refusals(rucio_server, tape_dataset):
    ds = tape_dataset
    ddm = RucioStagingDDM(rucio_server.client())
    assert ddm.get_rules(["0" * 32]) == {}  # an unknown rule is left out, not an error
    with pytest.raises(ddm_adapter.DatasetNotFoundError):
        ddm.create_staging_rule(f"{ds['scope']}:no.such.dataset", ds["tape"], ds["disk"], "Staging", 3600)
    with pytest.raises(ddm_adapter.DDMError) as bad:
        ddm.create_staging_rule(f"{ds['scope']}:{ds['name']}", ds["tape"], ds["disk"], "Not An Activity", 3600)
    assert bad.value.kind == "InvalidObject"


def test_the_carousel_adapter_sees_a_stuck_rule(rucio_server, tape_dataset):
    ds = tape_dataset
    ddm = RucioStagingDDM(rucio_server.client())
    rule_id = ddm.create_staging_rule(f"{ds['scope']}:{ds['name']}", ds["tape"], ds["disk"], "Staging", 3600)
    rucio_server.stick_transfers(rule_id, names=[ds["files"][2]["name"]])
    progress = ddm.get_rules([rule_id])[rule_id]
    assert (progress.state, progress.locks_stuck, progress.locks_replicating) == (ddm_adapter.RULE_STUCK, 1, 2)
    assert ddm.list_staged_files(rule_id) == []


def test_bootstrap_installs_the_server_venv_this_module_expects():
    """bin/_bootstrap.sh and devdb.rucio_server stamp .venv-rucio alike, so neither reinstalls what the other made."""
    import re
    from pathlib import Path

    from pandajedi_wf_dev.devdb.rucio_server import RUCIO_REQUIREMENTS

    script = (Path(__file__).resolve().parents[1] / "bin" / "_bootstrap.sh").read_text()
    listed = re.search(r"^RUCIO_REQUIREMENTS=\((.*)\)$", script, re.M).group(1)
    assert tuple(re.findall(r'"([^"]+)"', listed)) == RUCIO_REQUIREMENTS


def test_the_carousels_rule_activity_is_one_the_server_accepts(rucio_server, tape_dataset):
    """The default recall activity ('Staging') is in Rucio's generic schema; the 'Data Carousel' the carousel used
    before was refused (InvalidObject, judged permanent: every request would have failed at its first rule)."""
    from pandajedi_wf.carousel.config import CarouselConfig, load_config

    ds = tape_dataset
    ddm = RucioStagingDDM(rucio_server.client())
    assert ddm.create_staging_rule(f"{ds['scope']}:{ds['name']}", ds["tape"], ds["disk"], CarouselConfig().rule_activity, 3600)
    with pytest.raises(ddm_adapter.DDMError) as refused:
        ddm.create_staging_rule(f"{ds['scope']}:{ds['name']}", ds["tape"], f"{ds['disk']}|{ds['tape']}", "Data Carousel", 3600)
    assert refused.value.kind == "InvalidObject" and "activity" in str(refused.value).lower(), (refused.value.kind, str(refused.value))
    assert load_config({"rule_activity": "Data Carousel Analysis"}).rule_activity == "Data Carousel Analysis"
