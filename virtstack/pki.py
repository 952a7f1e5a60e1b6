"""Each environment's own certificate authority, and the registry's server certificate.

The registry serves HTTPS with a certificate from a CA that belongs to one environment
alone: its clients (the Docker provider's digest reads, virtstack's tests, the engines)
trust that CA and nothing else for it. Both are made on first use under the project's
``.virtstack/tls/<env>/`` (private keys mode 0600, folder 0700) and reused after: the
server certificate is reissued, by the same CA, only when the addresses it must name
change or it nears its end.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from virtstack.tlsfiles import CA_FILE, tls_dir

CA_DAYS = 3650
SERVER_DAYS = 397
"""Browsers' and Go's ceiling for a server certificate's life; `up` reissues in time."""
RENEW_BEFORE = datetime.timedelta(days=30)
CA_KEY_FILE = "ca.key"
CERT_FILE = "registry.crt"
KEY_FILE = "registry.key"

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ServerCert:
    """The registry's certificate and key (PEM), and the CA its clients trust."""

    ca_file: Path
    ca: str
    certificate: str
    key: str
    """Secret: hand it on only as a Pulumi secret."""


def registry_cert(
    project: Path, env: str, addresses: Iterable[str], *, persist: bool = True
) -> ServerCert:
    """The registry certificate of ``env`` naming every one of ``addresses`` (IPs or DNS
    names), issued by the environment's CA; both made if missing.

    ``persist`` False (a preview) writes nothing: a missing CA or certificate is made in
    memory only, for the run to show what `up` would deploy.
    """
    folder = tls_dir(project, env)
    names = sorted(set(addresses))
    now = datetime.datetime.now(tz=datetime.UTC)
    ca_key, ca_cert = _load(folder, CA_KEY_FILE, CA_FILE)
    if ca_key is None or ca_cert is None or ca_cert.not_valid_after_utc - now < RENEW_BEFORE:
        ca_key, ca_cert = _new_ca(env, now)
        if persist:
            _store(folder, CA_KEY_FILE, CA_FILE, ca_key, ca_cert)
    key, cert = _load(folder, KEY_FILE, CERT_FILE)
    if key is None or cert is None or not _fits(cert, ca_cert, names, now):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(env, key, ca_key, ca_cert, names, now)
        if persist:
            _store(folder, KEY_FILE, CERT_FILE, key, cert)
    return ServerCert(
        ca_file=folder / CA_FILE,
        ca=_pem(ca_cert),
        certificate=_pem(cert),
        key=_key_pem(key).decode(),
    )


def san_names(cert: x509.Certificate) -> set[str]:
    """The addresses and names a certificate's subjectAltName covers, as strings."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return ips | set(san.get_values_for_type(x509.DNSName))


def _fits(
    cert: x509.Certificate, ca: x509.Certificate, names: list[str], now: datetime.datetime
) -> bool:
    """Whether ``cert`` is the CA's, names exactly ``names`` and lives on long enough."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):  # another CA's (an older one's)
        return False
    return san_names(cert) == set(names) and cert.not_valid_after_utc - now >= RENEW_BEFORE


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _new_ca(env: str, now: datetime.datetime) -> tuple[Key, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"virtstack {env} CA")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        # It signs this environment's registry certificates and nothing below them.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    env: str,
    key: Key,
    ca_key: Key,
    ca: x509.Certificate,
    names: list[str],
    now: datetime.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{env}-registry")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load(
    folder: Path, key_name: str, cert_name: str
) -> tuple[Key | None, x509.Certificate | None]:
    """A stored key pair, or Nones when either file is missing or unreadable as one."""
    try:
        key = serialization.load_pem_private_key((folder / key_name).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / cert_name).read_bytes())
    except (OSError, ValueError):
        return None, None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return None, None
    return key, cert


def _store(folder: Path, key_name: str, cert_name: str, key: Key, cert: x509.Certificate) -> None:
    """Write a key (0600, never readable by others even for an instant) and its cert."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    for name, data, mode in (
        (key_name, _key_pem(key), 0o600),
        (cert_name, _pem(cert).encode(), 0o644),
    ):
        temporary = folder / f".{name}.new"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        temporary.replace(folder / name)
