"""The trust store is the operating system's plus the site CA file, and nothing else (issue 9, item 1): not
what OpenSSL's variables name, at context creation or at handshake time, and not certifi's bundle either."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from pso_desktop.sync.errors import CertificateNotTrusted, SignInRequired
from pso_desktop.sync.transport import SYSTEM_CA_FILES, ApiClient, ServerSettings, tls_context
from pso_server.testing import RunningServer
from tests.support.recording_server import FakePsoServer, running, server_context

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="Linux trust store paths")


@pytest.fixture
def attacker(tmp_path: Path) -> Iterator[tuple[FakePsoServer, Path]]:
    ca = trustme.CA(organization_name="Attacker CA")
    pem = tmp_path / "attacker.pem"
    ca.cert_pem.write_to_path(str(pem))
    with running(FakePsoServer(server_context(ca))) as server:
        yield server, pem


def _subjects(context: ssl.SSLContext) -> set[str]:
    return {repr(cert["subject"]) for cert in context.get_ca_certs()}


def test_openssl_variables_at_creation_or_handshake_change_nothing(
    attacker: tuple[FakePsoServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, pem = attacker
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    monkeypatch.setenv("SSL_CERT_DIR", str(pem.parent))
    with ApiClient(ServerSettings(server.base_url)) as api, pytest.raises(CertificateNotTrusted):
        api.login("alice", "the password", "a device")
    assert server.recording.requests == [] and server.recording.handshakes == 0
    assert "Attacker CA" not in str(_subjects(tls_context(None)))


@pytest.mark.skipif(not any(os.path.isfile(f) for f in SYSTEM_CA_FILES), reason="no distribution CA bundle")
def test_the_distribution_bundle_is_loaded_without_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert len(tls_context(None).get_ca_certs()) > 10
    context = tls_context(None)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_requests_does_not_add_certifi_to_the_context(server: RunningServer) -> None:
    # requests hands urllib3 certifi's bundle, which urllib3 loads into the context at every connection.
    with ApiClient(ServerSettings(server.base_url, ca_file=str(server.ca_path))) as api:
        context = api._http.get_adapter(server.base_url)._context  # type: ignore[attr-defined]
        before = _subjects(context)
        with pytest.raises(SignInRequired):  # any answer will do: the connection is what counts
            api.status_feed("not a token", None)
        assert _subjects(context) == before
