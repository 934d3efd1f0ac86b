"""The monitor's HTTP server without a database: a broken source answers 503 with the reason and drops the
connection for the next request; HEAD answers without a body; the server listens on loopback by default."""

import json
import urllib.error
import urllib.request

import pytest

from pandajedi_wf.monitor.server import make_server, serve_in_thread
from pandajedi_wf.taskbuffer.connection import DatabaseError


class BrokenSource:
    def overview(self, user_name=None):
        raise DatabaseError("OperationalError: server closed the connection <unexpectedly>")

    def workflow(self, workflow_id):
        raise DatabaseError("OperationalError: gone")

    def dag(self, workflow_id, opened=None):
        raise DatabaseError("OperationalError: gone")


@pytest.fixture
def server():
    dropped = []
    srv = make_server(BrokenSource(), port=0, on_error=lambda: dropped.append(1))
    thread = serve_in_thread(srv)
    srv.dropped = dropped
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def fetch(url, method="GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_database_failure_is_a_503_with_the_reason_and_drops_the_connection(server):
    base = "http://127.0.0.1:%d" % server.server_address[1]
    assert server.server_address[0] == "127.0.0.1"
    code, page = fetch(base + "/")
    assert code == 503 and "server closed the connection &lt;unexpectedly&gt;" in page
    code, body = fetch(base + "/workflow/3/json")
    assert code == 503 and json.loads(body)["error"] == "cannot read the database: DatabaseError: OperationalError: gone"
    assert len(server.dropped) == 2


def test_head_answers_headers_only(server):
    base = "http://127.0.0.1:%d" % server.server_address[1]
    code, body = fetch(base + "/nothing", method="HEAD")
    assert code == 404 and body == ""
