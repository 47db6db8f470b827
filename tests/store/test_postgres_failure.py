"""The database going away under load: requests fail with 503 and a problem, nothing
half-written stays, and the same process serves again once the database is back.

A restart is what clients see of it: every connection is cut (pg_terminate_backend, as a
shutdown does) and new ones are refused (ALLOW_CONNECTIONS false) until it is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from tests.conftest import PostgresDatabases, streetlight

E = "/ngsi-ld/v1/entities"


@pytest.fixture
def database(postgres_databases: PostgresDatabases | None) -> Iterator[tuple[str, str]]:
    if postgres_databases is None:
        pytest.skip("PostgreSQL is not reachable")
    url = postgres_databases.url("failure")
    name = url.rsplit("/", 1)[1]
    yield url, name
    postgres_databases.admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def go_down(admin: psycopg.Connection, name: str) -> None:
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def come_back(admin: psycopg.Connection, name: str) -> None:
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_restart_under_load_fails_cleanly_and_recovers(
        database: tuple[str, str], postgres_databases: PostgresDatabases) -> None:
    url, name = database
    admin = postgres_databases.admin
    settings = Settings(database_url=url, context_fetch=False, database_timeout=1.0)
    with TestClient(create_app(settings)) as client:
        for n in range(1, 21):
            assert client.post(E, json=streetlight(n)).status_code == 201
        # Writers keep going while the database goes down and comes back.
        statuses: list[tuple[int, int, dict]] = []
        stop = threading.Event()
        down = threading.Event()

        def writer(offset: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                light = streetlight(1000 * offset + n)
                r = client.post(E, json=light)
                statuses.append((r.status_code, 1000 * offset + n,
                                 r.json() if r.status_code >= 400 else {}))
                if r.status_code == 503:
                    down.set()

        threads = [threading.Thread(target=writer, args=(i,)) for i in (1, 2, 3)]
        for t in threads:
            t.start()
        go_down(admin, name)
        assert down.wait(30), "no request noticed the database going away"
        r = client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-1")
        assert r.status_code == 503
        problem = r.json()
        assert r.headers["Content-Type"].startswith("application/json") or \
            r.headers["Content-Type"].startswith("application/problem+json")
        assert problem["type"] == "urn:dothi:errors:StoreUnavailable"
        assert problem["status"] == 503 and "database" in problem["detail"]
        come_back(admin, name)
        # The same process serves again, without a restart.
        recovered = threading.Event()

        def until_served() -> None:
            while client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-1").status_code != 200:
                pass
            recovered.set()

        watcher = threading.Thread(target=until_served)
        watcher.start()
        assert recovered.wait(30), "the process did not recover"
        watcher.join()
        stop.set()
        for t in threads:
            t.join()
        assert {s for s, _, _ in statuses} <= {201, 503}, statuses
        assert any(s == 503 for s, _, _ in statuses)
        # Every write that was acknowledged is there, with its history; a refused one
        # left nothing behind but may be repeated.
        created = [n for s, n, _ in statuses if s == 201]
        refused = [n for s, n, _ in statuses if s == 503]
        for n in created:
            assert client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-{n}").status_code == 200
        for n in refused:
            r = client.post(E, json=streetlight(n))
            # 409 only if the commit went through before the connection was cut (the
            # client could not know): the entity is then whole.
            assert r.status_code in (201, 409), r.text
            assert client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-{n}").json()["powerState"]
        count = client.get(E, params={"type": "Streetlight", "count": "true", "limit": "0"})
        assert int(count.headers["NGSILD-Results-Count"]) == 20 + len(created) + len(refused)
    with psycopg.connect(url) as conn:
        # The summary behind /types agrees with the rows: no half-applied write.
        (entities,) = conn.execute("SELECT count(*) FROM entities").fetchone()
        (typed,) = conn.execute("SELECT count(*) FROM entity_types").fetchone()
        (geo,) = conn.execute("SELECT count(*) FROM entity_geo").fetchone()
        (summary,) = conn.execute("SELECT n FROM type_attrs WHERE attr = ''").fetchone()
        assert entities == typed == geo == summary == 20 + len(created) + len(refused)
