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

# upstream has_production_role (pandaserver/api/v1/common.py): VO-level production role, and usatlas
_PRODUCTION_FQAN = re.compile(r"^/[^/]+(/usatlas)?/Role=production")


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    as_role: str | None  # 'owner' or 'production' when allowed
    reason: str


def compact_user_name(identity: str | None) -> str:
    """The requester as PanDA stores a user name: ``clean_user_id`` of a DN, a plain name unchanged."""
    if not identity:
        return ""
    from pandaserver.srvcore.CoreUtils import clean_user_id  # light import: pandacommon only

    compact = clean_user_id(identity)
    return identity if compact in ("", "NULL", None) else compact


def is_production_role(roles: str | Iterable[str] | None, requester: str | None = None, production_dns: Iterable[str] = ()) -> bool:
    """``roles`` is 'production', an FQAN, or a list of FQANs; ``production_dns`` are DN parts with the role (panda_config)."""
    if requester and any(dn and dn in requester for dn in production_dns):
        return True
    if roles is None:
        return False
    items = [roles] if isinstance(roles, str) else list(roles)
    return any(item == "production" or _PRODUCTION_FQAN.search(item or "") for item in items)


def authorize(
    requester: str | None,
    roles: str | Iterable[str] | None,
    owner_name: str,
    owner_dn: str | None = None,
    *,
    command: str = "command",
    workflow_id: int | None = None,
    production_dns: Iterable[str] = (),
) -> Authorization:
    """May ``requester`` (DN or user name) with ``roles`` send ``command`` to a workflow owned by ``owner_name``?"""
    who = f"workflow {workflow_id}" if workflow_id is not None else "this workflow"
    if not requester:
        return Authorization(False, None, f"permission denied: {command} on {who} needs a requester identity")
    if is_production_role(roles, requester, production_dns):
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
