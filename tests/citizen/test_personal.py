"""Citizens' personal data (issue 10): encrypted at rest, bound to its record, opened only
for officials (each read audited), erased on request with its history, and past the
retention period; the keyed pseudonyms of clients; the instance's key."""

from __future__ import annotations

import base64
import hashlib
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from dothi.citizen.personal import PREFIX, Vault, erase_older
from dothi.errors import InternalError
from dothi.ngsild.timeutil import format_iso
from dothi.store import audit
from tests.citizen.test_open311 import OFFICIAL, PERSONAL, made
from tests.store.test_audit import cli

KEY = base64.b64encode(bytes(range(32))).decode()


def test_sealed_values_open_only_in_their_place_and_with_their_key() -> None:
    vault = Vault(base64.b64decode(KEY))
    sealed = vault.seal("urn:ngsi-ld:R:1", {"email": "an@example.vn", "phone": "0905"})
    assert all(v.startswith(PREFIX) and "example" not in v for v in sealed.values())
    assert vault.open("urn:ngsi-ld:R:1", sealed) == {"email": "an@example.vn",
                                                      "phone": "0905"}
    assert vault.seal("urn:ngsi-ld:R:1", {"email": "x"}) != vault.seal("urn:ngsi-ld:R:1",
                                                                       {"email": "x"})
    with pytest.raises(InternalError):  # copied onto another record
        vault.open("urn:ngsi-ld:R:2", sealed)
    with pytest.raises(InternalError):  # moved to another field
        vault.open("urn:ngsi-ld:R:1", {"phone": sealed["email"]})
    with pytest.raises(InternalError):  # another instance's key
        Vault(bytes(32)).open("urn:ngsi-ld:R:1", sealed)
    assert vault.open("urn:ngsi-ld:R:1", {"email": "written before sealing"}) == {
        "email": "written before sealing"}
    # Pseudonyms are keyed: no table of hashed IPv4 addresses reverses them.
    name = vault.pseudonym("t", "address:203.0.113.7")
    assert name == vault.pseudonym("t", "address:203.0.113.7")
    assert name != hashlib.sha256(b"t\x00address:203.0.113.7").hexdigest()
    assert name != Vault(bytes(32)).pseudonym("t", "address:203.0.113.7")


def test_the_key_file_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "personal.key"
    first = Vault.from_settings(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Vault.from_settings(None, path)
    assert again.pseudonym("t", "c") == first.pseudonym("t", "c")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(ValueError, match="base64"):
        Vault.from_settings("not a key", path)


def _rows_holding(url: str, text: str) -> int:
    """How often ``text`` is in the database: in the bytes of SQLite's files (the
    database and its write-ahead log), or in the rows of every PostgreSQL table."""
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///"))
        files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
        return sum(p.read_bytes().count(text.encode()) for p in files)
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return sum(conn.execute(f'SELECT count(*) FROM "{t}" AS r WHERE strpos(r::text, %s) > 0'
                                .encode(), (text,)).fetchone()[0] for t in tables)


def test_at_rest_only_ciphertext_and_erased_on_request(
        city: TestClient, database_url: Callable[[str], str]) -> None:
    rid = made(city, **PERSONAL)
    url = city.app.state.settings.database_url  # type: ignore[attr-defined]
    for secret in (PERSONAL["email"], PERSONAL["phone"]):
        assert _rows_holding(url, secret) == 0, secret  # entities, history, audit log...
    path = f"/ioc/service-requests/{rid}/reporter"
    assert city.get(path, headers=OFFICIAL).json() == {
        "service_request_id": rid, "anonymous": False, **PERSONAL}

    # Erased on the reporter's request: officials only; the report stays, anonymous.
    assert city.delete(path).status_code == 401
    assert city.delete(path, headers=OFFICIAL).status_code == 204
    assert city.get(path, headers=OFFICIAL).json() == {"service_request_id": rid,
                                                       "anonymous": True}
    assert city.delete(path, headers=OFFICIAL).status_code == 404
    assert city.get(f"/open311/v2/requests/{rid}.json").status_code == 200
    store = city.app.state.broker.store  # type: ignore[attr-defined]
    where = "urn:ngsi-ld:tenant:default~personal"
    reporter = f"urn:ngsi-ld:ServiceRequestReporter:{rid}"
    assert store.get(where, reporter) is None
    assert store.temporal_get(where, reporter, _all_time(), 10) is None  # history too
    logged = store.audit_rows(where=audit.Filter(who="official#1", tenant=where))
    assert [(r.action, r.target) for r in logged] == [
        ("entity.delete", reporter), ("history.delete", reporter)]


def _all_time() -> object:
    from dothi.ngsild.temporal import TimeQuery

    return TimeQuery()


def test_records_past_the_retention_period_are_erased(city: TestClient,
                                                     tmp_path: Path) -> None:
    rid = made(city, **PERSONAL)
    broker = city.app.state.broker  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    assert erase_older(broker, format_iso(now - timedelta(days=1))) == 0
    done: list[tuple[int, int]] = []
    assert erase_older(broker, format_iso(now + timedelta(seconds=5)),
                       lambda n, total: done.append((n, total))) == 1
    assert done == [(1, 1)]
    assert city.get(f"/ioc/service-requests/{rid}/reporter", headers=OFFICIAL).json()[
        "anonymous"] is True


def test_the_prune_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'city.db'}"
    refused = cli("personal", "prune", "--db", db)
    assert refused.returncode == 2 and "--older-than" in refused.stderr
    refused = cli("personal", "prune", "--db", db, "--older-than", "P2Y")
    assert refused.returncode == 2 and "P730D" in refused.stderr
    done = cli("personal", "prune", "--db", db, "--older-than", "P730D")
    assert done.returncode == 0, done.stderr
    assert "Erased the personal data of 0 reports" in done.stderr
