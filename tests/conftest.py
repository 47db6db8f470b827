from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

# The suite works the platform's functions, not its sign-in: a request without a
# credential may do everything, as in a lab (DOTHI_AUTH_ANONYMOUS=system-admin). Actions
# done in someone's name still need their key. tests/auth sets the roles it tests itself.
os.environ.setdefault("DOTHI_AUTH_ANONYMOUS", "system-admin")

# Mosquitto, for the tests of MQTT notifications, device ingestion and the simulator. CI
# has one and sets DOTHI_TEST_REQUIRE_MQTT, so there a missing broker fails the run
# instead of skipping those tests.
MQTT = ("127.0.0.1", 1883)


def _mosquitto_up() -> bool:
    try:
        socket.create_connection(MQTT, timeout=1).close()
        return True
    except OSError:
        if os.environ.get("DOTHI_TEST_REQUIRE_MQTT"):
            raise
        return False


needs_mosquitto = pytest.mark.skipif(not _mosquitto_up(),
                                     reason=f"no MQTT broker on {MQTT[0]}:{MQTT[1]}")

# The browser tests drive Debian's chromium with Playwright (no browser download). CI
# installs it and sets DOTHI_TEST_REQUIRE_BROWSER, so there a missing browser fails.
CHROMIUM = Path("/usr/bin/chromium")
if os.environ.get("DOTHI_TEST_REQUIRE_BROWSER") and not CHROMIUM.exists():
    raise RuntimeError(f"DOTHI_TEST_REQUIRE_BROWSER is set but {CHROMIUM} is missing")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason=f"no {CHROMIUM} (Debian package chromium)")

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# The server the PostgreSQL half of the suite runs on (CI always has one on loopback).
POSTGRES = os.environ.get("DOTHI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresDatabases:
    """Databases of this test session on the PostgreSQL server, one per name: created
    and migrated once, emptied (not re-created) before each test that uses them."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
        if self.admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
                              ).fetchone() is None:
            self.admin.close()
            raise RuntimeError("the server has no PostGIS (Debian: postgresql-15-postgis-3)")
        self.prefix = f"dothi_pytest_{os.getpid()}_"
        self.made: dict[str, str] = {}  # name -> URL of a migrated database
        self.names: set[str] = set()  # every database made, dropped at the end
        # Databases of earlier runs on this machine that were killed before dropping them.
        for (name,) in self.admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'dothi\\_pytest\\_%'"):
            pid = name.split("_")[2]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str) -> str:
        import psycopg

        from dothi.store.postgres import PostgresStore

        if name not in self.made:
            url = self.blank(name)
            PostgresStore(url).close()  # migrate once
            self.made[name] = url
            return url
        url = self.made[name]
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('schema_migrations', 'spatial_ref_sys') "
                "AND tablename NOT LIKE 'attr\\_instances\\_%'")]
            # As a replica, so that the audit log's guard against TRUNCATE stays quiet.
            conn.execute("SET session_replication_role = replica")
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            conn.execute("INSERT INTO change_counters VALUES ('subscriptions', 0), "
                         "('registrations', 0)")
        return url

    def blank(self, name: str) -> str:
        """A new database with nothing in it, for tests that build their own tables."""
        db = self.prefix + name
        self.admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.admin.execute(f'CREATE DATABASE "{db}"')
        self.names.add(db)
        return POSTGRES.rsplit("/", 1)[0] + "/" + db

    def close(self) -> None:
        for db in self.names:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.admin.close()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    try:
        dbs = PostgresDatabases(POSTGRES)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server"
        if os.environ.get("DOTHI_TEST_REQUIRE_POSTGRES"):  # CI: never skip half the suite
            raise
        print(f"PostgreSQL with PostGIS not reachable at {POSTGRES}: {exc}")
        yield None
        return
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 postgres_databases: PostgresDatabases | None) -> Callable[[str], str]:
    """A fresh, empty database of the backend under test, by name (tests that need two
    instances ask for two names): every test that uses it runs on both backends."""
    if request.param == "sqlite":
        return lambda name="test": f"sqlite:///{tmp_path / name}.db"
    if postgres_databases is None:
        pytest.skip(f"PostgreSQL with PostGIS is not reachable at {POSTGRES} "
                    "(set DOTHI_TEST_POSTGRES)")
    return lambda name="test": postgres_databases.url(name)


@pytest.fixture
def settings(database_url: Callable[[str], str]) -> Settings:
    return Settings(database_url=database_url("test"), context_fetch=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def streetlight(n: int = 1, **extra: object) -> dict:
    entity = {
        "id": f"urn:ngsi-ld:Streetlight:dn-{n}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "illuminanceLevel": {"type": "Property", "value": 0.8, "unitCode": "C62"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [108.2272, 16.0612]}},
    }
    entity.update(extra)
    return entity
