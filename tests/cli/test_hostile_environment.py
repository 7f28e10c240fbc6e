"""Attacks through the process environment (issue 9, item 1), replayed with the real CLI in a subprocess.

An attacker who can set environment variables for the user's session (a login script, a shared launcher, a
malicious ``.profile``) points OpenSSL, requests or curl at their own CA, or the proxy variables at their own
proxy, and waits at the PSO server's address (DNS, ARP, a rogue Wi-Fi) with a certificate from that CA. The
password, the refresh token and report bodies must never reach them: the fake server must not even complete a
TLS handshake, and the command must fail with one sentence saying the certificate is not trusted.

Also: a server that only offers an old TLS version or ciphers we do not accept is said as such, at once,
without retries (it is not a dropped network).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.cli import SECRET, Result, assert_clean_failure, run_cli, status
from tests.support.recording_server import FakePsoServer, RecordingListener, running, server_context

PASSWORD = "nurse account password 7f3a"
REPORT_MARK = "hostile-env-narrative-marker"
EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "fall-incident.json"


@pytest.fixture(scope="module")
def hospital_ca() -> trustme.CA:
    return trustme.CA(organization_name="Hospital CA the profile was linked with")


@pytest.fixture(scope="module")
def attacker_ca() -> trustme.CA:
    return trustme.CA(organization_name="Attacker CA")


@pytest.fixture
def attacker_files(attacker_ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """The attacker's CA as a PEM file and as an OpenSSL hashed directory (what SSL_CERT_DIR expects)."""
    pem = tmp_path / "attacker-ca.pem"
    attacker_ca.cert_pem.write_to_path(str(pem))
    folder = tmp_path / "attacker-certs"
    folder.mkdir()
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem)], capture_output=True, text=True, check=True
    ).stdout.strip()
    (folder / f"{subject_hash}.0").write_bytes(pem.read_bytes())
    conf = tmp_path / "attacker-openssl.cnf"
    conf.write_text(OPENSSL_CONF.format(pem=pem, folder=folder))
    return {"pem": pem, "dir": folder, "conf": conf}


# An OpenSSL configuration that tries to add the attacker's CA and to lower the TLS version and ciphers.
OPENSSL_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
VerifyCAFile = {pem}
VerifyCAPath = {folder}
MinProtocol = TLSv1
CipherString = ALL:@SECLEVEL=0
"""


def hostile_environments(files: dict[str, Path]) -> dict[str, dict[str, str]]:
    pem, folder = str(files["pem"]), str(files["dir"])
    return {
        "SSL_CERT_FILE": {"SSL_CERT_FILE": pem},
        "SSL_CERT_DIR": {"SSL_CERT_DIR": folder},
        "REQUESTS_CA_BUNDLE": {"REQUESTS_CA_BUNDLE": pem},
        "CURL_CA_BUNDLE": {"CURL_CA_BUNDLE": pem},
        "OPENSSL_CONF": {"OPENSSL_CONF": str(files["conf"])},
        "all at once": {
            "OPENSSL_CONF": str(files["conf"]),
            "SSL_CERT_FILE": pem,
            "SSL_CERT_DIR": folder,
            "REQUESTS_CA_BUNDLE": pem,
            "CURL_CA_BUNDLE": pem,
        },
    }


@pytest.fixture
def profile(pso_home: Path) -> Path:
    assert run_cli(pso_home, "profile", "create", "alice", "--password-stdin", stdin=SECRET + "\n").code == 0
    return pso_home


@pytest.fixture
def fake_pso(hospital_ca: trustme.CA) -> Iterator[FakePsoServer]:
    with running(FakePsoServer(server_context(hospital_ca))) as server:
        yield server


def _login(home: Path, url: str, *extra: str, **env: str) -> Result:
    return run_cli(
        home,
        "login",
        "--server",
        url,
        "--user",
        "alice",
        *extra,
        "--password-stdin",
        stdin=f"{SECRET}\n{PASSWORD}\n",
        **env,
    )


def _queue_one(home: Path) -> None:
    report = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    report["narrative"] = REPORT_MARK
    result = run_cli(
        home, "report", "add", "-", "--submit", "--password-stdin", stdin=f"{SECRET}\n{json.dumps(report)}\n"
    )
    assert result.code == 0, result.err


def _reasons(result: Result) -> list[str]:
    """The lines of stderr other than the (expected) warning that no OS keyring is used in these tests."""
    return [
        line for line in result.err.splitlines() if line.strip() and not line.startswith("pso-desktop: warning:")
    ]


def _assert_refused_untrusted(result: Result, server: FakePsoServer) -> None:
    assert_clean_failure(result)
    assert len(_reasons(result)) == 1, result.err
    assert "not trusted" in result.err
    assert PASSWORD not in result.err + result.out
    received = server.recording
    assert received.requests == [], [r.path for r in received.requests]
    assert received.handshakes == 0, "the client completed a TLS handshake with the attacker's server"
    assert PASSWORD not in received.everything() and "fake-refresh" not in received.everything()


@pytest.mark.parametrize(
    "variable",
    ["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "OPENSSL_CONF", "all at once"],
)
def test_login_never_trusts_a_ca_named_by_the_environment(
    profile: Path, attacker_ca: trustme.CA, attacker_files: dict[str, Path], variable: str
) -> None:
    env = hostile_environments(attacker_files)[variable]
    with running(FakePsoServer(server_context(attacker_ca))) as attacker:
        _assert_refused_untrusted(_login(profile, attacker.base_url, **env), attacker)


def test_sync_never_sends_the_refresh_token_or_reports_to_a_ca_named_by_the_environment(
    profile: Path,
    fake_pso: FakePsoServer,
    hospital_ca: trustme.CA,
    attacker_ca: trustme.CA,
    attacker_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    hospital_pem = tmp_path / "hospital-ca.pem"
    hospital_ca.cert_pem.write_to_path(str(hospital_pem))
    keylog = tmp_path / "keys.log"
    # Linked legitimately (the hospital CA file); SSLKEYLOGFILE must not make us write the session keys out.
    linked = _login(profile, fake_pso.base_url, "--ca-file", str(hospital_pem), SSLKEYLOGFILE=str(keylog))
    assert linked.code == 0, linked.err
    assert not keylog.exists()
    _queue_one(profile)
    # The attacker now answers at the server's address with a certificate from their own CA.
    fake_pso.context = server_context(attacker_ca)
    for variable, env in hostile_environments(attacker_files).items():
        fake_pso.recording.clear()
        synced = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n", **env)
        _assert_refused_untrusted(synced, fake_pso)
        assert REPORT_MARK not in fake_pso.recording.everything(), variable
    assert status(profile)["queued"] == 1


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def test_proxy_variables_count_only_where_it_policy_says_so(
    profile: Path, fake_pso: FakePsoServer, hospital_ca: trustme.CA, tmp_path: Path
) -> None:
    hospital_pem = tmp_path / "hospital-ca.pem"
    hospital_ca.cert_pem.write_to_path(str(hospital_pem))
    with running(RecordingListener()) as proxy:
        env = {name: f"http://127.0.0.1:{proxy.port}" for name in PROXY_VARIABLES} | {
            "NO_PROXY": "",
            "no_proxy": "",
        }
        for extra in ((), ("--proxy", "system")):
            result = _login(profile, fake_pso.base_url, "--ca-file", str(hospital_pem), *extra, **env)
            assert result.code == 0, result.err
        _queue_one(profile)
        synced = run_cli(profile, "sync", "--password-stdin", stdin=SECRET + "\n", **env)
        assert synced.code == 0, synced.err
        assert proxy.recording.connections == 0 and not proxy.recording.raw
        assert fake_pso.recording.requests  # the reports went straight to the server

        # IT's policy may say that the variables are the system proxy (a Linux site that configures it so).
        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({"proxy_from_environment": True}))
        through = _login(
            profile,
            fake_pso.base_url,
            "--ca-file",
            str(hospital_pem),
            "--proxy",
            "system",
            PSO_DESKTOP_POLICY=str(policy),
            **env,
        )
        assert_clean_failure(through)  # this proxy answers 502 to everything
        assert f"CONNECT localhost:{fake_pso.port}".encode() in proxy.recording.raw
        assert PASSWORD.encode() not in proxy.recording.raw


def _old_tls_only(ca: trustme.CA) -> ssl.SSLContext:
    context = server_context(ca)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # deprecated, and that is the point: a server stuck on TLS 1.0/1.1
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def _weak_ciphers_only(ca: trustme.CA) -> ssl.SSLContext:
    context = server_context(ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-SHA:@SECLEVEL=0")
    return context


@pytest.mark.parametrize(
    ("make_context", "words"), [(_old_tls_only, "TLS version"), (_weak_ciphers_only, "cipher")]
)
def test_a_tls_version_or_cipher_mismatch_is_said_as_such_and_not_retried(
    profile: Path,
    attacker_files: dict[str, Path],
    fake_pso: FakePsoServer,
    hospital_ca: trustme.CA,
    tmp_path: Path,
    make_context,
    words: str,
) -> None:
    hospital_pem = tmp_path / "hospital-ca.pem"
    hospital_ca.cert_pem.write_to_path(str(hospital_pem))
    assert _login(profile, fake_pso.base_url, "--ca-file", str(hospital_pem)).code == 0
    _queue_one(profile)
    fake_pso.context = make_context(hospital_ca)
    fake_pso.recording.clear()
    started = time.monotonic()
    # An OPENSSL_CONF that lowers the minimum version and the cipher list changes nothing either.
    synced = run_cli(
        profile,
        "sync",
        "--progress",
        "json",
        "--password-stdin",
        stdin=SECRET + "\n",
        OPENSSL_CONF=str(attacker_files["conf"]),
    )
    elapsed = time.monotonic() - started
    assert_clean_failure(synced)
    assert len(_reasons(synced)) == 1, synced.err
    assert words in synced.err and "cannot be reached" not in synced.err, synced.err
    assert "waiting" not in synced.out  # no back-off: retrying cannot fix it
    assert fake_pso.recording.connections == 1 and fake_pso.recording.requests == []
    assert elapsed < 20
    assert status(profile)["queued"] == 1
    login = _login(profile, fake_pso.base_url, "--ca-file", str(hospital_pem))
    assert_clean_failure(login)
    assert words in login.err


def test_logout_reaches_the_server_through_it_policy_like_sync(
    profile: Path, fake_pso: FakePsoServer, hospital_ca: trustme.CA, tmp_path: Path
) -> None:
    # IT replaces the inspecting proxy's CA after people signed in: sync and logout both follow the policy.
    first, second = tmp_path / "first-ca.pem", tmp_path / "second-ca.pem"
    hospital_ca.cert_pem.write_to_path(str(first))
    replacement = trustme.CA(organization_name="Hospital CA, renewed")
    replacement.cert_pem.write_to_path(str(second))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"pso_server": {"url": fake_pso.base_url, "ca_file": str(first)}}))
    env = {"PSO_DESKTOP_POLICY": str(policy)}
    signed_in = run_cli(
        profile, "login", "--user", "alice", "--password-stdin", stdin=f"{SECRET}\n{PASSWORD}\n", **env
    )
    assert signed_in.code == 0, signed_in.err
    policy.write_text(json.dumps({"pso_server": {"url": fake_pso.base_url, "ca_file": str(second)}}))
    fake_pso.context = server_context(replacement)
    fake_pso.recording.clear()
    assert run_cli(profile, "logout", "--password-stdin", stdin=SECRET + "\n", **env).code == 0
    assert [r.path for r in fake_pso.recording.requests] == ["/api/v1/auth/logout"]
    assert json.loads(fake_pso.recording.requests[0].body) == {"refresh_token": "fake-refresh"}
