"""The page's actions without a database: identity only from the configured header, CSRF tokens bound to it, the
origin check, and confirmation before destructive commands."""

import pytest

from pandajedi_wf.monitor import actions
from pandajedi_wf.monitor.identity import Identity, IdentityHeaders

ALICE = Identity("/DC=org/DC=test/CN=alice", ("/wlcg/Role=NULL",))
BOB = Identity("/DC=org/DC=test/CN=bob")


def test_identity_comes_only_from_the_configured_header():
    headers = IdentityHeaders("X-Verified-DN", "X-Verified-FQANs")
    assert headers.identity({"X-Verified-DN": ALICE.dn, "X-Verified-FQANs": "/wlcg/Role=NULL, /wlcg/Role=production"}) == Identity(
        ALICE.dn, ("/wlcg/Role=NULL", "/wlcg/Role=production"))
    assert headers.identity({"X-Remote-User": "alice"}) is None
    assert headers.identity({"X-Verified-DN": "  "}) is None
    assert headers.identity({"X-Verified-DN": "alice\r\nX-Evil: 1"}) is None
    assert IdentityHeaders().identity({"X-Verified-DN": ALICE.dn}) is None  # nothing configured: read-only


def test_tokens_are_bound_to_the_identity_and_expire():
    tokens = actions.CsrfTokens(secret=b"k" * 32)
    token = tokens.issue(ALICE, now=1000)
    tokens.check(token, ALICE, now=1000 + 3600)
    with pytest.raises(actions.ActionRefused, match="does not belong to you"):
        tokens.check(token, BOB, now=1000)
    with pytest.raises(actions.ActionRefused, match="expired"):
        tokens.check(token, ALICE, now=1000 + actions.TOKEN_TTL + 1)
    with pytest.raises(actions.ActionRefused, match="malformed"):
        tokens.check("", ALICE, now=1000)
    with pytest.raises(actions.ActionRefused, match="does not belong"):
        actions.CsrfTokens(secret=b"x" * 32).check(token, ALICE, now=1000)  # another server's secret


def test_origin_must_be_this_server():
    actions.check_origin({"Host": "mon.example:8443", "Origin": "https://mon.example:8443"})
    actions.check_origin({"Host": "127.0.0.1:8080"})  # no Origin (curl, old browsers): the token still guards
    with pytest.raises(actions.ActionRefused, match="another site"):
        actions.check_origin({"Host": "mon.example", "Origin": "https://evil.example"})


def test_destructive_commands_ask_first_and_nothing_runs_without_identity():
    tokens = actions.CsrfTokens()
    form = {"csrf": tokens.issue(ALICE), "command": "kill"}
    answer = actions.run(None, 42, form, ALICE, tokens)  # never reaches the database
    assert answer["status"] == "confirm" and "Kill workflow 42" in answer["message"]
    answer = actions.run(None, 42, form | {"command": "rerun", "step": "merge"}, ALICE, tokens)
    assert answer["status"] == "confirm" and "step merge" in answer["message"]
    with pytest.raises(actions.ActionRefused, match="read-only"):
        actions.run(None, 42, form | {"confirmed": "1"}, None, tokens)
    with pytest.raises(actions.ActionRefused, match="unknown command"):
        actions.run(None, 42, form | {"command": "delete"}, ALICE, tokens)
    with pytest.raises(actions.ActionRefused, match="needs the step"):
        actions.run(None, 42, form | {"command": "rerun"}, ALICE, tokens)
    assert [c for c in actions.ACTIONS if actions.needs_confirmation(c)] == ["finish", "kill", "rerun"]
