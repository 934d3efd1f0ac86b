"""Containers named before JEDI registered a task, expanded by our Rucio adapter against a real Rucio 41.5.1 server
(``rucio_server`` fixture): ``RucioStagingDDM.expand_containers`` (``get_did``, ``list_content``), and a task upstream
parked in ``staging`` whose parameters name a container, recalled by our carousel cycle with one Rucio rule per dataset.

Real: Rucio (containers, datasets on a TAPE RSE, our rules); insertTaskParamsPanda and upstream's TaskRefiner alone
parking the task (``toStaging``); our carousel cycle on PostgreSQL.  Simulated: JEDI's DDM for the refiner
(tests/carousel_db_fixtures.RefinerDDM; the parked task is not registered, so JEDI's DDM is not asked about it).
"""

from __future__ import annotations

import json
import re
import time
import uuid

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

from tests.carousel_db_fixtures import UPSTREAM_ONLY_REFINER, RefinerDDM, requests, sql, task_params, wfdb  # noqa: F401


def tape_site(rucio_server):
    tag = uuid.uuid4().hex[:8].upper()
    tape, disk = rucio_server.add_rse(f"CONT_{tag}_TAPE", "TAPE"), rucio_server.add_rse(f"CONT_{tag}_DATADISK", "DISK")
    rucio_server.add_distance(tape, disk)
    scope = f"cont{tag[:5].lower()}"
    rucio_server.add_scope(scope)
    return tag.lower(), scope, tape, disk


def container_of(rucio_server, scope: str, name: str, children: list[tuple[str, str]]) -> None:
    client = rucio_server.client()
    client.add_container(scope, name)
    client.attach_dids(scope, name, [{"scope": s, "name": n} for s, n in children])


def test_the_adapter_expands_containers_nested_ones_too_and_leaves_datasets_and_unknown_names_as_named(rucio_server):
    tag, scope, tape, _ = tape_site(rucio_server)
    ds = [f"{scope}.{tag}.RAW.ds{i}" for i in (1, 2, 3)]
    for name in ds:
        rucio_server.add_dataset(scope, name, [tape], n_files=1)
    # Rucio allows no mixed collection: a container holds datasets, or containers
    first, second, outer, empty = (f"{scope}.{tag}.{label}" for label in ("period1", "period2", "RAW", "empty"))
    container_of(rucio_server, scope, first, [(scope, ds[1]), (scope, ds[0])])
    container_of(rucio_server, scope, second, [(scope, ds[2])])
    container_of(rucio_server, scope, outer, [(scope, second), (scope, first)])
    rucio_server.client().add_container(scope, empty)
    unknown = f"{scope}:{scope}.{tag}.never_registered/"

    found = RucioStagingDDM(rucio_server.client()).expand_containers(
        [f"{scope}:{outer}/", f"{scope}:{second}", f"{scope}:{ds[0]}", ds[1], unknown, f"{scope}:{empty}/"]
    )

    assert found == {
        f"{scope}:{outer}/": [f"{scope}:{ds[0]}", f"{scope}:{ds[1]}", f"{scope}:{ds[2]}"],  # nested; a trailing '/' is JEDI's spelling
        f"{scope}:{second}": [f"{scope}:{ds[2]}"],
        f"{scope}:{ds[0]}": [f"{scope}:{ds[0]}"],  # a dataset as the task named it
        ds[1]: [ds[1]],
        unknown: [unknown],  # its recall fails with DDM's answer, and the task is told
        f"{scope}:{empty}/": [],  # the carousel keeps the name (nothing to recall: its request fails and the task is told)
    }


def test_a_parked_task_naming_a_container_gets_one_rucio_rule_per_dataset(rucio_server, jedi_taskbuffer, pg, wfdb):
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    tag, scope, tape, disk = tape_site(rucio_server)
    ds = [f"{scope}.{tag}.RAW.ds{i}" for i in (1, 2)]
    for name in ds:
        rucio_server.add_dataset(scope, name, [tape], n_files=2)
    container = f"{scope}.{tag}.RAW"
    container_of(rucio_server, scope, container, [(scope, name) for name in ds])
    params = dict(task_params(f"dc.rucio.cont.{tag}", f"{scope}:{container}/"), toStaging=True)
    code, message = jedi_taskbuffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
    assert code == 0, message
    tid = int(re.search(r"jediTaskID=(\d+)", message).group(1))
    refine_tasks(jedi_taskbuffer, "wlcg", "managed", LocalDDMInterface({"any": RefinerDDM()}), mod_config=UPSTREAM_ONLY_REFINER)
    assert sql(pg, "SELECT status, splitrule FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid) == [("staging", None)]

    config = load_config({"default_destination": disk, "tapes": {tape: {"expected_bytes_per_second": 1e6}}})
    message = data_carousel.cycle(wfdb, CycleStats(), RucioStagingDDM(rucio_server.client()), jedi_taskbuffer, now=time.time(), config=config, vo="wlcg")
    assert "error" not in message, message

    reqs = {r["dataset"]: r for r in requests(pg)}
    assert set(reqs) == {f"{scope}:{name}" for name in ds}  # one request per dataset, none for the container
    client = rucio_server.client()
    for name in ds:
        rule = client.get_replication_rule(reqs[f"{scope}:{name}"]["rule_id"])
        assert (rule["scope"], rule["name"], rule["rse_expression"], rule["source_replica_expression"]) == (scope, name, disk, tape)
        assert rule["locks_replicating_cnt"] == 2
    assert sql(pg, "SELECT COUNT(*) FROM doma_panda.jedi_dc_relations WHERE jedi_task_id=%s", tid) == [(2,)]
