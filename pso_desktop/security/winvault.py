"""Windows Credential Manager: profile keys stay on this machine.

keyring's ``WinVaultKeyring`` writes credentials with ``CRED_PERSIST_ENTERPRISE`` unless told otherwise: such a
credential roams with a domain user's profile to every computer the user signs in to. A wrapped data key
belongs to one workstation's profile folder, so this application sets ``CRED_PERSIST_LOCAL_MACHINE`` explicitly
on the backend it stores keys in, and rewrites an entry found with another persistence (written by keyring's
default, or by an earlier version of this application) the next time its profile is unlocked.

Everything here does nothing unless the backend is exactly keyring's ``WinVaultKeyring``.
"""

from __future__ import annotations

import sys
from typing import Any

from keyring.backend import KeyringBackend

_MODULE = "keyring.backends.Windows"
_CLASS = "WinVaultKeyring"
LOCAL_MACHINE = "local machine"  # keyring's name for win32cred.CRED_PERSIST_LOCAL_MACHINE


def _windows_module(backend: KeyringBackend) -> Any:
    """keyring's Windows backend module when ``backend`` is exactly its WinVaultKeyring, else None."""
    module = sys.modules.get(_MODULE)
    if module is None or type(backend) is not getattr(module, _CLASS, None):
        return None
    return module


def persist_locally(backend: KeyringBackend) -> None:
    """Makes every later write of ``backend`` (if it is the Windows Credential Manager) local to this machine."""
    if _windows_module(backend) is not None:
        backend.persist = LOCAL_MACHINE  # type: ignore[attr-defined]  # keyring's Persistence descriptor


def ensure_local_persistence(backend: KeyringBackend, service: str, username: str) -> bool:
    """Rewrites the credential of (service, username) with local-machine persistence if it has another one.

    The credential is overwritten in place (same target, same blob), never deleted first, so a failure leaves
    the old entry as it was. Returns True when an entry was rewritten. Windows errors propagate."""
    module = _windows_module(backend)
    if module is None:
        return False
    win32cred = module.win32cred
    local = win32cred.CRED_PERSIST_LOCAL_MACHINE
    credential = backend._resolve_credential(service, username)  # type: ignore[attr-defined]
    if not credential or credential.get("Persist") == local:
        return False
    value = credential.value
    win32cred.CredWrite(
        {
            "Type": win32cred.CRED_TYPE_GENERIC,
            "TargetName": credential["TargetName"],
            "UserName": credential["UserName"],
            "CredentialBlob": value,
            "Comment": credential.get("Comment") or "Stored using python-keyring",
            "Persist": local,
        },
        0,
    )
    return True
