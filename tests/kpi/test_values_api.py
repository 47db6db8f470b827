"""Officials enter an indicator's value with its evidence (``POST /kpi/values``), on both
store backends: computed at the indicator's scale, kept with the evidence and who entered
it, read back by ``GET /kpi/values``; bad input is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

OFFICIAL = {"Authorization": "Bearer kpi-officer"}
ENTRY = {"city": "hue", "period": "2025", "code": "SC: SH: SA: 9C", "numerator": 41,
         "denominator": 652572, "evidence": "https://example.vn/bao-cao-atgt-2025.pdf",
         "note": "Báo cáo của Ban An toàn giao thông tỉnh"}


@pytest.fixture
def official_client(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys="kpi-officer")
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_entered_value_keeps_its_evidence(official_client: TestClient) -> None:
    client = official_client
    r = client.post("/kpi/values", json=ENTRY, headers=OFFICIAL)
    assert r.status_code == 201, r.text
    assert r.json()["value"] == pytest.approx(41 / 652572 * 100_000)
    values = client.get("/kpi/values", params={"city": "hue"}).json()
    assert values["periods"] == ["2025"]
    fatalities = next(i for i in values["indicators"] if i["code"] == "SC: SH: SA: 9C")
    kept = fatalities["values"]["2025"]
    assert kept["value"] == pytest.approx(6.2829, abs=0.0001)
    assert kept["provenance"]["evidence"] == ENTRY["evidence"]
    assert kept["provenance"]["source"] == "entered by official#1"
    entity = client.get(f"/ngsi-ld/v1/entities/{r.json()['id']}",
                        params={"options": "keyValues"}).json()
    assert entity["calculationMethod"] == "manual"


@pytest.mark.parametrize(("change", "status", "says"), [
    ({"evidence": None}, 400, "evidence is an http(s) link"),
    ({"evidence": "file:///x"}, 400, "evidence is an http(s) link"),
    ({"code": "XX"}, 400, "No indicator"),
    ({"denominator": 0}, 400, "the denominator is 0"),
    ({"numerator": "many"}, 400, "not a number"),
    ({"period": "last year"}, 400, "period"),
    ({"city": "Huế city"}, 400, "city is a name"),
    ({"colour": "red"}, 400, "Unknown members"),
])
def test_bad_entries_are_refused(official_client: TestClient, change: dict[str, Any],
                                 status: int, says: str) -> None:
    body = {k: v for k, v in {**ENTRY, **change}.items() if v is not None}
    r = official_client.post("/kpi/values", json=body, headers=OFFICIAL)
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert official_client.get("/kpi/values", params={"city": "hue"}).json()["periods"] == []


def test_only_officials_enter_values(official_client: TestClient) -> None:
    assert official_client.post("/kpi/values", json=ENTRY).status_code == 401
    assert official_client.post("/kpi/values", json=ENTRY,
                                headers={"Authorization": "Bearer guess"}).status_code == 401
