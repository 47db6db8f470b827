"""Citizens' reports through Open311 GeoReport v2, on both store backends: the services,
reporting (routed by service and area, an incident opened and assigned), following the
incident to closed, the listings and their filters, JSON and XML, the reporter's personal
data kept from every open API and shown to officials only, and the limits on a client."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.demo import build_demo_city
from dothi.store import audit

HAI_CHAU = ("16.0598", "108.2145")  # inside the demo city's Hải Châu
SON_TRA = ("16.0870", "108.2440")  # inside Sơn Trà, whose ward committee collects waste
OFFICIAL = {"Authorization": "Bearer official-key-1"}
PERSONAL = {"first_name": "Nguyễn Thị Hoa", "email": "hoa@example.vn", "phone": "0905 123 456"}
FLOOD = {"service_code": "flooding", "attribute[depth]": "knee",
         "description": "Nước ngập qua đầu gối trước chợ"}


def report(client: TestClient, where: tuple[str, str] = HAI_CHAU, fmt: str = "json",
           **fields: str | None) -> Any:
    """A flood report at ``where``; ``fields`` add to it or, given None, leave out."""
    lat, lon = where
    form = {"lat": lat, "long": lon, **FLOOD, **fields}
    return client.post(f"/open311/v2/requests.{fmt}",
                       data={k: v for k, v in form.items() if v is not None})


def made(client: TestClient, **fields: str | None) -> str:
    r = report(client, **fields)
    assert r.status_code == 201, r.text
    return str(r.json()[0]["service_request_id"])


def request_of(client: TestClient, rid: str, locale: str = "vi") -> dict[str, Any]:
    r = client.get(f"/open311/v2/requests/{rid}.json?locale={locale}")
    assert r.status_code == 200, r.text
    (found,) = r.json()
    return found  # type: ignore[no-any-return]


def entity(client: TestClient, rid: str) -> dict[str, Any]:
    r = client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:ServiceRequest:{rid}",
                   params={"options": "keyValues"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_services_and_their_definitions(city: TestClient) -> None:
    services = city.get("/open311/v2/services.json").json()
    flooding = next(s for s in services if s["service_code"] == "flooding")
    assert flooding == {"service_code": "flooding", "service_name": "Ngập nước đường phố",
                        "description": flooding["description"], "metadata": True,
                        "type": "realtime", "keywords": "ngập, flood, mưa, rain",
                        "group": "Thoát nước"}
    english = city.get("/open311/v2/services?locale=en").json()
    assert {s["service_name"] for s in english} >= {"Street flooding", "Broken streetlight"}
    definition = city.get("/open311/v2/services/flooding.json?locale=en").json()
    (depth,) = definition["attributes"]
    assert (depth["code"], depth["datatype"], depth["required"], depth["order"]) == (
        "depth", "singlevaluelist", True, 1)
    assert [v["key"] for v in depth["values"]] == ["ankle", "knee", "deeper"]
    root = ET.fromstring(city.get("/open311/v2/services/flooding.xml").content)
    assert root.tag == "service_definition"
    assert [v.findtext("key") for v in root.iter("value")] == ["ankle", "knee", "deeper"]
    assert root.findtext("attributes/attribute/required") == "true"
    xml = city.get("/open311/v2/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    assert xml.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert len(ET.fromstring(xml.content).findall("service")) == len(services)
    discovery = city.get("/open311/v2/discovery.json").json()
    assert discovery["endpoints"][0]["url"].endswith("/open311/v2")
    # Errors in Open311's own shape, in the format asked for.
    r = city.get("/open311/v2/services/potholes.xml")
    assert r.status_code == 400
    assert ET.fromstring(r.content).findtext("error/code") == "400"
    assert city.get("/open311/v2/services.csv").json()[0]["code"] == 404
    assert city.get("/open311/v2/services.json?locale=fr").status_code == 400


def test_a_report_is_routed_opens_an_incident_and_follows_it_to_closed(
        city: TestClient) -> None:
    r = report(city, **PERSONAL)
    assert r.status_code == 201, r.text
    (answer,) = r.json()
    rid = answer["service_request_id"]
    assert "Thoát nước" in answer["service_notice"]
    seen = request_of(city, rid)
    assert (seen["status"], seen["service_code"], seen["service_name"]) == (
        "open", "flooding", "Ngập nước đường phố")
    assert seen["agency_responsible"] == "Công ty Thoát nước và Xử lý nước thải"
    assert seen["status_notes"] == "Đã giao xử lý — Công ty Thoát nước và Xử lý nước thải"
    assert (seen["lat"], seen["long"]) == (16.0598, 108.2145)
    assert seen["expected_datetime"] is not None
    stored = entity(city, rid)
    assert stored["ward"] == "Quận Hải Châu (cũ)"
    assert stored["refAdministrativeArea"] == "urn:ngsi-ld:AdministrativeArea:danang-hai-chau"
    assert stored["attributes"] == {"depth": "knee"}
    incident = city.get(f"/ioc/incidents/{stored['refIncident']}").json()
    assert (incident["status"], incident["assignedAgency"], incident["alertSource"],
            incident["category"], incident["subCategory"]) == (
        "assigned", "drainage", "citizen", "flooding", "flooding")
    assert incident["relatedEntities"] == [f"urn:ngsi-ld:ServiceRequest:{rid}"]

    # A neighbour reports the same flood 100 m away: one more occurrence, not a new incident.
    other = made(city, lat="16.0605", long="108.2150", description="Ngập trước trường")
    assert entity(city, other)["refIncident"] == incident["id"]
    again = city.get(f"/ioc/incidents/{incident['id']}").json()
    assert again["occurrences"] == 2 and len(again["relatedEntities"]) == 2

    for status in ("inProgress", "resolved"):
        moved = city.post(f"/ioc/incidents/{incident['id']}/status",
                          json={"status": status, "by": "drainage-team",
                                "note": "internal: pump 3 broke"})
        assert moved.status_code == 200, moved.text
    for each in (rid, other):
        done = request_of(city, each, "en")
        assert done["status"] == "closed"
        assert done["status_notes"] == "Resolved — Drainage and wastewater company"
        assert done["expected_datetime"] is None
        assert "pump" not in str(done)  # officials' notes stay inside
    reopened = city.post(f"/ioc/incidents/{incident['id']}/status",
                         json={"status": "inProgress", "by": "drainage-team"})
    assert reopened.status_code == 200
    assert request_of(city, rid)["status"] == "open"


def test_routing_by_area(city: TestClient) -> None:
    waste: dict[str, Any] = {"service_code": "waste", "description": "Rác tồn 3 ngày"}
    here = made(city, **waste, **{"attribute[depth]": None})
    there = city.post("/open311/v2/requests.json",
                      data={"lat": SON_TRA[0], "long": SON_TRA[1], **waste})
    assert there.status_code == 201, there.text
    assert entity(city, here)["agency_responsible"] == "sanitation"
    rid = there.json()[0]["service_request_id"]
    assert entity(city, rid)["agency_responsible"] == "wardCommittee"
    assert request_of(city, rid, "en")["agency_responsible"] == "Ward People's Committee"
    # An address without a point: no area, the service's own agency.
    r = report(city, lat=None, long=None, service_code="streetlight",
               address_string="12 Bạch Đằng", **{"attribute[depth]": None})
    assert r.status_code == 201, r.text
    seen = request_of(city, r.json()[0]["service_request_id"])
    assert (seen["address"], seen["lat"]) == ("12 Bạch Đằng", None)
    assert entity(city, seen["service_request_id"])["agency_responsible"] == "lighting"


def test_personal_data_only_for_officials(city: TestClient) -> None:
    rid = made(city, **PERSONAL)
    anonymous = made(city, description="Không để lại tên")
    # The whole name: a report's random token may hold "Hoa" by chance (it once did).
    secrets = [PERSONAL["email"], PERSONAL["phone"], PERSONAL["first_name"]]
    open_views = [
        city.get(f"/open311/v2/requests/{rid}.json").text,
        city.get(f"/open311/v2/requests/{rid}.xml").text,
        city.get("/open311/v2/requests.json").text,
        city.get("/ngsi-ld/v1/entities", params={"type": "ServiceRequest"}).text,
        city.get("/ngsi-ld/v1/entities", params={"q": 'email=="hoa@example.vn"',
                                                 "type": "ServiceRequest"}).text,
        city.get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:ServiceRequest:{rid}").text,
        city.get("/ngsi-ld/v1/types").text,
        city.get("/ngsi-ld/v1/attributes").text,
    ]
    for view in open_views:
        assert not any(s in view for s in secrets), view[:300]
    # The personal partition is no tenant the open API can name.
    r = city.get("/ngsi-ld/v1/entities", params={"type": "ServiceRequestReporter"},
                 headers={"NGSILD-Tenant": "urn:ngsi-ld:tenant:default~personal"})
    assert r.status_code == 400
    # Officials only.
    path = f"/ioc/service-requests/{rid}/reporter"
    assert city.get(path).status_code == 401
    assert city.get(path, headers={"Authorization": "Bearer guess"}).status_code == 401
    r = city.get(path, headers=OFFICIAL)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json() == {"service_request_id": rid, "anonymous": False, **PERSONAL}
    assert city.get(f"/ioc/service-requests/{anonymous}/reporter", headers=OFFICIAL).json() \
        == {"service_request_id": anonymous, "anonymous": True}
    assert city.get("/ioc/service-requests/20990101-XXXXXX/reporter",
                    headers=OFFICIAL).status_code == 404
    # Every read is in the audit log, as the official's (refused ones are no reads).
    reads = city.app.state.broker.store.audit_rows(  # type: ignore[attr-defined]
        where=audit.Filter(action="personal.read"))
    assert [(r.who, r.origin, r.target, r.detail) for r in reads] == [
        ("official#1", "testclient", rid, '{"field":"reporter"}'),
        ("official#1", "testclient", anonymous, '{"field":"reporter"}')]


@pytest.mark.parametrize(("fields", "says"), [
    ({"service_code": "potholes"}, "service_code must be one of"),
    ({"attribute[depth]": "waist"}, "attribute[depth] takes"),
    ({"attribute[depth]": ""}, "attribute[depth] is required"),
    ({"attribute[colour]": "red"}, "has no attribute colour"),
    ({"lat": "", "long": ""}, "Where is it?"),
    ({"long": ""}, "lat and long go together"),
    ({"lat": "96", "long": "108"}, "WGS 84 degrees"),
    ({"lat": "nan"}, "finite number"),
    ({"email": "not-an-address"}, "not an e-mail address"),
    ({"phone": "call me"}, "not a telephone number"),
    ({"media_url": "file:///etc/passwd"}, "media_url is an http(s) URL"),
    ({"description": "x" * 4001}, "longer than 4000"),
    ({"password": "1"}, "Unknown fields ['password']"),
    ({"api_key": "stolen"}, "Unknown api_key"),
])
def test_bad_reports_are_refused_and_change_nothing(city: TestClient, fields: dict[str, str],
                                                     says: str) -> None:
    before = city.get("/ngsi-ld/v1/entities", params={"type": "ServiceRequest,Incident",
                                                      "count": "true"})
    r = report(city, **fields)
    assert r.status_code in (400, 403), r.text
    assert says in r.json()[0]["description"]
    assert r.json()[0]["code"] == r.status_code
    after = city.get("/ngsi-ld/v1/entities", params={"type": "ServiceRequest,Incident",
                                                     "count": "true"})
    assert after.headers["ngsild-results-count"] == before.headers["ngsild-results-count"]


def test_only_form_encoding_and_one_value_each(city: TestClient) -> None:
    r = city.post("/open311/v2/requests.xml", json={**FLOOD, "lat": 16.06, "long": 108.21})
    assert r.status_code == 415
    assert ET.fromstring(r.content).findtext("error/code") == "415"
    r = city.post("/open311/v2/requests.json", content="service_code=flooding&service_code=waste",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "given 2 times" in r.json()[0]["description"]


def test_limits_per_client(city: TestClient) -> None:
    first = report(city)
    assert first.status_code == 201
    # The same report again is the one already made, not a new one.
    again = report(city)
    assert again.status_code == 200
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    for n in range(3):
        assert report(city, description=f"lần {n}").status_code == 201
    over = report(city, description="lần thứ năm", fmt="xml")
    assert over.status_code == 429
    assert "At most 4 reports an hour" in ET.fromstring(over.content).findtext(
        "error/description", "")
    # A known app has its own allowance, and what it writes is logged as the app's.
    from_app = report(city, description="từ ứng dụng", api_key="hue-s-app")
    assert from_app.status_code == 201
    rid = from_app.json()[0]["service_request_id"]
    logged = city.app.state.broker.store.audit_rows(  # type: ignore[attr-defined]
        where=audit.Filter(who="app#1", action="entity.create"))
    assert any(rid in r.target for r in logged)


def test_listings_filters_and_tokens(city: TestClient) -> None:
    flood = made(city)
    light = made(city, service_code="streetlight", description="Đèn tắt",
                 **{"attribute[depth]": None})
    far = made(city, lat=SON_TRA[0], long=SON_TRA[1], description="Ngập ở Sơn Trà")
    listed = city.get("/open311/v2/requests.json").json()
    assert {r["service_request_id"] for r in listed} == {flood, light, far}
    by_code = city.get("/open311/v2/requests.json?service_code=streetlight").json()
    assert [r["service_request_id"] for r in by_code] == [light]
    near = city.get("/open311/v2/requests.json", params={
        "lat": HAI_CHAU[0], "long": HAI_CHAU[1], "radius": "500"}).json()
    assert {r["service_request_id"] for r in near} == {flood, light}
    # service_request_id overrides every other parameter, in the order given.
    ids = city.get(f"/open311/v2/requests.json?service_request_id={far},{flood}"
                   "&service_code=streetlight").json()
    assert [r["service_request_id"] for r in ids] == [far, flood]
    assert city.get("/open311/v2/requests.json?status=closed").json() == []
    assert len(city.get("/open311/v2/requests.json?status=open,closed").json()) == 3
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert city.get("/open311/v2/requests.json", params={"start_date": tomorrow}).json() == []
    root = ET.fromstring(city.get("/open311/v2/requests.xml").content)
    assert root.tag == "service_requests" and len(root.findall("request")) == 3
    assert root.find("request/zipcode") is not None  # empty, as Open311 shows a blank
    for bad in ({"start_date": "2026-01-01"}, {"status": "pending"}, {"radius": "100"},
                {"lat": "16", "long": "108", "radius": "50000"},
                {"service_code": "potholes"},
                {"start_date": tomorrow, "end_date": datetime.now(UTC).isoformat()},
                {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}):
        assert city.get("/open311/v2/requests.json", params=bad).status_code == 400, bad
    token = report(city, description="token").json()[0]["token"]
    found = city.get(f"/open311/v2/tokens/{token}.json").json()
    assert found[0]["token"] == token
    assert city.get(f"/open311/v2/requests/{found[0]['service_request_id']}").status_code == 200
    assert city.get("/open311/v2/tokens/nope.xml").status_code == 404
    assert city.get("/open311/v2/requests/20990101-ZZZZZZ.json").json()[0]["code"] == 404


def test_warnings_at_a_place(city: TestClient) -> None:
    warning = {"event": "Ngập", "category": "Met", "severity": "Severe",
               "headline": {"vi": "Ngập sâu", "en": "Deep flooding"},
               "area": {"description": "Hải Châu",
                        "circle": {"center": [108.2145, 16.0598], "radiusKm": 1}}}
    assert city.post("/ioc/warnings", json=warning).status_code == 201
    ward = next(e for e in build_demo_city()
                if e["id"] == "urn:ngsi-ld:AdministrativeArea:danang-son-tra")
    polygon = {**warning, "headline": "Sạt lở", "area": {
        "description": "Sơn Trà", "polygon": ward["location"]["value"]}}
    assert city.post("/ioc/warnings", json=polygon).status_code == 201, polygon
    here = city.get("/citizen/warnings", params={"lat": HAI_CHAU[0], "lon": HAI_CHAU[1]})
    assert [m["info"]["headline"]["en"] for m in here.json()] == ["Deep flooding"]
    there = city.get("/citizen/warnings", params={"lat": SON_TRA[0], "lon": SON_TRA[1]})
    assert [m["info"]["headline"]["vi"] for m in there.json()] == ["Sạt lở"]
    assert city.get("/citizen/warnings", params={"lat": "16.5", "lon": "107.5"}).json() == []
    assert city.get("/citizen/warnings", params={"lat": "16"}).status_code == 400
