"""Reading a junction's results.json from Rucio (download client faked: no Rucio server here)."""

import json
import os

import pytest

from pandajedi_wf.ddm.junction_results import JunctionResultsError, RucioJunctionResults, results_container


class FakeDownloadClient:
    def __init__(self, files):
        self.files = files  # name -> text written into base_dir on download
        self.calls = []

    def download_dids(self, items):
        self.calls.append(items)
        for item in items:
            for name, text in self.files.items():
                with open(os.path.join(item["base_dir"], name), "w") as out:
                    out.write(text)
        return items


def test_results_are_read_from_the_junction_task_output_container(tmp_path):
    client = FakeDownloadClient({"user.alice.wf_003_checkpoint.2.123._000001.results.json": json.dumps({"to_continue": True, "param_x": 3})})
    reader = RucioJunctionResults(lambda: client, scratch_dir=str(tmp_path))

    assert reader.fetch(123, "user.alice.wf_003_checkpoint.2") == {"to_continue": True, "param_x": 3}
    (items,) = client.calls
    assert items == [{"did": "user.alice:user.alice.wf_003_checkpoint.2_results.json/", "base_dir": items[0]["base_dir"], "no_subdir": True}]
    assert os.listdir(tmp_path) == []  # the scratch copy is removed


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, "holds no results.json"),
        ({"x.results.json": "{broken"}, "not valid JSON"),
        ({"x.results.json": "[1, 2]"}, "must be a JSON object"),
    ],
)
def test_unreadable_results_are_a_clear_error(tmp_path, files, message):
    reader = RucioJunctionResults(lambda: FakeDownloadClient(files), scratch_dir=str(tmp_path))
    with pytest.raises(JunctionResultsError, match=message):
        reader.fetch(7, "user.bob.wf_002_junction.1")


def test_rucio_unreachable_is_a_clear_error():
    def no_rucio():
        raise RuntimeError("Configuration not found")

    with pytest.raises(JunctionResultsError, match="cannot reach Rucio to read user.bob:user.bob.t_results.json/"):
        RucioJunctionResults(no_rucio).fetch(7, "user.bob.t")


def test_results_container_follows_user_and_group_scopes():
    assert results_container("user.alice.x_001_j") == ("user.alice", "user.alice.x_001_j_results.json/")
    assert results_container("group.phys-higgs.x_001_j") == ("group.phys-higgs", "group.phys-higgs.x_001_j_results.json/")
    assert results_container("mc23.x_001_j") == ("mc23", "mc23.x_001_j_results.json/")
