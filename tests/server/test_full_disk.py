"""A full disk under the server's SQLite database (a real one: a small tmpfs) is a storage outage like any
other: 503 with Retry-After and a plain Problem, no 500 and no traceback; nothing half-stored; and once space
is freed the same batch goes through."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain.samples import sample_report
from pso_server.config import ServerConfig
from pso_server.practice import run_server
from pso_server.tls import TlsFiles
from tests.server.support import Api
from tests.support.kdf import SERVER_KDF
from tests.support.small_disk import fill, small_tmpfs

BATCH = "/api/v1/reports/batch"


def _reports(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [sample_report(rng, n) for n in range(count)]


def test_a_full_disk_answers_503_with_retry_after_then_recovers(
    tmp_path: Path, tls_files: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    with small_tmpfs(tmp_path / "small") as disk:
        config = ServerConfig(kdf=SERVER_KDF, retry_after_seconds=3)
        db_url = f"sqlite:///{disk / 'server.db'}"
        with (
            run_server(db_url=db_url, data_dir=tmp_path / "server", config=config, tls=tls_files) as server,
            Api(server) as api,
        ):
            token = api.user("nurse1")
            assert {r["status"] for r in api.batch(token, _reports(5, seed=1))} == {"created"}
            filler = fill(disk)
            held = server.stats()
            big = _reports(300, seed=2)  # more than the WAL already holds room for
            with caplog.at_level(logging.WARNING, logger="pso_server"):
                refused = api.post(BATCH, token, json={"reports": big})
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "3"
            assert refused.json()["error"] == "storage_unavailable"
            assert "Traceback" not in refused.text
            assert "SQLITE_FULL" in caplog.text and "Traceback" not in caplog.text
            # Reads still work and show nothing of the refused batch.
            assert api.get("/api/v1/reference", token).status_code == 200
            assert server.stats() == held

            filler.unlink()
            assert {r["status"] for r in api.batch(token, big)} == {"created"}
            assert server.stats()["reports"] == 305


def test_postgresql_disk_full_is_classed_with_the_other_storage_outages() -> None:
    # A PostgreSQL server whose disk fills answers SQLSTATE 53100; mounting a tablespace on a small disk needs
    # the database's superuser, so only the classification is checked here (the 503 path is the same one
    # test_limits.py drives with cut connections).
    psycopg = pytest.importorskip("psycopg")
    from pso_server import store

    full = psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert isinstance(full, store._transient_errors()) and store._is_transient(full)
