"""TLS for the sandbox's https emulators: Azure clients refuse an authority that is not https,
so the Entra emulator serves TLS with a certificate from a CA made at start. The CA's private
key never leaves memory; its certificate is written for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nhi_invoke.sandbox.loopback import JsonHandler

CA_FILE_NAME = "ca.pem"
_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class ServerTls:
    """What a TLS loopback server presents, and the CA certificate file a client must trust."""

    context: ssl.SSLContext
    ca_file: str


def throwaway_tls(folder: str) -> ServerTls:
    """A fresh CA and a 127.0.0.1/localhost certificate it signs; only `ca.pem` is left in
    `folder` (the server key passes through it encrypted, and is removed at once)."""
    now = datetime.datetime.now(datetime.UTC)
    # P-256 rather than RSA: key generation costs microseconds, not tens of milliseconds.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nhi-invoke sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = os.path.join(folder, CA_FILE_NAME)
    _write(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl can load a key only from a file: it goes there encrypted under a password that
    # stays in memory, and is removed as soon as it is loaded.
    password = secrets.token_bytes(32)
    key_file = os.path.join(folder, f".server-{secrets.token_hex(8)}.key")
    chain_file = key_file[: -len(".key")] + ".pem"
    try:
        _write(
            key_file,
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            ),
            0o600,
        )
        _write(chain_file, server_cert.public_bytes(serialization.Encoding.PEM), 0o600)
        context.load_cert_chain(chain_file, key_file, password=password)
    finally:
        for path in (key_file, chain_file):
            if os.path.exists(path):
                os.unlink(path)
    return ServerTls(context, ca_file)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
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


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class TlsJsonHandler(JsonHandler):
    """A JsonHandler that speaks TLS. The handshake runs in the request's own thread, so a
    client that never completes it holds up nobody but itself."""

    tls_context: ClassVar[ssl.SSLContext]
    timeout = 30
    _handshake_failed = False

    def setup(self) -> None:
        raw: socket.socket = self.request
        raw.settimeout(self.timeout)
        try:
            self.request = self.tls_context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            # A client that does not trust the CA hangs up mid-handshake: its business, not
            # a server error worth a traceback.
            self._handshake_failed = True
            raw.close()
            return
        super().setup()

    def handle(self) -> None:
        if not self._handshake_failed:
            super().handle()

    def finish(self) -> None:
        if not self._handshake_failed:
            super().finish()
