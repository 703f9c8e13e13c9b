"""The stack's TLS for Kafka: a CA of its own and the broker's certificate, made once.

`ca.pem` is public: every client checks the broker against it (desktops get a copy).
`ca.key` signs the broker's certificate and nothing else; `broker.pem` holds the broker's
key and certificate chain in the PEM form Kafka reads (`ssl.keystore.type=PEM`). Both
private files are owner-only. The broker's names are those clients dial: 127.0.0.1,
localhost, and `kafka` (docker-compose's service name).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chatchannels.secret_files import write_secret

BROKER_DNS_NAMES = ("localhost", "kafka")
BROKER_IPS = ("127.0.0.1",)
VALID_DAYS = 3650


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    broker: Path

    @classmethod
    def in_dir(cls, folder: Path) -> TlsFiles:
        return cls(folder / "ca.pem", folder / "ca.key", folder / "broker.pem")


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chat Channels"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(signer, hashes.SHA256())


def ensure_tls(folder: Path) -> TlsFiles:
    """The CA and the broker's certificate in `folder`, made the first time."""
    files = TlsFiles.in_dir(folder)
    if files.ca_cert.exists() and files.broker.exists():
        return files
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Chat Channels Kafka CA")
    ca = _certificate(
        ca_name,
        ca_name,
        ca_key.public_key(),
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(cert_sign=True), True),
            (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
        ],
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in BROKER_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in BROKER_IPS]
    broker = _certificate(
        _name("kafka"),
        ca_name,
        broker_key.public_key(),
        ca_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (_key_usage(cert_sign=False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.SubjectAlternativeName(names), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )
    write_secret(files.ca_key, _pem_key(ca_key).strip())
    write_secret(files.broker, (_pem_key(broker_key) + _pem_cert(broker) + _pem_cert(ca)).strip())
    # Written last: its presence says the set is complete.
    files.ca_cert.write_text(_pem_cert(ca))
    os.chmod(files.ca_cert, 0o644)
    return files


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
