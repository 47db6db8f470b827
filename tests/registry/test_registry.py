"""The registers on both backends: national identifiers (their check digits, one number
per record even when two are registered at once), lifecycles that move only as the
register allows, documents, search without diacritics and by area, certification of a
smart building against the criteria, sandboxes' windows flagged as they end, and
refusals with problem details that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.registry.identifiers import Identifier, check_digits, parse
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT

OFFICIAL = {"Authorization": "Bearer clerk-key"}
ASSESSOR = {"Authorization": "Bearer assessor-key"}
YEAR = date.today().year
NEW_PLAN, NEW_PROJECT, NEW_SANDBOX, NEW_ROAD = (
    f"/registry/registers/{key}/records" for key in ("plan", "project", "sandbox", "road"))


def box(west: float, south: float, size: float = 0.01) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[west, south], [west + size, south],
                                                [west + size, south + size],
                                                [west, south + size], [west, south]]]}


@pytest.fixture
def registry(database_url: Any) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys="clerk-key", assessor_keys="assessor-key",
                        registry_province="48")
    with TestClient(create_app(settings)) as client:
        yield client


def register(client: TestClient, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/registry/registers/{key}/records", json=body,
                    headers=OFFICIAL)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/registry/records/{r.json()['registryId']}"
    return r.json()


def plan(client: TestClient, name: str = "Quy hoạch phân khu Hải Châu",
         west: float = 108.2) -> dict[str, Any]:
    return register(client, "plan", {"name": name, "level": "zoning",
                                     "location": box(west, 16.05)})


def test_identifiers_check_digits() -> None:
    made = Identifier("48", "DA", 2026, 17)
    assert str(made) == "48-DA-2026-00017-30" and parse(" 48-da-2026-00017-30 ") == made
    assert check_digits("48-DA-2026-00017") == "30"
    for typo in ("48-DA-2026-00071-30", "84-DA-2026-00017-30", "48-DA-2026-00017-31"):
        with pytest.raises(ValueError, match="check digits"):
            parse(typo)
    with pytest.raises(ValueError, match="not a registry identifier"):
        parse("48-DA-26-17")


def test_numbers_run_per_register_and_never_repeat(registry: TestClient) -> None:
    first, second = plan(registry), plan(registry, "Quy hoạch chung")
    assert first["registryId"] == str(Identifier("48", "QH", YEAR, 1))
    assert second["registryId"] == str(Identifier("48", "QH", YEAR, 2))
    project = register(registry, "project", {"name": "Dự án A", "investor": "Công ty A",
                                             "plan": first["registryId"],
                                             "location": box(108.2, 16.05)})
    assert project["registryId"] == str(Identifier("48", "DA", YEAR, 1))
    assert project["id"] == f"urn:ngsi-ld:UrbanProject:{project['registryId']}"

    with ThreadPoolExecutor(8) as pool:  # registered at once: eight different numbers
        made = list(pool.map(lambda n: plan(registry, f"Quy hoạch {n}"), range(8)))
    numbers = sorted(parse(m["registryId"]).number for m in made)
    assert numbers == list(range(3, 11))

    # The records are NGSI-LD entities like any other.
    r = registry.get(f"/ngsi-ld/v1/entities/{project['id']}", params={"options": "keyValues"})
    assert r.status_code == 200 and r.json()["investor"] == "Công ty A"


def test_a_lifecycle_moves_only_as_the_register_allows(registry: TestClient) -> None:
    rid = plan(registry)["registryId"]
    status = f"/registry/records/{rid}/status"
    r = registry.post(status, json={"to": "approved"}, headers=OFFICIAL)
    assert r.status_code == 400
    assert r.json()["detail"] == ("A record drafting cannot become approved (it can become: "
                                  "consultation, cancelled)")
    for to in ("consultation", "appraisal"):
        assert registry.post(status, json={"to": to}, headers=OFFICIAL).status_code == 200
    r = registry.post(status, json={"to": "approved", "decision": "QĐ 1234/QĐ-UBND",
                                    "note": "sau thẩm định"}, headers=OFFICIAL)
    assert r.status_code == 200
    moves = r.json()["statusHistory"]
    assert [(m["from"], m["to"]) for m in moves] == [
        (None, "drafting"), ("drafting", "consultation"), ("consultation", "appraisal"),
        ("appraisal", "approved")]
    assert moves[-1]["decision"] == "QĐ 1234/QĐ-UBND" and moves[-1]["by"] == "official#1"
    r = registry.post(f"/registry/records/{rid}/documents", headers=OFFICIAL,
                      json={"title": "Quyết định phê duyệt", "url": "https://example.vn/qd.pdf"})
    assert [d["title"] for d in r.json()["documents"]] == ["Quyết định phê duyệt"]
    # The status's history is the entity's, in the temporal API.
    eid = f"urn:ngsi-ld:UrbanPlan:{rid}"
    history = registry.get(f"/ngsi-ld/v1/temporal/entities/{eid}",
                           params={"attrs": "status", "options": "temporalValues"}).json()
    assert [v[0] for v in history["status"]["values"]] == [
        "drafting", "consultation", "appraisal", "approved"]


def test_search_by_words_register_status_and_area(registry: TestClient) -> None:
    near = plan(registry, "Quy hoạch ven sông Hàn, Đà Nẵng")
    plan(registry, "Quy hoạch Hòa Vang", west=108.0)
    register(registry, "project", {"name": "Khu đô thị Đà Nẵng Xanh", "investor": "Công ty Xanh",
                                   "location": box(108.2, 16.05)})

    def found(**params: str) -> list[str]:
        r = registry.get("/registry/records", params=params)
        assert r.status_code == 200, r.text
        return [x["name"] for x in r.json()["records"]]

    assert found(q="da nang") == ["Khu đô thị Đà Nẵng Xanh", "Quy hoạch ven sông Hàn, Đà Nẵng"]
    assert found(q="ĐÀ NẴNG xanh") == ["Khu đô thị Đà Nẵng Xanh"]
    assert found(q="cong ty xanh") == ["Khu đô thị Đà Nẵng Xanh"]  # the investor
    assert found(q=near["registryId"]) == ["Quy hoạch ven sông Hàn, Đà Nẵng"]
    assert found(register="plan", bbox="107.9,16.0,108.05,16.1") == ["Quy hoạch Hòa Vang"]
    assert found(register="project", status="proposed") == ["Khu đô thị Đà Nẵng Xanh"]
    assert found(register="plan", status="approved") == []
    collection = registry.get("/registry/records", params={"f": "geojson"}).json()
    assert len(collection["features"]) == 3
    assert collection["features"][0]["geometry"]["type"] == "Polygon"


def test_a_smart_building_is_certified_against_the_criteria(registry: TestClient) -> None:
    rid = register(registry, "building", {"name": "Tòa nhà A", "owner": "Công ty A",
                                          "location": box(108.2, 16.05, 0.001)})["registryId"]
    base = f"/registry/records/{rid}/certification"
    scores = {name: {"score": 80, "note": ""} for name in
              ("bms", "energy", "safety", "bim", "data")}
    r = registry.post(f"{base}/assessment", json={"scores": scores}, headers=ASSESSOR)
    assert r.status_code == 400 and "Only an application" in r.json()["detail"]
    r = registry.post(base, json={"evidence": [{"title": "BMS", "url": "https://a.vn/bms"}]},
                      headers=OFFICIAL)
    assert r.json()["certification"]["status"] == "applied"
    # An official is not an assessor.
    assert registry.post(f"{base}/assessment", json={"scores": scores},
                         headers=OFFICIAL).status_code == 403
    low = {**scores, "bms": {"score": 20, "note": "chưa kết nối"}, "energy": {"score": 40,
                                                                             "note": ""}}
    r = registry.post(f"{base}/assessment", json={"scores": low}, headers=ASSESSOR)
    cert = r.json()["certification"]
    # (25*20 + 25*40 + 20*80 + 15*80 + 15*80) / 100
    assert (cert["status"], cert["score"], cert["pass"]) == ("refused", 55.0, 70.0)
    assert cert["assessedBy"] == "assessor#1" and "validUntil" not in cert
    registry.post(base, json={"evidence": [{"title": "BMS mới", "url": "https://a.vn/b2"}]},
                  headers=OFFICIAL)
    cert = registry.post(f"{base}/assessment", json={"scores": scores},
                         headers=ASSESSOR).json()["certification"]
    assert (cert["status"], cert["score"]) == ("certified", 80.0)
    assert cert["validUntil"] > cert["assessedAt"]
    r = registry.post(f"/registry/records/{plan(registry)['registryId']}/certification",
                      json={"evidence": [{"title": "x", "url": "https://a.vn"}]},
                      headers=OFFICIAL)
    assert r.status_code == 400 and "not certified" in r.json()["detail"]


def test_sandboxes_are_flagged_as_their_window_ends(registry: TestClient) -> None:
    def sandbox(name: str, start: str, end: str) -> str:
        return register(registry, "sandbox", {
            "name": name, "sandboxKind": "technology", "participants": ["Công ty B"],
            "startDate": start, "endDate": end, "location": box(108.25, 16.1)})["registryId"]

    soon = sandbox("Xe tự hành", "2026-06-01", "2026-12-10")
    later = sandbox("Thanh toán QR", "2026-06-01", "2027-06-01")
    over = sandbox("Drone giao hàng", "2026-01-01", "2026-11-01")
    r = registry.post(f"/registry/records/{soon}/reports", headers=OFFICIAL,
                      json={"period": "Quý 3/2026", "summary": "1.240 chuyến"})
    assert [x["period"] for x in r.json()["reports"]] == ["Quý 3/2026"]

    reg = registry.app.state.registry  # type: ignore[attr-defined]
    assert sorted(reg.check_windows(DEFAULT_TENANT, date(2026, 11, 25))) == sorted([soon, over])
    assert reg.check_windows(DEFAULT_TENANT, date(2026, 11, 26)) == []  # flagged once

    def expiry(rid: str) -> str | None:
        return registry.get(f"/registry/records/{rid}").json().get("expiry")

    assert (expiry(soon), expiry(later), expiry(over)) == ("expiring", None, "expired")
    assert reg.check_windows(DEFAULT_TENANT, date(2026, 12, 11)) == [soon]
    assert expiry(soon) == "expired"
    r = registry.patch(f"/registry/records/{later}", json={"endDate": "2026-05-01"},
                       headers=OFFICIAL)
    assert r.status_code == 400 and r.json()["detail"] == "endDate must be after startDate"


@pytest.mark.parametrize("path, body, headers, status, says", [
    (NEW_PLAN, {"name": "x", "level": "zoning", "location": box(108, 16)}, {}, 401,
     "Authorization: Bearer"),
    (NEW_PLAN, {"name": "x", "level": "zoning", "location": box(108, 16)},
     ASSESSOR, 403, "may not act as an official"),
    (NEW_ROAD, {"name": "x"}, OFFICIAL, 404, "No register 'road'"),
    (NEW_PLAN, {"name": "x", "location": box(108, 16)}, OFFICIAL, 400,
     "missing level"),
    (NEW_PLAN, {"name": "x", "level": "city", "location": box(108, 16)}, OFFICIAL,
     400, "level: one of general, zoning, detailed"),
    (NEW_PLAN, {"name": "x", "level": "zoning", "location": box(108, 16),
                        "colour": "red"}, OFFICIAL, 400, "unknown fields ['colour']"),
    (NEW_PLAN, {"name": "x", "level": "zoning", "location": {"type": "Polygon",
     "coordinates": [[[0, 0], [1, 1], [0, 1], [1, 0], [0, 0]]]}}, OFFICIAL, 400,
     "invalid geometry"),
    (NEW_PROJECT, {"name": "x", "investor": "A", "plan": "48-QH-2026-00099-99",
                           "location": box(108, 16)}, OFFICIAL, 400, "check digits"),
    (NEW_PROJECT, {"name": "x", "investor": "A", "location": box(108, 16),
                           "plan": str(Identifier("48", "QH", YEAR, 99))}, OFFICIAL, 400,
     "plan: No record"),
    (NEW_SANDBOX, {"name": "x", "sandboxKind": "technology", "participants": ["A"],
                           "startDate": "2026-02-01", "endDate": "2026-01-01",
                           "location": box(108, 16)}, OFFICIAL, 400,
     "endDate must be after startDate"),
    (NEW_SANDBOX, {"name": "x", "sandboxKind": "technology", "participants": ["A"],
                           "startDate": "mai", "endDate": "2026-01-01",
                           "location": box(108, 16)}, OFFICIAL, 400, "startDate: a date"),
])
def test_refusals_change_nothing(registry: TestClient, path: str, body: dict[str, Any],
                                 headers: dict[str, str], status: int, says: str) -> None:
    r = registry.post(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]
    assert registry.get("/registry/records").json()["records"] == []
    # and no number was spent: the next record is the first
    assert plan(registry)["registryId"] == str(Identifier("48", "QH", YEAR, 1))


def test_the_shipped_registers_load_and_a_broken_title_says_where(tmp_path: Any) -> None:
    from pathlib import Path

    from dothi.registry.registry import CERTIFICATION, Registers

    shipped = Registers.load()
    assert shipped.criteria["building"].titles["safety"]["vi"] == \
        "An toàn, phòng cháy và an ninh thông minh"
    broken = Path(tmp_path) / "certification.yaml"
    broken.write_text(CERTIFICATION.read_text(encoding="utf-8").replace(
        '"Smart safety, fire and security"', "Smart safety, fire and security"),
        encoding="utf-8")
    with pytest.raises(ValueError, match="building.criteria.safety.title: expected a text"):
        Registers.load(certification=broken)
