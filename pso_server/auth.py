"""Accounts, sign-in and tokens.

Design (see docs/server.md "Authentication"):

- Passwords are hashed with argon2id (by default RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes).
- Access and refresh tokens are opaque 256-bit random strings; only their SHA-256 is stored. Opaque rather
  than signed tokens because every request already reads the database (one indexed lookup), logout and
  account removal take effect at once, and there is no signing key to guard, rotate or share between workers.
- Refresh tokens rotate on every use. The previous token may be presented again, always getting the same
  successor, until that successor is first used: a client killed after the server rotated but before it stored
  the answer keeps its session, however long it stays off. The successor is kept encrypted under a key derived
  from the token it replaces (whose plain SHA-256 is all the database holds), so the database alone never
  yields a usable token and there is no server key to guard or share between workers. Reuse of a rotated
  token once its successor was used is treated as theft: the whole session is revoked.
- Failed sign-ins are counted in the database (so all workers agree): per account and per client address for
  an unknown device, per device for a known one (it presents the device token it got at an earlier successful
  sign-in, stored here as SHA-256); past the limit the server answers 429 with Retry-After without checking the
  password at all. A flood of failures from one address therefore never refuses an account on its own devices.
- A disabled account signs in like an unknown one (same answer, same cost, counted as a failure), and the token
  lookups themselves refuse its tokens; a password change, a disable or ``revoke-sessions`` ends every session.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from dataclasses import dataclass, replace
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pso_server import store
from pso_server.config import KdfParams, ServerConfig
from pso_server.errors import InvalidInput, ServerError
from pso_server.store import Database, User, serialise

ACCESS_PREFIX = "psoa_"
REFRESH_PREFIX = "psor_"
DEVICE_PREFIX = "psod_"
DEVICE_CREDENTIAL_PREFIX = "psodc_"
MIN_PASSWORD_LENGTH = 10


@cache
def _hasher(kdf: KdfParams) -> PasswordHasher:
    return PasswordHasher(time_cost=kdf.time_cost, memory_cost=kdf.memory_kib, parallelism=kdf.parallelism)


@cache
def _dummy_hash(kdf: KdfParams) -> str:
    # Checked against when the account does not exist, so a wrong name costs the same time as a wrong password.
    return _hasher(kdf).hash(secrets.token_urlsafe(16))


class AuthFailed(ServerError):
    """Credentials or token not accepted (HTTP 401)."""


class CredentialRevoked(AuthFailed):
    """A device credential that was revoked, or whose account was disabled (HTTP 401 credential_revoked)."""


class TooManyAttempts(ServerError):
    """Sign-in temporarily refused after repeated failures (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def hash_password(password: str, kdf: KdfParams) -> str:
    """An argon2id hash of ``password``. Raises InvalidInput for a password too short to be safe."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters; choose a longer one."
        )
    return _hasher(kdf).hash(password)


def _verify(kdf: KdfParams, password_hash: str, password: str) -> bool:
    try:
        return _hasher(kdf).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    """What the database stores instead of a token (tokens are random, so a plain hash is enough). Any text
    hashes, even a lone surrogate a client sent (it then matches nothing, instead of failing the request)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _storable(text: str) -> bool:
    """Whether ``text`` can be a stored name: PostgreSQL refuses NUL and text that is not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _shown_name(device_name: str) -> str:
    """A device name as stored for IT's lists: storable text (see :func:`_storable`), at most 200 characters."""
    return device_name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "").strip()[:200]


def _new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def _successor_key(token: str) -> bytes:
    return hashlib.sha256(b"pso-server refresh successor\x00" + token.encode()).digest()


def _wrap_successor(old_token: str, successor: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_successor_key(old_token)).encrypt(nonce, successor.encode(), None)


def _unwrap_successor(old_token: str, blob: bytes) -> str:
    return AESGCM(_successor_key(old_token)).decrypt(blob[:12], blob[12:], None).decode()


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    device_token: str | None = None  # issued at sign-in only (see Authenticator.login)


@dataclass(frozen=True)
class Principal:
    """The signed-in account behind a request."""

    user: User
    session_id: str


@dataclass(frozen=True)
class IssuedCredential:
    """A new device credential: its id (listed by ``pso-server device-credentials``) and its token, which the
    server keeps only as SHA-256 and shows this once."""

    credential_id: str
    token: str
    account: str


_WRONG_CREDENTIALS = "The user name or password is wrong; check them and sign in again."
_SESSION_ENDED = "The session has ended; sign in again."


class Authenticator:
    """Sign-in, token rotation, sign-out and request authentication. Thread-safe (state is in the database)."""

    def __init__(self, db: Database, config: ServerConfig) -> None:
        self._db = db
        self._config = config

    def warm_up(self) -> None:
        """Computes the dummy hash now, so the first sign-in for an unknown name is not slower than later ones."""
        _dummy_hash(self._config.kdf)

    def add_user(self, username: str, password: str, role: str, facility: str) -> User:
        """Creates an account. Raises InvalidInput or UserExists."""
        username = username.strip()
        if not username or len(username) > 150 or any(c.isspace() for c in username):
            raise InvalidInput("A user name needs 1-150 characters and no spaces.")
        if role not in store.ROLES:
            raise InvalidInput(f"The role must be one of: {', '.join(store.ROLES)}.")
        if not facility.strip():
            raise InvalidInput("The facility name cannot be empty.")
        password_hash = hash_password(password, self._config.kdf)
        with self._db.transaction() as tx:
            return store.add_user(tx, username, password_hash, role, facility.strip(), self._config.clock())

    def set_password(self, username: str, password: str) -> int:
        """Replaces the account's password and signs it out everywhere; returns how many live sessions ended.
        Raises InvalidInput or UnknownUser."""
        password_hash = hash_password(password, self._config.kdf)
        with self._db.transaction() as tx:
            user_id = store.lock_account(tx, username)
            store.set_password_hash(tx, user_id, password_hash)
            store.forget_devices(tx, user_id)  # a device that knew the old password is not vouched for any more
            return store.revoke_user_sessions(tx, user_id, self._config.clock())

    def set_disabled(self, username: str, disabled: bool) -> int:
        """Disables (signing it out everywhere) or re-enables an account; returns how many live sessions
        ended. Its reports stay. Raises UnknownUser."""
        with self._db.transaction() as tx:
            user_id = store.lock_account(tx, username)
            store.set_user_disabled(tx, user_id, disabled)
            if disabled:
                store.forget_devices(tx, user_id)
            return store.revoke_user_sessions(tx, user_id, self._config.clock()) if disabled else 0

    def set_role(self, username: str, role: str) -> None:
        """Gives the account another role, from its next request on (roles are read per request: a former risk
        manager's client is refused the facility's reports at its next sync and purges its copies). Raises
        UnknownUser."""
        with self._db.transaction() as tx:
            store.set_user_role(tx, store.lock_account(tx, username), role)

    def revoke_sessions(self, username: str) -> int:
        """Signs the account out on every device; returns how many live sessions ended. Raises UnknownUser."""
        with self._db.transaction() as tx:
            user_id = store.lock_account(tx, username)
            store.forget_devices(tx, user_id)  # a lost laptop's profile is not a known device any more
            return store.revoke_user_sessions(tx, user_id, self._config.clock())

    def login(
        self, username: str, password: str, device_name: str, address: str, device_token: str | None = None
    ) -> TokenPair:
        """Checks the password and opens a session. Raises TooManyAttempts or AuthFailed.

        Failed sign-ins are limited per account and per client address; a **known device** (one that presents
        the device token this account was given at an earlier successful sign-in on it) is counted in a bucket
        of its own instead, at the per-account limit. So guesses with made-up names from one address (a
        hospital's NAT) slow down every unknown device behind it, and guesses at one account lock that account
        on unknown devices, but neither refuses the right password from the account's own devices. The answer
        carries the device token to present next time (the same one while it stays known).
        """
        now = self._config.clock()
        limits = self._config.limits
        window = limits.login_failure_window_seconds
        presented = token_hash(device_token) if device_token else None
        with self._db.transaction() as tx:
            serialise(tx, "login_failures")  # count, then record: concurrent attempts take turns
            name = username.strip()
            # A name no account can have (a lone surrogate, NUL) is an unknown account, not a database error.
            found = store.find_user(tx, name) if _storable(name) else None
            known = (
                presented is not None
                and found is not None
                and store.known_device_user(tx, presented, now - self._config.known_device_ttl_seconds)
                == found[0].id
            )
            checks: tuple[tuple[str, int], ...]
            if known:
                assert presented is not None
                checks = ((f"device:{presented}", limits.login_failures_per_account),)
            else:
                checks = (
                    # The name as typed is kept hashed: a mistyped password in the name field must not be stored.
                    (f"user:{token_hash(name.lower())}", limits.login_failures_per_account),
                    (f"addr:{address}", limits.login_failures_per_address),
                )
            for key, allowed in checks:
                count, oldest = store.count_login_failures(tx, key, now - window)
                if count >= allowed and oldest is not None:
                    wait = math.ceil(oldest + window - now)
                    raise TooManyAttempts(
                        "Too many failed sign-ins; wait a few minutes and try again.", max(wait, 1)
                    )
            keys = [key for key, _ in checks]
            # The attempt counts as a failure until the password proves right: otherwise many guesses sent at
            # once would all pass the check above while the KDF runs, and the limit would not hold.
            attempt = store.record_login_failure(tx, keys, now)
        # The KDF runs outside any transaction: it takes a good part of a second and needs no lock.
        kdf = self._config.kdf
        if found is None:
            _verify(kdf, _dummy_hash(kdf), password)
            ok = False
        else:
            ok = _verify(kdf, found[1], password)
        with self._db.transaction() as tx:
            # Read again, row locked: a set-password or disable-user that committed while the KDF ran wins, and
            # one that comes later waits for this session and then revokes it (see store.lock_account).
            current = store.find_user(tx, found[0].username, lock=True) if ok and found is not None else None
            if current is None or found is None or current[1] != found[1]:
                store.purge_login_failures(tx, now - window)
            else:
                user, password_hash = current
                store.forget_login_failures(tx, attempt)
                store.clear_login_failures(tx, keys[0])
                if _hasher(kdf).check_needs_rehash(password_hash):
                    store.set_password_hash(tx, user.id, _hasher(kdf).hash(password))
                store.purge_expired_tokens(tx, now)
                store.purge_known_devices(tx, now - self._config.known_device_ttl_seconds)
                device = device_token if known and device_token else _new_token(DEVICE_PREFIX)
                store.remember_device(tx, token_hash(device), user.id, now)
                session_id = secrets.token_hex(16)
                store.create_session(tx, session_id, user.id, _shown_name(device_name), now)
                return replace(self._issue(tx, user, session_id, now), device_token=device)
        raise AuthFailed(_WRONG_CREDENTIALS)

    def _issue(
        self, tx: store.Tx, user: User, session_id: str, now: float, refresh: str | None = None
    ) -> TokenPair:
        access = _new_token(ACCESS_PREFIX)
        ttl = self._config.access_token_ttl_seconds
        store.add_access_token(tx, token_hash(access), session_id, now + ttl)
        if refresh is None:
            refresh = _new_token(REFRESH_PREFIX)
            store.add_refresh_token(
                tx, token_hash(refresh), session_id, now + self._config.refresh_token_ttl_seconds
            )
        return TokenPair(access, refresh, ttl, user)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotates a refresh token into a new pair. The previous token, presented again, gets the same successor
        until that successor is first used (its answer may have been lost, however long ago); after that, any
        reuse revokes the session. Raises AuthFailed."""
        now = self._config.clock()
        hashed = token_hash(refresh_token)
        with self._db.transaction() as tx:
            record = store.find_refresh_token(tx, hashed)
            if record is None or record.session_revoked or record.user_disabled or record.expires_at <= now:
                raise AuthFailed(_SESSION_ENDED)
            if record.rotated_at is None:
                successor = _new_token(REFRESH_PREFIX)
                if store.mark_refresh_rotated(tx, hashed, now, _wrap_successor(refresh_token, successor)):
                    store.add_refresh_token(
                        tx, token_hash(successor), record.session_id, now + self._config.refresh_token_ttl_seconds
                    )
                    return self._issue(tx, record.user, record.session_id, now, refresh=successor)
                record = store.find_refresh_token(tx, hashed)  # rotated by a concurrent request
                assert record is not None and record.rotated_at is not None
            pair = self._replay(tx, record, refresh_token, now)
            if pair is not None:
                return pair
            # The successor was used, so whoever holds this token now is not the client that lost an answer.
            store.revoke_session(tx, record.session_id, now)
        raise AuthFailed(_SESSION_ENDED)

    def _replay(self, tx: store.Tx, record: store.RefreshRecord, old: str, now: float) -> TokenPair | None:
        """The same successor again (with a new access token) while it has not been used, else None."""
        if record.successor is None:
            return None
        try:
            successor = _unwrap_successor(old, record.successor)
        except InvalidTag:
            return None  # not written by this server: refuse as a replay
        # Locked (PostgreSQL): a first use of the successor racing this replay either commits before it, and
        # this is refused, or waits until this replay has answered.
        if not store.refresh_token_live(tx, token_hash(successor), now, lock=True):
            return None
        return self._issue(tx, record.user, record.session_id, now, refresh=successor)

    def logout(self, access_token: str | None, refresh_token: str | None) -> bool:
        """Revokes the session behind either token; False when neither names a session."""
        now = self._config.clock()
        with self._db.transaction() as tx:
            session_id = None
            if access_token:
                found = store.find_access_token(tx, token_hash(access_token), now)
                session_id = found[1] if found else None
            if session_id is None and refresh_token:
                record = store.find_refresh_token(tx, token_hash(refresh_token))
                session_id = record.session_id if record else None
            if session_id is None:
                return False
            store.revoke_session(tx, session_id, now)
            return True

    def authenticate(self, access_token: str) -> Principal:
        """The account behind a live access token. Raises AuthFailed."""
        with self._db.reader() as tx:
            found = store.find_access_token(tx, token_hash(access_token), self._config.clock())
        if found is None:
            raise AuthFailed("The access token is missing, expired or revoked; refresh it or sign in again.")
        return Principal(found[0], found[1])

    def issue_device_credential(self, who: Principal, device_name: str) -> IssuedCredential:
        """A credential that can only upload sealed envelopes for ``who``'s account (docs/sealed-outbox.md).
        It ends with the session that asked for it, with every session of the account and with the account."""
        now = self._config.clock()
        credential_id = "dc-" + secrets.token_hex(8)
        token = _new_token(DEVICE_CREDENTIAL_PREFIX)
        with self._db.transaction() as tx:
            store.add_device_credential(
                tx, credential_id, token_hash(token), who.user.id, who.session_id, _shown_name(device_name), now
            )
        return IssuedCredential(credential_id, token, who.user.username)

    def authenticate_device(self, token: str) -> store.DeviceHolder:
        """The account behind a device credential. Raises CredentialRevoked or AuthFailed. Its last use is
        recorded by the day only, like an anonymous report's arrival, so it cannot date one."""
        with self._db.reader() as tx:
            holder = store.find_device_credential(tx, token_hash(token))
        if holder is None:
            raise AuthFailed("The device credential is not one this server issued; sign in again in the app.")
        if holder.revoked:
            raise CredentialRevoked(
                "The device credential was revoked; the reports wait on the workstation until their author "
                "signs in again."
            )
        day = store.day_start(self._config.clock())
        if holder.last_used_at is None or holder.last_used_at < day:
            with self._db.transaction() as tx:
                store.mark_device_credential_used(tx, holder.credential_id, day)
        return holder
