"""The cheap key-derivation settings of every test, in one place.

Real argon2id on both sides, far below the production cost (which has tests of its own), so an unlock or a
sign-in takes milliseconds and the code path is the one production runs.
"""

from __future__ import annotations

from pso_desktop.security.kdf import KdfParams
from pso_server import practice

# The client's profile keys. Below 512 KiB on purpose: tests/security shows that a weaker setting never lowers a
# stored, stronger one.
CHEAP_KDF = KdfParams(memory_kib=256, time_cost=1, parallelism=1)

# The server's password hashing: the practice server's own cheap setting, the one training mode runs with. Pass
# ServerConfig(kdf=SERVER_KDF) for a server whose accounts the test creates and signs in.
SERVER_KDF = practice.CHEAP_KDF
