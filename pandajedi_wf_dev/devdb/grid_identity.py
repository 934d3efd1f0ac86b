"""Grid identities for tests and the demo: a certificate authority, VOMS proxies, and reading them back.

A PanDA user reaches the server over TLS with an RFC 3820 proxy carrying a VOMS attribute certificate
(``voms-proxy-init -voms atlas``); Apache (mod_ssl + mod_gridsite) verifies the chain and hands the server
``SSL_CLIENT_S_DN`` and ``GRST_CRED_*``. Here the same objects are made locally:

- :class:`GridAuthority` writes a CA (hashed ``certificates/`` dir, i.e. ``X509_CERT_DIR``), a host certificate
  for 127.0.0.1/localhost and a VOMS server certificate;
- :meth:`GridAuthority.user` issues a user certificate and makes a real VOMS proxy with Debian's
  ``voms-proxy-fake`` (package ``voms-clients``), with FQANs and the ATLAS ``nickname`` generic attribute, so
  the real ``voms-proxy-info`` (which panda-client runs) reads it like any proxy;
- :func:`apache_ssl_environ` is what the server side sees of a verified client certificate: the variables
  mod_ssl (``+LegacyDNStringFormat``) and mod_gridsite set, FQANs read from the proxy's VOMS extension.
  The attribute certificate's own signature is not checked (mod_gridsite checks it against a vomsdir); the
  proxy chain itself is verified by TLS against the CA.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

VO = "atlas"
VOMS_URI = "127.0.0.1:15001"  # written into the attribute certificate only; nothing listens there
DN_BASE = (("DC", "org"), ("DC", "pandajedi-wf"))
PROXY_HOURS = 240
CERT_DAYS = 60

# X.509 extension OIDs
PROXY_CERT_INFO_OID = "1.3.6.1.5.5.7.1.14"  # RFC 3820
VOMS_AC_OID = "1.3.6.1.4.1.8005.100.100.5"  # the VOMS attribute certificate in a proxy
VOMS_FQAN_OID = "1.3.6.1.4.1.8005.100.100.4"  # the FQAN attribute inside it

_SHORT_NAMES = {
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.3": "CN",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}


class VomsClientsMissing(RuntimeError):
    """``voms-proxy-fake`` is not installed (Debian package ``voms-clients``)."""


@dataclass(frozen=True)
class GridUser:
    """One grid user: certificate, key and VOMS proxy files, and what the server should see of them."""

    name: str  # short key used by tests, e.g. "alice"
    dn: str  # the user certificate's subject, slash form
    nickname: str  # the VOMS 'nickname' attribute (ATLAS: the Rucio account), used in user.<nickname>.* names
    fqans: tuple[str, ...]
    cert_path: Path
    key_path: Path
    proxy_path: Path  # X509_USER_PROXY: proxy cert, its key, then the user cert
    username: str = field(default="")  # upstream's clean_user_id(dn), what PanDA stores as userName

    def proxy_dn(self) -> str:
        """The proxy's own subject (``dn`` + ``/CN=<number>``): Apache's ``SSL_CLIENT_S_DN`` for this user's requests."""
        from cryptography import x509

        return slash_dn(x509.load_pem_x509_certificate(self.proxy_path.read_bytes()).subject)


class GridAuthority:
    """A CA with a host certificate and a VOMS server under ``root`` (created on first use, reused after).

    ``cert_dir`` is an ``X509_CERT_DIR`` (the CA under its OpenSSL subject hash); ``ca_file`` the CA alone, for
    Python clients (``requests``/``httpx`` ``verify=``).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.ca_file = self.root / "ca.pem"
        self.cert_dir = self.root / "certificates"
        self.host_cert = self.root / "hostcert.pem"
        self.host_key = self.root / "hostkey.pem"
        self.voms_cert = self.root / "voms" / "vomscert.pem"
        self.voms_key = self.root / "voms" / "vomskey.pem"
        if not self.ca_file.exists():
            self._create()

    # ---- users ---------------------------------------------------------------------------------------------

    def user(self, name: str, full_name: str | None = None, fqans: tuple[str, ...] | list[str] | None = None, nickname: str | None = None) -> GridUser:
        """Issue (once) a user certificate ``/DC=org/DC=pandajedi-wf/OU=Users/CN=<name>/CN=<n>/CN=<full name>``
        and make a fresh VOMS proxy for it with ``fqans`` (default ``/atlas/Role=NULL/Capability=NULL``) and the
        ``nickname`` attribute (default ``name``)."""
        if not re.fullmatch(r"[a-z][a-z0-9]*", name):
            raise ValueError(f"grid user name must be lower-case letters and digits (it becomes a nickname), got {name!r}")
        full_name = full_name or f"{name.capitalize()} Tester"
        fqans = tuple(fqans or (f"/{VO}/Role=NULL/Capability=NULL",))
        nickname = nickname or name
        home = self.root / "users" / name
        cert_path, key_path, proxy_path = home / "usercert.pem", home / "userkey.pem", home / "x509up"
        subject = DN_BASE + (("OU", "Users"), ("CN", name), ("CN", str(100000 + _stable_number(name))), ("CN", full_name))
        if not cert_path.exists():
            home.mkdir(parents=True, exist_ok=True)
            key, cert = self._issue(subject, client=True)
            _write(key_path, _key_pem(key), 0o600)
            _write(cert_path, _cert_pem(cert))
        self._make_proxy(cert_path, key_path, proxy_path, fqans, nickname)
        dn = "".join(f"/{k}={v}" for k, v in subject)
        return GridUser(name, dn, nickname, fqans, cert_path, key_path, proxy_path, username=_clean_user_id(dn))

    def _make_proxy(self, cert_path: Path, key_path: Path, proxy_path: Path, fqans: tuple[str, ...], nickname: str) -> None:
        tool = shutil.which("voms-proxy-fake") or ("/usr/bin/voms-proxy-fake" if Path("/usr/bin/voms-proxy-fake").exists() else None)
        if tool is None:
            raise VomsClientsMissing("voms-proxy-fake not found: install Debian's 'voms-clients' package (bin/_bootstrap.sh does)")
        command = [tool, "-rfc", "-q", "-cert", str(cert_path), "-key", str(key_path), "-certdir", str(self.cert_dir),
                   "-hostcert", str(self.voms_cert), "-hostkey", str(self.voms_key), "-voms", VO, "-uri", VOMS_URI,
                   "-hours", str(PROXY_HOURS), "-vomslife", str(PROXY_HOURS), "-out", str(proxy_path)]
        for fqan in fqans:
            command += ["-fqan", fqan]
        command += ["-ga", f"nickname={nickname} ({VO})"]
        env = dict(os.environ, RANDFILE=str(self.root / ".rnd"), HOME=str(self.root))
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        if done.returncode != 0 or not proxy_path.exists():
            raise RuntimeError(f"voms-proxy-fake failed ({done.returncode}): {done.stdout}{done.stderr}")
        os.chmod(proxy_path, 0o600)

    # ---- the CA, host and VOMS certificates -----------------------------------------------------------------

    def _create(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        self.root.mkdir(parents=True, exist_ok=True)
        now = _now()
        self._ca_key = _new_key()
        ca_name = _x509_name(DN_BASE + (("CN", "pandajedi-wf Test CA"),))
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS * 2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key()), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        self._ca = ca
        _write(self.root / "ca-key.pem", _key_pem(self._ca_key), 0o600)
        self.cert_dir.mkdir(exist_ok=True)
        _write(self.cert_dir / f"{subject_hash(ca):08x}.0", _cert_pem(ca))
        key, cert = self._issue((("CN", "localhost"),), server=True)
        _write(self.host_key, _key_pem(key), 0o600)
        _write(self.host_cert, _cert_pem(cert))
        key, cert = self._issue(DN_BASE + (("CN", "voms.localhost"),), server=True)
        _write(self.voms_key, _key_pem(key), 0o600)
        _write(self.voms_cert, _cert_pem(cert))
        # the CA file last: its presence says the authority is complete
        _write(self.ca_file, _cert_pem(ca))

    def _issue(self, subject, server: bool = False, client: bool = False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID

        if not hasattr(self, "_ca"):
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            self._ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            self._ca_key = load_pem_private_key((self.root / "ca-key.pem").read_bytes(), None)
        key = _new_key()
        now = _now()
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_x509_name(subject))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False)
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return key, builder.sign(self._ca_key, hashes.SHA256())


# ---- what the server sees of a client certificate ---------------------------------------------------------------


def apache_ssl_environ(cert_pem: str | None) -> dict[str, str]:
    """The CGI variables Apache (mod_ssl with ``+StdEnvVars +ExportCertData +LegacyDNStringFormat``, and
    mod_gridsite) sets for a verified client certificate ``cert_pem`` (the leaf: a proxy or a user cert).
    Empty for a request without a certificate."""
    if not cert_pem:
        return {}
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem.encode() if isinstance(cert_pem, str) else cert_pem)
    subject, issuer = slash_dn(cert.subject), slash_dn(cert.issuer)
    is_proxy = any(ext.oid.dotted_string == PROXY_CERT_INFO_OID for ext in cert.extensions)
    not_before = int(cert.not_valid_before_utc.timestamp())
    not_after = int(cert.not_valid_after_utc.timestamp())
    env = {
        "HTTPS": "on",
        "SSL_CLIENT_VERIFY": "SUCCESS",
        "SSL_CLIENT_S_DN": subject,
        "SSL_CLIENT_I_DN": issuer,
        "SSL_CLIENT_CERT": cert_pem if isinstance(cert_pem, str) else cert_pem.decode(),
    }
    # mod_gridsite's compact credentials: the end-entity certificate, the proxy, then one VOMS line per FQAN
    user_dn = re.sub(r"(/CN=\d+)+$", "", issuer) if is_proxy else subject
    creds = [f"X509USER {not_before} {not_after} 1 {user_dn}"]
    if is_proxy:
        creds.append(f"GSIPROXY {not_before} {not_after} 1 {subject}")
    creds += [f"VOMS {not_before} {not_after} 0 {fqan}" for fqan in voms_fqans(cert)]
    env.update({f"GRST_CRED_{i}": line for i, line in enumerate(creds)})
    return env


def slash_dn(name) -> str:
    """An X.509 name in OpenSSL's one-line form, ``/DC=org/.../CN=Alice Tester``, the form PanDA's DNs take."""
    parts = []
    for rdn in name.rdns:
        for attribute in rdn:
            short = _SHORT_NAMES.get(attribute.oid.dotted_string, attribute.oid.dotted_string)
            parts.append(f"/{short}={attribute.value}")
    return "".join(parts)


def voms_fqans(cert) -> list[str]:
    """The FQANs in the VOMS attribute certificate of a proxy (empty for a certificate without one)."""
    for ext in cert.extensions:
        if ext.oid.dotted_string == VOMS_AC_OID:
            return _fqans_in(ext.value.value)
    return []


def _fqans_in(der: bytes) -> list[str]:
    """FQANs are the OCTET STRINGs of the Attribute whose type is VOMS_FQAN_OID (RFC 5755 IetfAttrSyntax)."""
    found: list[str] = []

    def walk(data: bytes, inside_fqan: bool) -> None:
        children = list(_tlvs(data))
        if children and children[0][0] == 0x06 and _oid_text(children[0][1]) == VOMS_FQAN_OID:
            inside_fqan = True
        for tag, value in children:
            if inside_fqan and tag == 0x04:
                found.append(value.decode("utf-8", "replace"))
            elif tag & 0x20:  # constructed: SEQUENCE, SET, context-specific [n]
                walk(value, inside_fqan)

    walk(der, False)
    return found


def _tlvs(data: bytes):
    """(tag, value) of each DER element in ``data`` (single-byte tags, as in X.509)."""
    i = 0
    while i + 2 <= len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        yield tag, data[i : i + length]
        i += length


def _oid_text(value: bytes) -> str:
    first = value[0]
    numbers = [first // 40 if first < 80 else 2, first % 40 if first < 80 else first - 80]
    current = 0
    for byte in value[1:]:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(current)
            current = 0
    return ".".join(str(n) for n in numbers)


# ---- OpenSSL's subject hash (the file name of a CA in an X509_CERT_DIR) --------------------------------------------


def subject_hash(cert) -> int:
    """``openssl x509 -subject_hash``: SHA-1 of the canonical DER of the subject, first 4 bytes little-endian.

    Canonical: every string value re-encoded as UTF8String, trimmed, inner white space collapsed, ASCII lower-cased;
    each RDN's SET concatenated without the outer SEQUENCE (OpenSSL ``x509_name_canon``)."""
    canonical = b""
    for rdn in cert.subject.rdns:
        entries = b""
        for attribute in rdn:
            text = " ".join(str(attribute.value).split()).lower().encode("utf-8")
            entries += _der(0x30, _der(0x06, _oid_der(attribute.oid.dotted_string)) + _der(0x0C, text))
        canonical += _der(0x31, entries)
    digest = hashlib.sha1(canonical).digest()
    return int.from_bytes(digest[:4], "little")


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def _oid_der(dotted: str) -> bytes:
    numbers = [int(x) for x in dotted.split(".")]
    out = bytes([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.insert(0, 0x80 | (number & 0x7F))
            number >>= 7
        out += bytes(chunk)
    return out


# ---- small helpers -------------------------------------------------------------------------------------------------


def _clean_user_id(dn: str) -> str:
    """What upstream's ``CoreUtils.clean_user_id`` makes of our DNs (the last CN, the full name)."""
    return re.sub(r"/CN=\d+", "", dn).rsplit("/CN=", 1)[-1]


def _stable_number(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:5], 16) % 900000


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_usage(ca: bool):
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=not ca, data_encipherment=not ca,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )


def _x509_name(pairs):
    from cryptography import x509

    oids = {short: oid for oid, short in _SHORT_NAMES.items()}
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier(oids[k]), v)]) for k, v in pairs])


def _cert_pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
