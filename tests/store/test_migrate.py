"""``dothi migrate-store``: a whole instance built through the API moves to another
backend (SQLite to PostgreSQL, and back) and answers every request as before, with the
same attribute instance ids; a target that holds data is refused; a corrupted copy is
caught by the comparison. Needs PostgreSQL + PostGIS on 127.0.0.1:5432."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from dothi.store.migrate import canonical, compare
from tests.conftest import PostgresDatabases, streetlight

E = "/ngsi-ld/v1/entities"
T = "/ngsi-ld/v1/temporal/entities"
S = "/ngsi-ld/v1/subscriptions"
R = "/ngsi-ld/v1/csourceRegistrations"
C = "/ngsi-ld/v1/jsonldContexts"
HUE = "urn:ngsi-ld:tenant:hue"
QUIET = "urn:ngsi-ld:tenant:quiet"  # a tenant with nothing but a subscription
TENANTS: list[str | None] = [None, HUE]
MARKET = [108.2272, 16.0612]
NOWHERE = "http://127.0.0.1:9/nowhere"  # refuses connections: notifications stay pending


def tenant_headers(tenant: str | None) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant} if tenant else {}


def app_for(url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, context_fetch=False)))


def reading(value: Any, observed: str) -> dict:
    return {"reading": {"type": "Property", "value": value, "observedAt": observed}}


def build_instance(url: str) -> None:
    """Two tenants with entities (points near and far from the market), history across
    December 2025 and January 2026, temporal API instances, subscriptions with pending
    notifications, a registration and a hosted @context."""
    with app_for(url) as client:
        for tenant in TENANTS:
            h = tenant_headers(tenant)
            r = client.post(S, headers=h, json={
                "type": "Subscription", "entities": [{"type": "Streetlight"}],
                "watchedAttributes": ["powerState"],
                "notification": {"endpoint": {"uri": NOWHERE, "accept": "application/json"}}})
            assert r.status_code == 201, r.text
            for n in range(1, 9):
                near = n <= 4
                lon = MARKET[0] + (0.001 * n if near else 0.1 + 0.01 * n)
                body = streetlight(n, location={"type": "GeoProperty", "value": {
                    "type": "Point", "coordinates": [lon, MARKET[1]]}},
                    big={"type": "Property", "value": 1e20},
                    nested={"type": "Property", "value": {"b": 2.0, "a": [1.5, 3]}},
                    **reading(2.0, "2025-12-31T22:00:00Z"))
                assert client.post(E, json=body, headers=h).status_code == 201
            for n in range(1, 9):
                eid = f"urn:ngsi-ld:Streetlight:dn-{n}"
                for value, observed in ((3.5, "2025-12-31T23:30:00Z"),
                                        (4, "2026-01-01T00:30:00Z")):
                    r = client.patch(f"{E}/{eid}/attrs", json=reading(value, observed),
                                     headers=h)
                    assert r.status_code == 204, r.text
                if n % 2:
                    r = client.patch(f"{E}/{eid}/attrs", headers=h, json={
                        "powerState": {"type": "Property", "value": "off"}})
                    assert r.status_code == 204
            # A deleted entity keeps its history.
            assert client.delete(f"{E}/urn:ngsi-ld:Streetlight:dn-8", headers=h).status_code == 204
            r = client.post(T, headers=h, json={
                "id": "urn:ngsi-ld:FloodMonitoring:1", "type": "FloodMonitoring",
                "waterLevel": [
                    {"type": "Property", "value": 0.4, "observedAt": "2025-12-15T00:00:00Z"},
                    {"type": "Property", "value": 0.9, "observedAt": "2026-01-15T01:00:00Z",
                     "datasetId": "urn:ngsi-ld:Dataset:radar"}]})
            assert r.status_code == 201, r.text
        r = client.post(S, headers=tenant_headers(QUIET), json={
            "type": "Subscription", "entities": [{"type": "Vehicle"}],
            "notification": {"endpoint": {"uri": NOWHERE}}})
        assert r.status_code == 201, r.text
        r = client.post(R, json={
            "id": "urn:ngsi-ld:ContextSourceRegistration:weather", "type":
            "ContextSourceRegistration", "information": [{"entities": [{"type": "Forecast"}]}],
            "endpoint": "http://127.0.0.1:9/weather"})
        assert r.status_code == 201, r.text
        r = client.post(C, json={"@context": {"Lamp": "https://example.org/Lamp"}})
        assert r.status_code == 201, r.text


# Requests whose answers must be the same from source and target, per tenant.
QUERIES: list[tuple[str, dict[str, str]]] = [
    (E, {"type": "Streetlight", "limit": "100"}),
    (E, {"type": "Streetlight", "georel": "near;maxDistance==2000", "geometry": "Point",
         "coordinates": f"[{MARKET[0]},{MARKET[1]}]"}),
    (E, {"type": "Streetlight", "q": 'powerState=="off"', "count": "true"}),
    (E, {"type": "Streetlight", "q": "reading>3"}),
    (f"{E}/urn:ngsi-ld:Streetlight:dn-3", {}),
    (T, {"type": "Streetlight,FloodMonitoring", "limit": "100", "timerel": "after",
         "timeAt": "2000-01-01T00:00:00Z"}),
    (f"{T}/urn:ngsi-ld:Streetlight:dn-8", {}),
    (f"{T}/urn:ngsi-ld:FloodMonitoring:1", {}),
    (f"{T}/urn:ngsi-ld:Streetlight:dn-2", {"timerel": "after", "timeAt": "2026-01-01T00:00:00Z"}),
    (S, {}),
    (R, {"type": "Forecast"}),
    ("/ngsi-ld/v1/types", {"details": "true"}),
    ("/ngsi-ld/v1/attributes", {}),
]
# Delivery counters move while either app retries the pending notifications.
VOLATILE = {"timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure",
            "status"}


def stable(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: stable(v) for k, v in body.items() if k not in VOLATILE}
    if isinstance(body, list):
        return [stable(v) for v in body]
    return body


def assert_same_answers(source: str, target: str) -> None:
    with app_for(source) as old, app_for(target) as new:
        for tenant in [*TENANTS, QUIET]:
            h = tenant_headers(tenant)
            for path, params in QUERIES:
                if (tenant == QUIET and path != S) or (tenant is not None and path == R):
                    continue  # what these tenants do not hold
                a, b = old.get(path, params=params, headers=h), new.get(path, params=params,
                                                                         headers=h)
                assert a.status_code == b.status_code == 200, (path, a.text, b.text)
                assert a.json(), (tenant, path, params)
                assert stable(a.json()) == stable(b.json()), (tenant, path, params)
                assert a.headers.get("NGSILD-Results-Count") == b.headers.get(
                    "NGSILD-Results-Count")
        hosted = old.get(C, params={"kind": "Hosted"}).json()
        assert hosted and new.get(C, params={"kind": "Hosted"}).json() == hosted
        assert new.get(hosted[0]).json() == {"@context": {"Lamp": "https://example.org/Lamp"}}


def migrate(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", "migrate-store", "--from", source,
                           "--to", target], capture_output=True, text=True, timeout=120,
                          check=False)


def instance_ids(url: str) -> list[str]:
    with app_for(url) as client:
        body = client.get(f"{T}/urn:ngsi-ld:Streetlight:dn-2").json()
    return [i["instanceId"] for i in body["reading"]]


@pytest.mark.parametrize("direction", ["sqlite-postgresql", "postgresql-sqlite"])
def test_migration_keeps_every_answer(direction: str, tmp_path: Path,
                                      pg: PostgresDatabases) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'city.db'}"
    if direction == "sqlite-postgresql":
        source, target = sqlite_url, pg.url("target")
    else:
        source, target = pg.url("source"), sqlite_url
    build_instance(source)
    result = migrate(source, target)
    assert result.returncode == 0, result.stderr
    assert "source and target agree" in result.stderr
    assert "Migrated 14 entities" in result.stderr
    for kind in ("instances", "notifications", "type summary", "indexes"):
        assert kind in result.stderr
    ids = instance_ids(source)
    assert len(ids) == 3 and ids == instance_ids(target)
    assert_same_answers(source, target)
    # The target goes on: new instances get new ids, in a month it had no partition for.
    with app_for(target) as client:
        r = client.patch(f"{E}/urn:ngsi-ld:Streetlight:dn-2/attrs",
                         json=reading(5, "2026-03-01T00:00:00Z"))
        assert r.status_code == 204, r.text
        got = client.get(f"{T}/urn:ngsi-ld:Streetlight:dn-2").json()["reading"]
    assert [i["instanceId"] for i in got[:3]] == ids
    newest = int(got[3]["instanceId"].rsplit(":", 1)[1])
    assert newest > max(int(i.rsplit(":", 1)[1]) for i in ids)


def test_sqlite_source_counts(tmp_path: Path, pg: PostgresDatabases) -> None:
    """The pending notifications and the quiet tenant survive (they are not visible
    through the API, so the tables are read)."""
    source = tmp_path / "city.db"
    build_instance(f"sqlite:///{source}")
    with sqlite3.connect(source) as db:
        pending = db.execute("SELECT count(*) FROM notifications").fetchone()[0]
    assert pending > 0
    target = pg.url("target")
    assert migrate(str(source), target).returncode == 0  # a plain path is SQLite
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*), count(owner) FROM notifications").fetchone() == (
            pending, 0)
        assert conn.execute("SELECT count(*) FROM tenants WHERE name = %s",
                            (QUIET,)).fetchone() == (1,)
        assert conn.execute("SELECT n FROM change_counters ORDER BY name").fetchall() == [
            (1,), (1,)]


def test_refuses_a_target_holding_data(tmp_path: Path, pg: PostgresDatabases) -> None:
    source = f"sqlite:///{tmp_path / 'city.db'}"
    with app_for(source) as client:
        assert client.post(E, json=streetlight(1)).status_code == 201
    target = pg.url("target")
    with app_for(target) as client:
        assert client.post(E, json=streetlight(2)).status_code == 201
    before = _snapshot(target)
    result = migrate(source, target)
    assert result.returncode == 2
    assert "not empty (1 entities, 1 temporal entities, 3 instances, 1 audit rows)" in result.stderr
    assert _snapshot(target) == before
    # Bad arguments are refused the same way.
    assert migrate(source, source).returncode == 2
    assert migrate(source, "mysql://x/y").returncode == 2
    missing = migrate(str(tmp_path / "missing.db"), str(tmp_path / "new.db"))
    assert missing.returncode == 2 and "Cannot read the source" in missing.stderr
    assert not (tmp_path / "new.db").exists()


def _snapshot(url: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in (
            "entities", "attr_instances", "subscriptions", "tenants", "entity_types")]


def test_compare_catches_a_corrupted_copy(tmp_path: Path, pg: PostgresDatabases) -> None:
    source = f"sqlite:///{tmp_path / 'city.db'}"
    build_instance(source)
    target = pg.url("target")
    assert migrate(source, target).returncode == 0
    assert all(c.ok for c in compare(source, target))
    with psycopg.connect(target) as conn:
        conn.execute("UPDATE attr_instances SET doc = jsonb_set(doc, '{value}', '99') "
                     "WHERE iid = (SELECT max(iid) FROM attr_instances)")
    checks = {c.kind: c for c in compare(source, target)}
    assert [k for k, c in checks.items() if not c.ok] == ["instances"]
    assert checks["instances"].source_count == checks["instances"].target_count
    with psycopg.connect(target) as conn:
        conn.execute("DELETE FROM csource_registrations")
    bad = [c for c in compare(source, target) if not c.ok]
    assert [c.kind for c in bad] == ["instances", "registrations"]
    assert bad[1].target_count == 0


def test_migrate_store_cli_reports_a_mismatch(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1 and the differing kind named when the comparison fails (simulated by a
    comparison that finds one row missing)."""
    from typer.testing import CliRunner

    from dothi import cli
    from dothi.store import migrate as migration

    source = f"sqlite:///{tmp_path / 'a.db'}"
    with app_for(source) as client:
        assert client.post(E, json=streetlight(1)).status_code == 201
    real: Callable[..., list[migration.Check]] = migration.compare

    def lossy(*args: Any, **kwargs: Any) -> list[migration.Check]:
        checks = real(*args, **kwargs)
        checks[2].target_count -= 1
        return checks

    monkeypatch.setattr(migration, "compare", lossy)
    result = CliRunner().invoke(cli.app, ["migrate-store", "--from", source,
                                          "--to", str(tmp_path / "b.db")])
    assert result.exit_code == 1
    assert "entities differ" in result.output


def test_canonical_form_ignores_how_numbers_are_written() -> None:
    assert canonical({"v": 1.0, "w": [2.0, 1e20, 0.5], "x": {"y": -0.0}}) == {
        "v": 1, "w": [2, 1e20, 0.5], "x": {"y": 0}}
