"""The audit log (issue 10): every write through any API lands in it with who, when, from
where and what, in the write's own transaction; reads of personal data too; the hash
chain verifies, and a changed, removed or reordered row, or rows cut from its end, are
found; the table refuses UPDATE and DELETE; backups carry it whole."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from dothi.store import audit
from dothi.store.base import DEFAULT_TENANT, Store
from tests.conftest import streetlight

LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


def rows(store: Store) -> list[audit.Row]:
    return list(audit.stored(store, batch=7))  # small batches: the paging is exercised


def store_of(client: TestClient) -> Store:
    return client.app.state.broker.store  # type: ignore[attr-defined, no-any-return]


def sql(url: str, statement: str) -> None:
    """Run ``statement`` on the database behind the store, as someone with its files or
    its superuser would, going around the store."""
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.executescript(statement)
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(statement.encode())


def test_every_write_is_logged_with_who_and_where_and_the_chain_verifies(
        client: TestClient) -> None:
    light = streetlight(1, **{"@context": CTX})
    assert client.post("/ngsi-ld/v1/entities", json=light, headers=LD).status_code == 201
    eid = light["id"]
    assert client.patch(f"/ngsi-ld/v1/entities/{eid}/attrs", json={
        "powerState": {"type": "Property", "value": "off"}}).status_code == 204
    # A failed write is not a change: nothing logged for it.
    assert client.post("/ngsi-ld/v1/entities", json=light, headers=LD).status_code == 409
    sub = client.post("/ngsi-ld/v1/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Streetlight"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})
    assert sub.status_code == 201
    sid = sub.headers["location"].rsplit("/", 1)[1]
    assert client.delete(f"/ngsi-ld/v1/subscriptions/{sid}").status_code == 204
    assert client.delete(f"/ngsi-ld/v1/entities/{eid}").status_code == 204

    log = [r for r in rows(store_of(client)) if r.tenant == DEFAULT_TENANT]
    assert [(r.action, r.target) for r in log] == [
        ("entity.create", eid), ("entity.update", eid), ("subscription.create", sid),
        ("subscription.delete", sid), ("entity.delete", eid)]
    assert {(r.who, r.origin) for r in log} == {("anonymous", "testclient")}
    assert '"attrs":["https://uri.etsi.org/ngsi-ld/default-context/powerState"]' in log[1].detail
    assert all(r.at.endswith("Z") for r in log)
    checked = audit.verify(rows(store_of(client)))
    assert checked.ok and checked.rows == log[-1].seq and checked.head == log[-1].hash


def test_a_changed_removed_or_reordered_row_is_found(
        settings: Settings, database_url: Callable[[str], str]) -> None:
    with TestClient(create_app(settings)) as client:
        for n in range(1, 6):
            assert client.post("/ngsi-ld/v1/entities", json=streetlight(n)).status_code == 201
        before = rows(store_of(client))
        assert audit.verify(before).ok and len(before) == 5
        anchor = before[-1].hash
        url = settings.database_url
        # The table refuses changes made through SQL...
        for statement in ("UPDATE audit_log SET who = 'nobody' WHERE seq = 3",
                          "DELETE FROM audit_log WHERE seq = 5"):
            with pytest.raises(Exception, match="append-only"):
                sql(url, statement)
        assert rows(store_of(client)) == before
        # ...and the chain catches whoever turns that off first.
        sql(url, _without_guard(url, "UPDATE audit_log SET who = 'nobody' WHERE seq = 3"))
        broken = audit.verify(rows(store_of(client)))
        assert (broken.ok, broken.broken_at, broken.rows) == (False, 3, 2)
        assert "changed" in broken.reason
        sql(url, _without_guard(url, "UPDATE audit_log SET who = 'anonymous' WHERE seq = 3"))
        assert audit.verify(rows(store_of(client))).ok  # put back as it was: intact again
        swap = ("UPDATE audit_log SET seq = -(9 - seq) WHERE seq IN (4, 5);"
                "UPDATE audit_log SET seq = -seq WHERE seq < 0")
        sql(url, _without_guard(url, swap))
        assert audit.verify(rows(store_of(client))).broken_at == 4
        sql(url, _without_guard(url, swap + ";DELETE FROM audit_log WHERE seq = 2"))
        removed = audit.verify(rows(store_of(client)))
        assert removed.broken_at == 2 and "missing" in removed.reason
        # Cutting the end keeps the rest a valid chain: only the recorded head tells.
        sql(url, _without_guard(url, "DELETE FROM audit_log WHERE seq >= 2"))
        cut = audit.verify(rows(store_of(client)), anchor)
        assert cut.broken_at is None and cut.anchor_found is False and not cut.ok


def _without_guard(url: str, statement: str) -> str:
    if url.startswith("sqlite:"):
        return ("DROP TRIGGER IF EXISTS audit_log_no_update;"
                "DROP TRIGGER IF EXISTS audit_log_no_delete;"
                f"{statement}")
    return ("BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER;"
            f"{statement}; ALTER TABLE audit_log ENABLE TRIGGER USER; COMMIT;")


def test_concurrent_writers_make_one_unbroken_chain(client: TestClient) -> None:
    store = store_of(client)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for n in range(25):
                eid = f"urn:ngsi-ld:Streetlight:w{k}-{n}"
                with audit.acting(f"writer#{k}", "127.0.0.1"):
                    store.apply(DEFAULT_TENANT, [(eid, lambda _old, e=eid: _doc(e))])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = rows(store)
    assert audit.verify(log).ok and len(log) == 100
    assert {r.who for r in log} == {f"writer#{k}" for k in range(4)}


def _doc(eid: str) -> dict:
    return {"id": eid, "type": ["https://uri.etsi.org/ngsi-ld/default-context/Streetlight"]}


def test_the_audit_commands_verify_and_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    entities = tmp_path / "lights.json"
    entities.write_text(f"[{_json(streetlight(1))}, {_json(streetlight(2))}]")
    assert cli("load", str(entities), "--db", url).returncode == 0
    ok = cli("audit", "verify", "--db", url)
    assert ok.returncode == 0, ok.stderr
    assert "intact: 2 rows" in ok.stderr
    head = ok.stderr.split("Its head is ")[1].split()[0]
    listed = cli("audit", "list", "--db", url, "--action", "entity")
    assert listed.returncode == 0 and "entity.create" in listed.stdout
    assert "cli:" in listed.stdout and "Streetlight:dn-2" in listed.stdout
    sql(url, "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = '{}' "
             "WHERE seq = 2")
    bad = cli("audit", "verify", "--db", url)
    assert bad.returncode == 1 and "broken at row 2" in bad.stderr
    sql(url, "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2")
    cut = cli("audit", "verify", "--db", url, "--head", head)
    assert cut.returncode == 1 and "no longer reaches the head" in cut.stderr


def _json(doc: dict) -> str:
    import orjson

    return orjson.dumps(doc).decode()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "200"})
