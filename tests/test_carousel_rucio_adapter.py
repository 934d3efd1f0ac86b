"""RucioStagingDDM against a recording fake of rucio.client.Client: ONLY for faults the real Rucio server of
tests/test_carousel_rucio_real.py cannot be made to produce (the server unavailable, a connection refused or timed
out, a server-side error of a kind the generic policy never raises). Everything the server can answer is tested
against the real server there; the dataset-name spellings are pure."""

import inspect

import pytest
from rucio.client import Client
from rucio.common import exception as rucio_exc

from pandajedi_wf.ddm.adapter import DDMError, DDMUnavailableError, canonical_dataset, spellings, split_did
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM


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


@pytest.mark.parametrize(
    "error, expected, kind",
    [
        (rucio_exc.ServiceUnavailable("down"), DDMUnavailableError, "ServiceUnavailable"),
        (ConnectionError("refused"), DDMUnavailableError, "ConnectionError"),
        (TimeoutError("read timed out"), DDMUnavailableError, "TimeoutError"),
        (rucio_exc.DatabaseException("ORA-12541"), DDMError, "DatabaseException"),
    ],
)
def test_faults_the_real_server_cannot_produce_are_mapped_with_their_kind(error, expected, kind):
    ddm = RucioStagingDDM(FakeClient(add_replication_rule=error, update_replication_rule=error, get_replication_rule=error))
    with pytest.raises(expected, match="add_replication_rule s:ds -> D") as raised:
        ddm.create_staging_rule("s:ds", "T", "D", "Staging", 1)
    assert raised.value.kind == kind
    with pytest.raises(expected):
        ddm.set_rule_priority("r", 4)
    with pytest.raises(expected):  # get_rules leaves out only unknown rules: an unavailable server is an error
        ddm.get_rules(["r"])


def test_an_unavailable_server_during_the_activity_probe_is_not_taken_for_a_valid_activity():
    with pytest.raises(DDMUnavailableError):
        RucioStagingDDM(FakeClient(add_replication_rule=TimeoutError("slow"))).validate_activity("Staging", "D")


def test_dataset_spellings():
    assert split_did("mc16:mc16.123.AOD/") == ("mc16", "mc16.123.AOD")
    assert split_did("group.phys.x") == ("group.phys", "group.phys.x")
    assert split_did("data18_13TeV.0001.RAW") == ("data18_13TeV", "data18_13TeV.0001.RAW")
    assert canonical_dataset("data18_13TeV.0001.RAW") == canonical_dataset("data18_13TeV:data18_13TeV.0001.RAW") == "data18_13TeV:data18_13TeV.0001.RAW"
    assert canonical_dataset(" user.bob.x/ ") == "user.bob:user.bob.x"
    assert spellings("data18.X") == spellings("data18:data18.X") == ("data18:data18.X", "data18.X")
