"""The managing page shows workflow-level pre-staging, on the real PostgreSQL, with every row made by the real path:
the processor plans the pre-stages when a workflow starts, the carousel cycle (over the tape simulator) takes them in,
queues, joins and stages their request, the CLI's kill and the carousel release one (as in
tests/test_workflow_prestage_db.py). The monitor reads them as its server does (``MonitorSource`` over HTTP): the
workflow page lists each pre-stage with its need-by, its state and the request it made or joined; the carousel page
names the requests that are pre-stages and their workflows."""

from __future__ import annotations

import io
import json
import re
import urllib.request

import pytest

from tests.carousel_db_fixtures import GB
from tests.test_workflow_prestage_db import LONG_SPEC, SPEC, carousel, config, process, request_of, start_workflow, tape_simulator
from wf_db_support import workflow_row

pytestmark = pytest.mark.db

DATASET = "mc16:mc16.monitored.RAW"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read().decode()


def row_of(page: str, table_id: str, attribute: str, value) -> str:
    """The <tr> of table ``table_id`` whose ``attribute`` is ``value``."""
    table = page[page.index(f'id="{table_id}"'):]
    table = table[:table.index("</table>")]
    match = re.search(rf'<tr [^>]*{attribute}="{re.escape(str(value))}"[^>]*>.*?</tr>', table, re.S)
    assert match, (attribute, value, table[:2000])
    return match.group(0)


def test_workflow_and_carousel_pages_follow_pre_stages_from_planned_to_released(db, pg, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.api.db_client import DbWorkflowClient
    from pandajedi_wf.cli.main import main
    from pandajedi_wf.monitor.collect import MonitorSource
    from pandajedi_wf.monitor.server import make_server, serve_in_thread
    from pandajedi_wf_dev.simulators.tape import SimDataset

    sim = tape_simulator([SimDataset(DATASET, (GB,) * 2, ("TAPE_A",))])
    lead0 = config(prestage_lead_seconds=0)
    server = make_server(MonitorSource(db, vo="wlcg"), "127.0.0.1", 0, on_error=db.close)
    thread = serve_in_thread(server)
    base = "http://127.0.0.1:%d" % server.server_address[1]

    def prestages(workflow_id):
        return json.loads(get(f"{base}/workflow/{workflow_id}/json"))["prestages"]

    try:
        # 'late' reads the tape dataset in its third step: planned when it starts, not yet taken in by the carousel
        late, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, DATASET, "user.dev.late", LONG_SPEC)
        (planned,) = prestages(late)
        assert (planned["dataset"], planned["node_key"], planned["state"], planned["request_id"]) == (DATASET, "003", "planned", None)
        assert planned["need_by"] < planned["ready_by"] and planned["due_in_seconds"] > 0
        page = get(f"{base}/workflow/{late}")
        row = row_of(page, "prestages", "data-dataset", DATASET)
        assert 'data-state="planned"' in row and planned["need_by"] in row and ">003<" in row and "none" in row

        cursor = json.loads(get(f"{base}/workflow/{late}/json"))["cursor"]
        assert json.loads(get(f"{base}/workflow/{late}/live?since={cursor}"))["prestages"] is None  # nothing moved

        # the carousel queues its request (its recall starts in an hour: not due yet)
        carousel(db, sim, jedi_taskbuffer, lead0)
        moved = json.loads(get(f"{base}/workflow/{late}/live?since={cursor}"))  # the live poll carries the section again
        assert [p["state"] for p in moved["prestages"]] == ["queued"] and 'data-state="queued"' in moved["prestages_html"]
        (request,) = request_of(pg, DATASET)
        (queued,) = prestages(late)
        assert (queued["state"], queued["request_id"], queued["joined"], queued["request_status"]) == ("queued", request["request_id"], False, "queued")
        row = row_of(get(f"{base}/workflow/{late}"), "prestages", "data-dataset", DATASET)
        assert 'data-state="queued"' in row and f'data-request="{request["request_id"]}"' in row and "made " in row

        # 'soon' needs the same dataset in its second step: its pre-stage joins the request, which is now due
        soon, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, DATASET, "user.dev.soon", SPEC)
        carousel(db, sim, jedi_taskbuffer, lead0)
        (joined,) = prestages(soon)
        assert (joined["state"], joined["request_id"], joined["joined"]) == ("staging", request["request_id"], True)
        assert prestages(late)[0]["state"] == "staging"
        row = row_of(get(f"{base}/workflow/{soon}"), "prestages", "data-dataset", DATASET)
        assert 'data-state="staging"' in row and "joined " in row and "TAPE_A" in row

        # the carousel page: the request is a pre-stage of both workflows, the earlier need-by first
        view = json.loads(get(f"{base}/carousel/json"))
        (entry,) = [r for r in view["prestages"]["requests"] if r["request_id"] == request["request_id"]]
        assert entry["status"] == "staging" and entry["dataset"] == DATASET
        assert [(w["workflow_id"], w["joined"]) for w in entry["workflows"]] == [(soon, True), (late, False)]
        row = row_of(get(f"{base}/carousel"), "prestage-requests", "data-request", request["request_id"])
        assert f'href="/workflow/{soon}"' in row and f'href="/workflow/{late}"' in row and "user.dev.soon" not in row  # names, not out_ds

        # 'late' is killed: its pre-stage is released, the request goes on for 'soon'
        assert main(["kill", str(late)], client_factory=lambda: DbWorkflowClient(db), out=io.StringIO(), err=io.StringIO()) == 0
        process(db, jedi_taskbuffer, sim)
        assert workflow_row(db, late)["status"] in ("cancelling", "cancelled")
        carousel(db, sim, jedi_taskbuffer, lead0)
        (released,) = prestages(late)
        assert released["state"] == "released" and released["released"] is not None
        row = row_of(get(f"{base}/workflow/{late}"), "prestages", "data-dataset", DATASET)
        assert 'data-state="released"' in row and released["released"] in row
        for _ in range(40):
            carousel(db, sim, jedi_taskbuffer, lead0)
            if request_of(pg, DATASET)[0]["status"] == "done":
                break
        (done,) = prestages(soon)
        assert done["state"] == "done" and done["bytes_staged"] == done["bytes_total"] == 2 * GB
        states = {w["workflow_id"]: w["state"] for r in json.loads(get(f"{base}/carousel/json"))["prestages"]["requests"] for w in r["workflows"]}
        assert states == {soon: "done", late: "released"}  # released in the period: still listed, as released
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
