"""The practice server under the name tests and benchmarks have always imported: see :mod:`pso_server.practice`.

Nothing in the client imports this module; training mode uses :mod:`pso_server.practice`.
"""

from __future__ import annotations

from pso_server.practice import CHEAP_KDF, RunningServer, ServerStartFailed, run_server

TEST_KDF = CHEAP_KDF
"""Still argon2id, but cheap: pass ``ServerConfig(kdf=TEST_KDF)`` in tests that create and sign in many accounts."""

__all__ = ["TEST_KDF", "RunningServer", "ServerStartFailed", "run_server"]
