"""Who may command a workflow: its owner or a production role, decided like PanDA decides for tasks.

Upstream (``validate_ownership_or_production_role``) compares the requester's DN, cleaned by
``CoreUtils.clean_user_id``, with ``JEDI_Tasks.userName``, which was stored cleaned the same
way at submission.  We do the same against the workflow's ``user_name`` and, when recorded,
its cleaned ``user_dn``; a plain user name (token identity) cleans to itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

# upstream has_production_role (pandaserver/api/v1/common.py) takes a VO-level production role, and usatlas; its
# patterns are searched unanchored, so '/atlas/Role=productionXYZ' or any made-up VO would pass there. Here the FQAN
# must be exactly the workflow's VO's production role, optionally with VOMS' '/Capability=NULL' suffix.
_PRODUCTION_FQAN = re.compile(r"^/(?P<vo>[^/]+)(/usatlas)?/Role=production(/Capability=NULL)?$")


OPERATOR_ROLE = "operator"  # given only by the operator CLI / in-process API, never from a verified request


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    as_role: str | None  # 'owner', 'production' or 'operator' when allowed
    reason: str


def compact_user_name(identity: str | None) -> str:
    """The requester as PanDA stores a user name: ``clean_user_id`` of a DN, a plain name unchanged."""
    if not identity:
        return ""
    from pandaserver.srvcore.CoreUtils import clean_user_id  # light import: pandacommon only

    compact = clean_user_id(identity)
    return identity if compact in ("", "NULL", None) else compact


def is_production_role(roles: str | Iterable[str] | None, requester: str | None = None, production_dns: Iterable[str] = (),
                       vo: str | None = None) -> bool:
    """``roles`` is 'production', an FQAN, or a list of FQANs; ``production_dns`` are DN parts with the role (panda_config).

    An FQAN counts only for ``vo`` (the workflow's VO) when it is given, and ``/usatlas`` only for ATLAS.
    """
    if requester and any(dn and dn in requester for dn in production_dns):
        return True
    if roles is None:
        return False
    if isinstance(roles, str):  # a role word from trusted in-process callers, or one FQAN
        return roles == "production" or _is_production_fqan(roles, vo)
    # FQANs of a verified identity: only real FQANs count (a token scope 'role:production' reaches upstream's
    # get_fqan as the bare word 'production', which upstream's own has_production_role does not take either)
    return any(_is_production_fqan(item or "", vo) for item in roles)


def _is_production_fqan(fqan: str, vo: str | None) -> bool:
    match = _PRODUCTION_FQAN.match(fqan)
    if match is None:
        return False
    if match.group(2) and match.group("vo") != "atlas":
        return False
    return vo is None or match.group("vo") == vo


def authorize(
    requester: str | None,
    roles: str | Iterable[str] | None,
    owner_name: str,
    owner_dn: str | None = None,
    *,
    command: str = "command",
    workflow_id: int | None = None,
    production_dns: Iterable[str] = (),
    vo: str | None = None,
) -> Authorization:
    """May ``requester`` (DN or user name) with ``roles`` send ``command`` to a workflow owned by ``owner_name``?"""
    who = f"workflow {workflow_id}" if workflow_id is not None else "this workflow"
    if roles == OPERATOR_ROLE and requester:  # the operator CLI over the database: whoever has its password
        return Authorization(True, OPERATOR_ROLE, f"{command} on {who} by the operator ({requester})")
    if not requester:
        return Authorization(False, None, f"permission denied: {command} on {who} needs a requester identity")
    if is_production_role(roles, requester, production_dns, vo):
        return Authorization(True, "production", f"{command} on {who} allowed by production role")
    compact = compact_user_name(requester)
    owners = {owner_name} | ({compact_user_name(owner_dn)} if owner_dn else set())
    if compact in owners - {""}:
        return Authorization(True, "owner", f"{command} on {who} allowed: {compact!r} owns it")
    return Authorization(
        False,
        None,
        f"permission denied: {compact!r} may not {command} {who}, owned by {owner_name!r} (only the owner or a production role may)",
    )
