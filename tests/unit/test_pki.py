"""Each environment's CA and its registry certificate: made once, kept private, its own."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from virtstack import pki, tlsfiles

ADDRESSES = ["127.0.0.1", "localhost", "192.0.2.10"]


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_certificate_names_every_address_and_chains_to_the_environments_ca(tmp_path):
    made = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    cert, ca = load(made.certificate), load(made.ca)
    assert pki.san_names(cert) == set(ADDRESSES)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "192.0.2.10",
    ]
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert made.ca_file == tlsfiles.ca_file(tmp_path, "shop")
    assert made.ca_file.read_text() == made.ca


def test_private_keys_are_readable_by_their_owner_only(tmp_path):
    pki.registry_cert(tmp_path, "shop", ADDRESSES)
    folder = tlsfiles.tls_dir(tmp_path, "shop")
    assert mode(folder) == 0o700
    assert mode(folder / "ca.key") == 0o600
    assert mode(folder / "registry.key") == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [
        "ca.crt",
        "ca.key",
        "registry.crt",
        "registry.key",
    ]


def test_the_ca_and_certificate_are_reused_across_runs(tmp_path):
    first = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    again = pki.registry_cert(tmp_path, "shop", reversed(ADDRESSES))
    assert again == first


def test_new_addresses_reissue_the_certificate_from_the_same_ca(tmp_path):
    first = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    moved = pki.registry_cert(tmp_path, "shop", ["127.0.0.1", "198.51.100.7"])
    assert moved.ca == first.ca
    assert moved.certificate != first.certificate
    assert moved.key != first.key
    assert pki.san_names(load(moved.certificate)) == {"127.0.0.1", "198.51.100.7"}


def test_environments_do_not_share_a_ca(tmp_path):
    shop = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    other = pki.registry_cert(tmp_path, "shop-db", ADDRESSES)
    assert other.ca != shop.ca
    assert load(other.ca).subject != load(shop.ca).subject
    with pytest.raises(ValueError, match="does not match"):
        load(other.certificate).verify_directly_issued_by(load(shop.ca))


def test_a_certificate_from_a_replaced_ca_is_reissued(tmp_path):
    first = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    folder = tlsfiles.tls_dir(tmp_path, "shop")
    (folder / "ca.key").unlink()  # lost: a new CA, and so a new certificate under it
    second = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    assert second.ca != first.ca
    load(second.certificate).verify_directly_issued_by(load(second.ca))


def test_a_preview_writes_nothing(tmp_path):
    made = pki.registry_cert(tmp_path, "shop", ADDRESSES, persist=False)
    assert load(made.certificate)
    assert not tlsfiles.tls_dir(tmp_path, "shop").exists()


def serve_once(made: pki.ServerCert, tmp_path: Path) -> tuple[int, threading.Thread]:
    """A TLS server on loopback presenting ``made`` to one client."""
    (tmp_path / "cert.pem").write_text(made.certificate)
    (tmp_path / "key.pem").write_text(made.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]

    def accept() -> None:
        with listener, context.wrap_socket(listener, server_side=True) as server:
            try:
                conn, _ = server.accept()
                conn.close()
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize("trusted", ["shop", "other"])
def test_a_client_trusting_the_ca_accepts_the_registry_and_no_other_ca_does(tmp_path, trusted):
    made = pki.registry_cert(tmp_path, "shop", ADDRESSES)
    other = pki.registry_cert(tmp_path, "other", ADDRESSES)
    port, thread = serve_once(made, tmp_path)
    client = ssl.create_default_context(cafile=(made if trusted == "shop" else other).ca_file)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            if trusted == "shop":
                with client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    assert tls.version() in {"TLSv1.2", "TLSv1.3"}
            else:
                with pytest.raises(ssl.SSLCertVerificationError):
                    client.wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        thread.join(timeout=10)
