"""RucioStagingDDM against a recording fake of rucio.client.Client (no Rucio server here)."""

import datetime
import inspect

import pytest
from rucio.client import Client
from rucio.common import exception as rucio_exc

from pandajedi_wf.ddm.adapter import DatasetNotFoundError, DDMError, DDMUnavailableError, DuplicateRuleError, RuleNotFoundError
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM, split_did


class FakeClient:
    account = "pandasrv"

    def __init__(self, **answers):
        self.calls = []
        self.answers = answers

    def __getattr__(self, method):
        real = getattr(Client, method)  # only methods the real client has

        def call(*args, **kwargs):
            inspect.signature(real).bind(None, *args, **kwargs)  # same argument shape as the real API
            self.calls.append((method, args, kwargs))
            answer = self.answers.get(method)
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def test_create_staging_rule_call_shape():
    client = FakeClient(add_replication_rule=["rid-1"])
    rule = RucioStagingDDM(client).create_staging_rule("data18:data18.RAW", "rse_type=DISK|BNL_TAPE", "CERN_DATADISK", "Data Carousel", 86400)
    assert rule == "rid-1"
    assert client.calls == [
        (
            "add_replication_rule",
            (),
            dict(
                dids=[{"scope": "data18", "name": "data18.RAW"}],
                copies=1,
                rse_expression="CERN_DATADISK",
                grouping="DATASET",
                activity="Data Carousel",
                source_replica_expression="rse_type=DISK|BNL_TAPE",
                lifetime=86400,
                notify="P",
            ),
        )
    ]


def test_find_staging_rule_matches_destination_and_account():
    rules = [
        {"id": "other-acct", "rse_expression": "D", "account": "someone"},
        {"id": "other-dest", "rse_expression": "E", "account": "pandasrv"},
        {"id": "ours", "rse_expression": "D", "account": "pandasrv"},
    ]
    client = FakeClient(list_did_rules=rules)
    assert RucioStagingDDM(client).find_staging_rule("user.bob.x.y", "D") == "ours"
    assert client.calls == [("list_did_rules", ("user.bob", "user.bob.x.y"), {})]


def test_get_rules_reads_lock_counts_and_skips_missing():
    rule = {"state": "REPLICATING", "locks_ok_cnt": 3, "locks_replicating_cnt": 5, "locks_stuck_cnt": 1, "source_replica_expression": "T",
            "expires_at": datetime.datetime(2030, 1, 1)}
    client = FakeClient(get_replication_rule=rule)
    progress = RucioStagingDDM(client).get_rules(["r1"])["r1"]
    assert (progress.locks_ok, progress.locks_replicating, progress.locks_stuck, progress.state) == (3, 5, 1, "REPLICATING")
    assert progress.expires_at == datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    gone = FakeClient(get_replication_rule=rucio_exc.RuleNotFound("x"))
    assert RucioStagingDDM(gone).get_rules(["r2"]) == {}


def test_lifetime_source_switch_delete_and_staged_files():
    client = FakeClient(list_replica_locks=[{"scope": "s", "name": "f1", "rse": "D", "state": "OK"}, {"scope": "s", "name": "f2", "rse": "D", "state": "REPLICATING"}])
    ddm = RucioStagingDDM(client)
    ddm.extend_rule_lifetime("r", 3600)
    ddm.switch_rule_source("r", "T2")
    ddm.delete_rule("r")
    assert [f.name for f in ddm.list_staged_files("r")] == ["f1"]
    assert client.calls[:3] == [
        ("update_replication_rule", ("r", {"lifetime": 3600}), {}),
        ("update_replication_rule", ("r", {"source_replica_expression": "T2"}), {}),
        ("delete_replication_rule", ("r",), {"purge_replicas": None}),
    ]


def test_list_tape_replicas_in_bulk():
    client = FakeClient(
        list_rses=[{"rse": "T1_TAPE"}],
        list_dataset_replicas_bulk=[
            {"scope": "d", "name": "d.x", "rse": "T1_TAPE", "length": 4, "available_length": 4, "available_bytes": 40},
            {"scope": "d", "name": "d.x", "rse": "D_DISK", "length": 4, "available_length": 2, "available_bytes": 20},
        ],
    )
    reps = RucioStagingDDM(client).list_tape_replicas(["d:d.x", "d:d.y"])
    assert [(r.rse, r.is_tape, r.complete) for r in reps["d:d.x"]] == [("T1_TAPE", True, True), ("D_DISK", False, False)]
    assert reps["d:d.y"] == []
    assert client.calls[1] == ("list_dataset_replicas_bulk", ([{"scope": "d", "name": "d.x"}, {"scope": "d", "name": "d.y"}],), {})


@pytest.mark.parametrize(
    "error, expected",
    [
        (rucio_exc.DuplicateRule("dup"), DuplicateRuleError),
        (rucio_exc.DataIdentifierNotFound("nope"), DatasetNotFoundError),
        (rucio_exc.ServiceUnavailable("down"), DDMUnavailableError),
        (ConnectionError("refused"), DDMUnavailableError),
        (rucio_exc.RucioException("odd"), DDMError),
    ],
)
def test_rucio_errors_are_mapped(error, expected):
    with pytest.raises(expected, match="add_replication_rule s:ds -> D"):
        RucioStagingDDM(FakeClient(add_replication_rule=error)).create_staging_rule("s:ds", "T", "D", "a", 1)


def test_rule_not_found_mapped_on_update():
    with pytest.raises(RuleNotFoundError):
        RucioStagingDDM(FakeClient(update_replication_rule=rucio_exc.RuleNotFound("x"))).extend_rule_lifetime("r", 1)


def test_split_did():
    assert split_did("mc16:mc16.123.AOD/") == ("mc16", "mc16.123.AOD")
    assert split_did("group.phys.x") == ("group.phys", "group.phys.x")
    assert split_did("data18_13TeV.0001.RAW") == ("data18_13TeV", "data18_13TeV.0001.RAW")
