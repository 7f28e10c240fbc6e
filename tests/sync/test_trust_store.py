"""The trust store is the operating system's plus the site CA file, and nothing else (issue 9, item 1): not
what OpenSSL's variables name, at context creation or at handshake time, and not certifi's bundle either.
And the "system" proxy is the OS's setting; the proxy variables count only where IT policy says so."""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import trustme

from pso_desktop.sync import transport
from pso_desktop.sync.errors import CertificateNotTrusted, SignInRequired
from pso_desktop.sync.transport import SYSTEM_CA_FILES, ApiClient, ServerSettings, system_proxy, tls_context
from pso_server.practice import RunningServer
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


def test_the_system_proxy_on_windows_and_macos_is_the_os_setting_never_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://attacker.example:8080")
    monkeypatch.setenv("NO_PROXY", "*")
    for platform, read, bypasses in (
        ("win32", "getproxies_registry", "proxy_bypass_registry"),
        ("darwin", "getproxies_macosx_sysconf", "proxy_bypass_macosx_sysconf"),
    ):
        monkeypatch.setattr(transport, "sys", SimpleNamespace(platform=platform))
        monkeypatch.setattr(urllib.request, read, lambda: {"https": "http://it-proxy:3128"}, raising=False)
        monkeypatch.setattr(urllib.request, bypasses, lambda host: host == "intranet.local", raising=False)
        for from_environment in (False, True):
            assert system_proxy("pso.example.org", from_environment=from_environment) == "http://it-proxy:3128"
        assert system_proxy("intranet.local", from_environment=True) is None


def test_the_proxy_variables_are_the_system_proxy_on_linux_only_by_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://site-proxy:3128")
    assert system_proxy("pso.example.org", from_environment=False) is None
    assert system_proxy("pso.example.org", from_environment=True) == "http://site-proxy:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy:3128")
    assert system_proxy("pso.example.org", from_environment=True) == "http://tls-proxy:3128"
    monkeypatch.setenv("NO_PROXY", "example.org")
    assert system_proxy("pso.example.org", from_environment=True) is None
