"""What the store's tests share: the PostgreSQL server of the session, or a skip."""

from __future__ import annotations

import pytest

from tests.conftest import PostgresDatabases


@pytest.fixture
def pg(postgres_databases: PostgresDatabases | None) -> PostgresDatabases:
    if postgres_databases is None:
        pytest.skip("PostgreSQL is not reachable")
    return postgres_databases
