"""A throw-away certificate authority and a broker certificate for TLS tests, made with the
``openssl`` command-line tool (nothing hand-rolled).

The broker certificate names 127.0.0.1 and localhost, so a client that checks host names
accepts it on loopback; it is valid for two days and signed by a CA that no system trusts.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT_S = 30.0


class CertificateError(RuntimeError):
    """openssl is missing or failed; the message says which step and why."""


@dataclass(frozen=True, slots=True)
class BrokerCertificates:
    ca_file: Path  # the CA certificate a client must trust
    cert_file: Path  # the broker's certificate
    key_file: Path  # the broker's private key


def make_certificates(directory: Path, *, name: str = "anchor test") -> BrokerCertificates:
    """A CA and a broker certificate for 127.0.0.1 / localhost in ``directory``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("openssl is not installed: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, cert = directory / "broker.key", directory / "broker.crt"
    request = directory / "broker.csr"
    extensions = directory / "broker.ext"
    extensions.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n",
        encoding="utf-8",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "2",
        "-subj", f"/CN={name} CA",
        "-addext", "basicConstraints = critical, CA:TRUE",
        "-addext", "keyUsage = critical, keyCertSign, cRLSign",
        "-addext", "subjectKeyIdentifier = hash",
    )  # fmt: skip
    _run(openssl, "req", *ec, "-keyout", key, "-out", request, "-subj", f"/CN={name} broker")
    _run(
        openssl, "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key,
        "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extensions,
    )  # fmt: skip
    return BrokerCertificates(ca_file=ca_cert, cert_file=cert, key_file=key)


def _run(*args: str | Path) -> None:
    command = [str(arg) for arg in args]
    try:
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CertificateError(f"openssl {command[1]} did not run: {exc}") from None
    if run.returncode != 0:
        raise CertificateError(f"openssl {command[1]} failed: {run.stderr.strip()}")
