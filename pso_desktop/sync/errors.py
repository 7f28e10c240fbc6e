"""What can go wrong talking to the PSO server, as plain sentences (``str()``) a nurse or IT can act on.

``Transient`` failures (no network, a stalled or cut connection, 429/5xx) are retried with back-off and, if
they persist, leave the reports queued for the next sync. The others need a person: sign in again, fix the
server address or its certificate settings.
"""

from __future__ import annotations

from pso_desktop.errors import ExpectedError


class SyncError(ExpectedError):
    """Base class of every expected sync failure."""


class Transient(SyncError):
    """Worth retrying later. ``retry_after`` is the server's Retry-After in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerUnreachable(Transient):
    """No answer: no network, refused, reset, timed out or cut off mid-answer."""


class ServerBusy(Transient):
    """429, 502, 503, 504 or another 5xx: the server asks to come back later."""


class CertificateNotTrusted(SyncError):
    """TLS verification failed. Never retried and never weakened: IT must supply the right CA."""


class TlsNotNegotiated(SyncError):
    """The server (or a proxy on the way) offers only TLS versions or ciphers we refuse. Never retried and
    never weakened: the server's TLS settings must change."""


class SignInRequired(SyncError):
    """No usable session: never signed in, signed out, or the server ended the session."""


class CredentialRevoked(SignInRequired):
    """The device credential the sealed outbox is sent with was revoked (or is unknown to the server)."""


class LoginRefused(SyncError):
    """The server refused the user name or password (or the account is disabled)."""


class ServerRefused(SyncError):
    """The server refused a request in a way retrying cannot fix (4xx other than 401/413/429); ``status`` is
    the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PayloadTooLarge(SyncError):
    """413: the request was over the server's limit; ``limit`` is the limit it named, if any."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class NotLinked(SyncError):
    """The profile has no PSO account yet."""

    def __init__(self) -> None:
        super().__init__(
            "This profile is not linked to a PSO account yet; sign in first with "
            "'pso-desktop login --server URL --user NAME --password-stdin'."
        )


class InvalidServerAddress(SyncError):
    """The server URL is not an https:// address."""
