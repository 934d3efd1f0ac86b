"""Only the owner (compared the way PanDA cleans DNs) or a production role may command a workflow."""

from __future__ import annotations

import pytest

from pandajedi_wf.control import authorize, compact_user_name, is_production_role

CERN_DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=tmaeno/CN=123456/CN=Tadashi Maeno"


@pytest.mark.parametrize(
    "identity, compact",
    [
        (CERN_DN, "Tadashi Maeno"),
        (CERN_DN + "/CN=proxy/CN=proxy", "Tadashi Maeno"),
        (CERN_DN + "/CN=1234567890", "Tadashi Maeno"),
        ("/C=DE/O=GermanGrid/OU=DESY/CN=Jane Doe", "Jane Doe"),
        ("/DC=org/DC=terena/DC=tcs/C=US/O=Brookhaven/CN=John Smith jsmith@bnl.gov", "John Smith"),
        ("tmaeno", "tmaeno"),
        ("", ""),
        (None, ""),
    ],
)
def test_compact_user_name_matches_panda(identity, compact):
    assert compact_user_name(identity) == compact


def test_owner_by_dn_proxy_dn_or_plain_name():
    for requester in (CERN_DN, CERN_DN + "/CN=proxy", "Tadashi Maeno"):
        decision = authorize(requester, None, "Tadashi Maeno", command="kill", workflow_id=12)
        assert decision.allowed and decision.as_role == "owner", requester


def test_owner_recorded_by_dn_matches_a_requester_known_by_dn():
    decision = authorize("/C=DE/O=GermanGrid/OU=DESY/CN=Jane Doe/CN=proxy", None, "jdoe", "/C=DE/O=GermanGrid/OU=DESY/CN=Jane Doe")
    assert decision.allowed and decision.as_role == "owner"


def test_someone_else_is_refused_with_a_clear_message():
    decision = authorize("/C=DE/O=GermanGrid/OU=DESY/CN=Jane Doe", None, "Tadashi Maeno", CERN_DN, command="kill", workflow_id=12)
    assert not decision.allowed and decision.as_role is None
    assert decision.reason == "permission denied: 'Jane Doe' may not kill workflow 12, owned by 'Tadashi Maeno' (only the owner or a production role may)"


def test_a_user_role_fqan_does_not_help():
    assert not authorize("Jane Doe", ["/atlas/Role=NULL", "/atlas/phys-higgs/Role=NULL"], "Tadashi Maeno").allowed


@pytest.mark.parametrize(
    "roles, expected",
    [
        ("production", True),
        ("/atlas/Role=production", True),
        (["/atlas/Role=NULL", "/atlas/Role=production/Capability=NULL"], True),
        ("/atlas/usatlas/Role=production", True),
        ("/atlas/phys-higgs/Role=production", False),  # group production: not a VO production role upstream either
        ("/atlas/Role=pilot", False),
        ("user", False),
        (None, False),
        ([], False),
    ],
)
def test_production_role_patterns(roles, expected):
    assert is_production_role(roles) is expected


def test_production_role_and_production_dns_grant_access():
    decision = authorize("/DC=ch/DC=cern/CN=Robot: ATLAS Prod", "production", "Tadashi Maeno", command="retry")
    assert decision.allowed and decision.as_role == "production"
    by_dn = authorize("/DC=ch/DC=cern/CN=Robot: ATLAS Prod", None, "Tadashi Maeno", production_dns=["CN=Robot: ATLAS Prod"])
    assert by_dn.allowed and by_dn.as_role == "production"


def test_no_requester_is_refused():
    decision = authorize("", None, "Tadashi Maeno", command="pause", workflow_id=4)
    assert not decision.allowed and decision.reason == "permission denied: pause on workflow 4 needs a requester identity"


def test_empty_owner_never_matches_an_empty_compact_name():
    assert not authorize("NULL", None, "").allowed


@pytest.mark.parametrize(
    "fqan, vo, expected",
    [
        ("/atlas/Role=productionXYZ", None, False),  # upstream's unanchored search would take it
        ("/atlas/Role=production/Capability=NULL", "atlas", True),
        ("/atlas/Role=production/Capability=something", "atlas", False),
        ("/evil/Role=production", "atlas", False),  # a production role, but of another VO than the workflow's
        ("/evil/Role=production", None, True),  # no VO to compare with: any VO's production role
        ("/wlcg/Role=production", "wlcg", True),
        ("/wlcg/usatlas/Role=production", "wlcg", False),  # usatlas is ATLAS's group
        ("/atlas/usatlas/Role=production", "atlas", True),
        ("x/atlas/Role=production", "atlas", False),
    ],
)
def test_production_fqan_is_anchored_and_of_the_workflows_vo(fqan, vo, expected):
    assert is_production_role([fqan], vo=vo) is expected
    assert authorize("Jane Doe", [fqan], "Tadashi Maeno", vo=vo).allowed is expected
