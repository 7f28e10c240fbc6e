"""Throwaway certificates for demos and tests (a private CA and a loopback server certificate, via trustme)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA a client must trust, and the server's certificate chain and private key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_demo_tls(folder: Path, hostnames: tuple[str, ...] = LOOPBACK_NAMES) -> TlsFiles:
    """Creates a new private CA and a server certificate for ``hostnames`` in ``folder``.

    The key file is owner-only. Nothing else ever trusts this CA: it exists for one demo or test run.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = trustme.CA(organization_name="PSO Server demo CA (not for production)")
    cert = ca.issue_cert(*hostnames)
    files = TlsFiles(folder / "demo-ca.pem", folder / "server-cert.pem", folder / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca_cert))
    with files.server_cert.open("wb") as out:
        for pem in cert.cert_chain_pems:
            out.write(pem.bytes())
    fd = os.open(files.server_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(cert.private_key_pem.bytes())
    return files
