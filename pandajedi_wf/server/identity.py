"""Who is asking: the identity the front end verified, read the way upstream's PanDA server reads it.

Upstream's ``PandaRequest`` decodes an OIDC/SciToken bearer token (when the server is configured for tokens) into the
same environment variables Apache sets for a certificate (``SSL_CLIENT_S_DN``, ``GRST_CRED_*`` VOMS attributes);
``get_dn``/``get_fqan`` read them and ``is_secure`` refuses plain and limited-proxy access. Nothing in the request
body or query ever names the requester.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    dn: str
    fqans: tuple[str, ...]


class NotAuthenticated(Exception):
    """The request carries no identity upstream would accept; the message says why."""


def verified_identity(environ: dict, log) -> Identity:
    from pandaserver.api.v1.common import get_dn, get_fqan, is_secure
    from pandaserver.srvcore.panda_request import PandaRequest

    request = PandaRequest(environ, log)
    if not request.authenticated:
        raise NotAuthenticated(f"Token authentication failed. {request.message}")
    if not is_secure(request, log):
        raise NotAuthenticated("SSL secure connection is required (a verified certificate or token), not a limited proxy")
    dn = get_dn(request)
    if not dn:
        raise NotAuthenticated("no verified identity (SSL_CLIENT_S_DN) in the request")
    return Identity(dn, tuple(get_fqan(request)))
