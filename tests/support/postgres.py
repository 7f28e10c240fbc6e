"""A PostgreSQL schema of its own for a server test (the backend is tested when PSO_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_ENV = "PSO_TEST_POSTGRES_URL"


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards; the URL selects it via search_path."""
    import psycopg

    schema = f"pso_test_{secrets.token_hex(6)}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
