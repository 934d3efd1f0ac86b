"""Who is looking at the page: only what a trusted front end verified and put in a request header.

The monitor listens on loopback; a front end (Apache with mod_ssl, nginx, the PanDA server's own) verifies the
user's certificate or token and forwards the request with the verified DN in the header the deployment names
(``--identity-header``, e.g. ``X-SSL-Client-S-DN``) and, optionally, the VOMS FQANs comma-separated in a second one
(``--fqans-header``). The front end must drop any such header the client sent. Without a configured header, or
when the request carries none, the page is read-only: no button is drawn and every POST is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

MAX_HEADER = 1024


@dataclass(frozen=True)
class Identity:
    dn: str
    fqans: tuple[str, ...] = ()

    @property
    def user_name(self) -> str:
        """The name PanDA stores for this DN (``clean_user_id``), as workflows record their owner."""
        from pandajedi_wf.control.authorization import compact_user_name

        return compact_user_name(self.dn)


@dataclass(frozen=True)
class IdentityHeaders:
    dn_header: str | None = None
    fqans_header: str | None = None

    def identity(self, headers: Mapping[str, str]) -> Identity | None:
        """The identity in ``headers`` (an ``email.message.Message`` or a dict), or None: read-only."""
        if not self.dn_header:
            return None
        dn = (headers.get(self.dn_header) or "").strip()
        if not dn or len(dn) > MAX_HEADER or any(ord(c) < 32 for c in dn):
            return None
        fqans: tuple[str, ...] = ()
        if self.fqans_header:
            raw = (headers.get(self.fqans_header) or "")[: 8 * MAX_HEADER]
            fqans = tuple(f.strip() for f in raw.split(",") if f.strip() and all(ord(c) >= 32 for c in f))
        return Identity(dn, fqans)
