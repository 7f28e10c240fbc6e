"""The HTTPS client of the sync protocol (DESIGN.md, "Sync protocol"): one method per endpoint.

Security: HTTPS only (TLS 1.2 or later), certificate verification always on, the OS trust store plus an
optional site CA file (a hospital's inspecting proxy), and nothing the process environment says: not
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or proxy variables (``trust_env=False``), and not OpenSSL's
``SSL_CERT_FILE``/``SSL_CERT_DIR`` either (on Linux the distribution's CA bundle is loaded from fixed paths
instead of OpenSSL's default paths, which those variables override; on Windows and macOS ``truststore`` asks
the OS). A proxy is used only when configured (an URL, or ``system`` for the operating system's proxy
settings; on Linux the proxy variables count as those only where IT policy says so). Every request has connect
and read timeouts; the read timeout is also the stall watchdog (no byte for that long ends the request).

Failures become the exceptions of :mod:`pso_desktop.sync.errors`; no message carries a token or report content.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import re
import ssl
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import truststore
from requests.adapters import HTTPAdapter

from pso_desktop.sync.errors import (
    CertificateNotTrusted,
    CredentialRevoked,
    InvalidServerAddress,
    LoginRefused,
    PayloadTooLarge,
    ServerBusy,
    ServerRefused,
    ServerUnreachable,
    SignInRequired,
    TlsNotNegotiated,
)

API = "/api/v1"
PROBE_TIMEOUT = 5.0  # connect and read, for the probe: a PSO that takes longer is not worth a full sync yet
SYSTEM_PROXY = "system"
_BUSY = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ServerSettings:
    """Where the PSO server is and how to reach it."""

    url: str
    ca_file: str | None = None  # extra CA to trust (PEM), besides the OS trust store
    proxy: str | None = None  # None: direct; "system": the OS settings; else an http(s):// proxy URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    # Only IT policy sets this: on Linux the proxy variables (HTTPS_PROXY...) then are the "system" proxy.
    proxy_from_environment: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            raise InvalidServerAddress(
                f"The server address must start with https:// and name a host (got {_redacted(self.url)!r})."
            )
        if parts.username is not None or parts.password is not None:
            # The PSO takes tokens; a password in the address would end up in every message and log line.
            raise InvalidServerAddress(
                "The server address must not hold a user name or password; give only https://host[:port]."
            )
        if self.proxy is not None and self.proxy != SYSTEM_PROXY:
            proxy = urlsplit(self.proxy)
            if proxy.scheme not in ("http", "https") or not proxy.hostname:
                raise InvalidServerAddress(
                    "The proxy must be an http:// or https:// address, or 'system' "
                    f"(got {_redacted(self.proxy)!r})."
                )

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)  # never in a repr: reprs reach logs, test output, crash reports
    refresh_token: str = field(repr=False)
    expires_in: int
    user: dict[str, Any]
    device_token: str | None = field(default=None, repr=False)  # sign-in only: what makes this a known device
    sealing_key: dict[str, Any] | None = None  # sign-in only: the PSO's public sealing key (docs/sealed-outbox.md)


class _ContextAdapter(HTTPAdapter):
    """Makes urllib3 use our SSLContext for direct and proxied connections alike."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # requests would hand urllib3 certifi's bundle, which urllib3 then adds to our context at every
        # connection: the trust store is the OS's plus the site CA file, nothing else.
        super().cert_verify(conn, url, True, cert)
        conn.ca_certs = None
        conn.ca_cert_dir = None


# Where Linux and BSD distributions keep the system CA bundle (what OpenSSL's default paths point to, unless
# SSL_CERT_FILE says otherwise). The first one that exists is loaded, after OpenSSL's compiled-in default.
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL, CentOS
    "/etc/pki/tls/certs/ca-bundle.crt",  # older Fedora, RHEL, CentOS
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
    "/etc/ssl/cert.pem",  # Alpine, Arch, the BSDs
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
)
_HASHED_CERT = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]+$")


def system_context() -> ssl.SSLContext:
    """A client context that trusts the operating system's CAs and nothing the environment names.

    Windows and macOS: ``truststore`` verifies through the OS (its APIs ignore OpenSSL's variables). Elsewhere
    the distribution's bundle is loaded from fixed paths: OpenSSL's compiled-in default file and directory
    (``openssl_cafile``/``openssl_capath`` are the build's constants, unlike ``cafile``/``capath``, which
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` replace), else the first known distribution bundle. Nothing global is
    changed (no variable is unset for a moment), so contexts may be built on any thread at any time.
    """
    if sys.platform in ("win32", "darwin"):
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    built_in = ssl.get_default_verify_paths()
    for cafile in (built_in.openssl_cafile, *SYSTEM_CA_FILES):
        if cafile and os.path.isfile(cafile):
            try:
                context.load_verify_locations(cafile=cafile)
            except (OSError, ssl.SSLError):
                continue  # unreadable or damaged: try the next place
            break
    capath = built_in.openssl_capath
    if capath and _holds_hashed_certs(capath):
        context.load_verify_locations(capath=capath)
    return context


def _holds_hashed_certs(folder: str) -> bool:
    try:
        return any(_HASHED_CERT.match(name) for name in os.listdir(folder))
    except OSError:
        return False


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The OS trust store, plus ``ca_file`` when given. Verification and host names are always checked, and
    nothing older than TLS 1.2 is offered (whatever an ``OPENSSL_CONF`` file says)."""
    context = system_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except FileNotFoundError:
            raise CertificateNotTrusted(
                f"The CA file {ca_file} does not exist (moved or deleted?); ask IT for it, then sign in again "
                "with --ca-file."
            ) from None
        except (OSError, ssl.SSLError):
            raise CertificateNotTrusted(
                f"The CA file {ca_file} cannot be read as PEM certificates; ask IT for the right file."
            ) from None
    return context


class ApiClient:
    """One keep-alive HTTPS session to the PSO server. The sync engine calls it from two threads at once (a
    token renewal while a batch is on the wire): urllib3's pool gives each request its own connection, and
    nothing else in the session changes after construction. Other callers: one client per worker."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._http = requests.Session()
        self._http.trust_env = False  # REQUESTS_CA_BUNDLE, HTTPS_PROXY etc. must not change where we connect
        adapter = _ContextAdapter(tls_context(settings.ca_file))
        self._http.mount("https://", adapter)
        self._http.proxies = _proxies(settings)
        self._host = urlsplit(settings.url).netloc  # no user info: ServerSettings refuses it

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints ---------------------------------------------------------------------------------------

    def login(self, username: str, password: str, device_name: str, device_token: str | None = None) -> Tokens:
        """Signs in. ``device_token`` (from this device's last sign-in to this server) shows the server a known
        device, which failed sign-ins of other accounts or devices behind the same address do not hold back."""
        body = {"username": username, "password": password, "device_name": device_name}
        if device_token:
            body["device_token"] = device_token
        answer = self._call(
            "POST",
            "/auth/login",
            body=body,
            on_401=LoginRefused("The PSO server did not accept that user name and password; check both."),
        )
        return _tokens(answer)

    def refresh(self, refresh_token: str) -> Tokens:
        answer = self._call("POST", "/auth/refresh", body={"refresh_token": refresh_token})
        try:
            return _tokens(answer)
        except ServerRefused:
            # Worth retrying: if the server rotated the token, the same one presented again gets the same
            # successor (until that is used), so nothing is lost by trying again.
            raise ServerUnreachable(
                "The PSO server's answer to a session renewal was not understood; it will be tried again."
            ) from None

    def logout(self, refresh_token: str | None, access_token: str | None) -> None:
        self._call("POST", "/auth/logout", body={"refresh_token": refresh_token}, token=access_token)

    def post_batch(self, access_token: str, body: bytes) -> list[dict[str, Any]]:
        """Sends pre-serialised ``{"reports": [...], "owner_keys": {...}}``; returns one result per report, in order."""
        answer = self._call("POST", "/reports/batch", data=body, token=access_token)
        results = answer.get("results")
        if not isinstance(results, list):
            raise ServerUnreachable("The PSO server's answer was incomplete; the reports will be sent again.")
        return results

    def device_credential(self, access_token: str, device_name: str) -> dict[str, Any]:
        """A device credential for the signed-in account: it can only upload sealed envelopes."""
        answer = self._call(
            "POST", "/auth/device-credential", body={"device_name": device_name}, token=access_token
        )
        if not all(isinstance(answer.get(key), str) for key in ("credential_id", "token")):
            raise ServerRefused("The PSO server's device credential answer was not understood.")
        return answer

    def post_sealed(self, device_token: str, body: bytes) -> list[dict[str, Any]]:
        """Sends pre-serialised ``{"envelopes": [...]}`` with the device credential; one result per envelope."""
        answer = self._call("POST", "/sealed/batch", data=body, token=device_token, scheme="Device")
        results = answer.get("results")
        if not isinstance(results, list):
            raise ServerUnreachable("The PSO server's answer was incomplete; the envelopes will be sent again.")
        return results

    def status_feed(self, access_token: str, since: str | None) -> dict[str, Any]:
        params = {"since": since} if since else None
        return self._call("GET", "/reports/status", params=params, token=access_token)

    def status_lookup(
        self, access_token: str, report_ids: list[str], owner_keys: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Current statuses of reports named by id (anonymous reports, which the feed cannot attribute), each
        with its owner key: the server shows an anonymous report's status only to the holder of its key."""
        body: dict[str, Any] = {"ids": report_ids}
        if owner_keys:
            body["owner_keys"] = owner_keys
        answer = self._call("POST", "/reports/status/lookup", body=body, token=access_token)
        statuses = answer.get("statuses")
        return [s for s in statuses if isinstance(s, dict)] if isinstance(statuses, list) else []

    def reference(self, access_token: str) -> dict[str, Any]:
        answer = self._call("GET", "/reference", token=access_token)
        if not isinstance(answer.get("units"), list) or not isinstance(answer.get("form_versions"), list):
            # A middlebox's 200 must not replace the cached reference data the forms rely on offline.
            raise ServerUnreachable("The PSO server's reference data was not understood; it will be tried again.")
        return answer

    def catalogue(self, access_token: str, version: str) -> dict[str, Any]:
        """A catalogue the PSO published (``version`` comes from /reference and is a plain version name)."""
        return self._call("GET", f"/reference/catalogues/{version}", token=access_token)

    def facility_reports(self, access_token: str, since: str | None) -> dict[str, Any]:
        """A page of the facility's reports (risk managers; a reporter is answered 403)."""
        params = {"since": since} if since else None
        return self._call("GET", "/facility/reports", params=params, token=access_token)

    def review_feed(self, access_token: str, since: str | None) -> dict[str, Any]:
        """A page of the facility's review records (risk managers)."""
        params = {"since": since} if since else None
        return self._call("GET", "/facility/reviews", params=params, token=access_token)

    def send_reviews(self, access_token: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sends review records; one result per record, in order."""
        answer = self._call("POST", "/facility/reviews", body={"records": records}, token=access_token)
        results = answer.get("results")
        if not isinstance(results, list):
            raise ServerUnreachable("The PSO server's answer was incomplete; the review will be sent again.")
        return [r for r in results if isinstance(r, dict)]

    def probe(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Whether the PSO server answers, cheaply: ``GET /healthz`` (no token, no body) with short timeouts.
        Returns when it answers as a PSO server does; raises ServerUnreachable (no answer, or an answer that is
        not the PSO's: a captive portal or a proxy's error page), ServerBusy with its Retry-After, or the
        errors that need a person (certificate not trusted, TLS not negotiated)."""
        settings = self.settings
        timeouts = (min(settings.connect_timeout, timeout), min(settings.read_timeout, timeout))
        try:
            answer = self._call("GET", "/healthz", root=True, timeouts=timeouts)
        except ServerRefused:
            raise ServerUnreachable(
                f"{self._host} answers, but not as the PSO server does (a proxy or a sign-in page of the "
                "network?); reports stay queued."
            ) from None
        if answer.get("status") != "ok":
            raise ServerUnreachable(f"{self._host} answers, but not as the PSO server does; reports stay queued.")

    # --- one request -------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
        scheme: str = "Bearer",
        on_401: Exception | None = None,
        root: bool = False,
        timeouts: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"{scheme} {token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method,
                f"{self.settings.base_url}{'' if root else API}{path}",
                json=body,
                data=data,
                params=params,
                headers=headers,
                timeout=timeouts or (self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
            )
            payload = response.content  # read whole inside the try: a cut or stalled body is a network failure
        except requests.exceptions.SSLError as exc:
            failure = _ssl_failure(exc)
            if isinstance(failure, ssl.SSLCertVerificationError):
                raise CertificateNotTrusted(
                    f"The certificate of {self._host} is not trusted, so nothing was sent. If the hospital "
                    "network inspects TLS, ask IT for its CA file and sign in again with --ca-file."
                ) from None
            mismatch = _mismatch(failure)
            if mismatch is not None:
                raise TlsNotNegotiated(mismatch.format(host=self._host)) from None
            # A connection closed or reset during the handshake (firewall, failing proxy): the network.
            raise ServerUnreachable(
                f"{self._host} cannot be reached (the secure connection was cut off); reports stay queued."
            ) from None
        except requests.exceptions.ProxyError:
            raise ServerUnreachable(
                "The proxy refused or dropped the connection; check the proxy setting. Reports stay queued."
            ) from None
        except requests.exceptions.Timeout:
            raise ServerUnreachable(
                f"{self._host} did not answer in time; reports stay queued and are sent when it does."
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
            raise ServerUnreachable(
                f"{self._host} cannot be reached (no network, or the connection dropped); reports stay queued."
            ) from None
        return self._interpret(response, payload, on_401)

    def _interpret(self, response: requests.Response, payload: bytes, on_401: Exception | None) -> dict[str, Any]:
        code = response.status_code
        problem = _problem(payload)
        if 200 <= code < 300:
            try:
                value = json.loads(payload)
            except ValueError:
                raise ServerUnreachable(
                    "The PSO server's answer arrived damaged; the request will be tried again."
                ) from None
            if not isinstance(value, dict):
                raise ServerUnreachable("The PSO server's answer was not understood; it will be tried again.")
            return value
        if code == 401:
            if problem.get("error") == "credential_revoked":
                raise CredentialRevoked(
                    "The PSO server revoked this workstation's device credential; the next sign-in to the "
                    "profile gets a new one. Sealed reports stay in the spool."
                )
            if on_401 is not None:
                raise on_401
            raise SignInRequired(
                "The PSO session has ended; sign in again with 'pso-desktop login'. Reports stay queued."
            )
        if code == 413:
            limit = problem.get("limit")
            raise PayloadTooLarge(
                str(problem.get("message") or "The request was over the server's size limit."),
                limit=limit if isinstance(limit, int) else None,
            )
        if code == 429 and problem.get("error") == "too_many_attempts":
            raise LoginRefused(
                str(problem.get("message") or "Too many failed sign-ins; wait a few minutes and try again.")
            )
        if code in _BUSY or code >= 500:
            raise ServerBusy(
                f"The PSO server is busy or unavailable (HTTP {code}); reports stay queued.",
                retry_after=_retry_after(response),
            )
        message = problem.get("message")
        raise ServerRefused(
            f"The PSO server refused the request (HTTP {code})"
            + (f": {message}" if isinstance(message, str) else "."),
            status=code,
        )


def _tokens(answer: dict[str, Any]) -> Tokens:
    try:
        return Tokens(
            str(answer["access_token"]),
            str(answer["refresh_token"]),
            int(answer["expires_in"]),
            dict(answer["user"]),
            answer["device_token"] if isinstance(answer.get("device_token"), str) else None,
            answer["sealing_key"] if isinstance(answer.get("sealing_key"), dict) else None,
        )
    except (KeyError, TypeError, ValueError):
        raise ServerRefused("The PSO server's sign-in answer was not understood; is this a PSO server?") from None


def _ssl_failure(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` error under a requests failure (requests and urllib3 wrap it a few levels down, in ``args``,
    ``reason`` or the cause): a certificate check, a failed negotiation, or a connection cut mid-handshake."""
    pending: list[object] = [exc]
    found: ssl.SSLError | None = None
    for _ in range(20):  # the chain is short; the bound only guards against a cycle
        if not pending:
            break
        current = pending.pop()
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        if isinstance(current, ssl.SSLError) and found is None:
            found = current
        if isinstance(current, BaseException):
            pending.extend(
                [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
            )
    return found


_OLD_VERSION = (
    "{host} offers only a TLS version older than 1.2, which this app does not accept, so nothing was sent; "
    "ask IT or the PSO to enable TLS 1.2 or later."
)
_NO_CIPHER = (
    "{host} and this app share no acceptable cipher or other TLS setting (the other side offers only weak or "
    "outdated ones), so nothing was sent; ask IT or the PSO to update its TLS settings."
)
# OpenSSL's reasons for a handshake that cannot succeed however often it is tried (a connection cut or reset
# during the handshake has none of these: that is the network, and is retried).
_MISMATCHES = {
    "UNSUPPORTED_PROTOCOL": _OLD_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": _OLD_VERSION,
    "NO_PROTOCOLS_AVAILABLE": _OLD_VERSION,
    "WRONG_SSL_VERSION": _OLD_VERSION,
    "UNSUPPORTED_SSL_VERSION": _OLD_VERSION,
    "VERSION_TOO_LOW": _OLD_VERSION,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": _NO_CIPHER,
    "NO_SHARED_CIPHER": _NO_CIPHER,
    "NO_CIPHERS_AVAILABLE": _NO_CIPHER,
    "NO_SUITABLE_SIGNATURE_ALGORITHM": _NO_CIPHER,
    "NO_SHARED_SIGNATURE_ALGORITHMS": _NO_CIPHER,
    "NO_SUITABLE_KEY_SHARE": _NO_CIPHER,
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": _NO_CIPHER,
    "DH_KEY_TOO_SMALL": _NO_CIPHER,
    "UNSAFE_LEGACY_RENEGOTIATION_DISABLED": _NO_CIPHER,
}


def _mismatch(failure: ssl.SSLError | None) -> str | None:
    """The message (with ``{host}``) when ``failure`` is a TLS version or cipher mismatch, else None."""
    reason = getattr(failure, "reason", None)
    return _MISMATCHES.get(reason) if isinstance(reason, str) else None


def _redacted(url: str) -> str:
    """``url`` (shortened) without any user name or password, for messages."""
    parts = urlsplit(url[:200])
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    return parts.geturl()[:100]


def _problem(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(response: requests.Response) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` as seconds or as an HTTP date (RFC 9110 10.2.3).
    None when absent or unreadable (back-off applies instead); the engine caps what it honours."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, response.headers.get("Date"))
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until(http_date: str, answer_date: str | None) -> float | None:
    when = _http_date(http_date)
    if when is None:
        return None
    # Against the answer's own Date when it has one: the wait the server meant, even when this workstation's
    # clock is minutes or hours off.
    now = _http_date(answer_date) if answer_date else None
    return (when - (now or datetime.now(UTC))).total_seconds()


def _http_date(text: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # "-0000": UTC by convention


def _proxies(settings: ServerSettings) -> dict[str, str]:
    if settings.proxy is None:
        return {}
    if settings.proxy == SYSTEM_PROXY:
        proxy = system_proxy(
            urlsplit(settings.url).hostname or "", from_environment=settings.proxy_from_environment
        )
        return {"https": proxy} if proxy else {}
    return {"https": settings.proxy}


# The operating system's own proxy settings and bypass list, read without the variables (which
# urllib.request.getproxies and proxy_bypass would let override them).
_OS_PROXY_READERS = {
    "win32": ("getproxies_registry", "proxy_bypass_registry"),
    "darwin": ("getproxies_macosx_sysconf", "proxy_bypass_macosx_sysconf"),
}


def system_proxy(host: str, *, from_environment: bool) -> str | None:
    """The operating system's proxy for ``https://host``, with its bypass list honoured; None: direct.

    Windows: the registry (Internet Options); macOS: System Configuration; never the variables, which
    ``urllib.request.getproxies`` would let override both. Linux and the rest have no proxy setting that the
    environment cannot change (even the desktop's settings move with ``XDG_CONFIG_HOME``), so there the proxy
    variables (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) count only when IT policy says so
    (``"proxy_from_environment": true``); otherwise "system" means a direct connection.
    """
    if sys.platform in _OS_PROXY_READERS:
        # By name: typeshed declares neither pair, and each exists only on its platform.
        read, bypasses = _OS_PROXY_READERS[sys.platform]
        proxies: dict[str, str] = getattr(urllib.request, read)()
        bypass = bool(getattr(urllib.request, bypasses)(host))
    elif from_environment:
        proxies = urllib.request.getproxies_environment()
        bypass = bool(urllib.request.proxy_bypass(host))  # on these platforms: NO_PROXY only
    else:
        return None
    proxy = proxies.get("https") or proxies.get("all")
    return None if bypass or not proxy else proxy
