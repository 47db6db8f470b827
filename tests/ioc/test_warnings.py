"""Public warnings as CAP 1.2, on both store backends: issued by hand and from an incident,
every message checked here against the OASIS schema with lxml, updates and cancellations
referencing what they replace, the Atom feed, and a subscription pushing them on."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from lxml import etree

from dothi.ioc.cap import SCHEMA
from tests.ioc.test_incidents import open_incident
from tests.receiver import receiver

CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}
RING = [[108.20, 16.05], [108.23, 16.05], [108.23, 16.08], [108.20, 16.08], [108.20, 16.05]]
WARNING = {
    "event": {"vi": "Ngập lụt đô thị", "en": "Urban flooding"},
    "category": "Met", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
    "headline": {"vi": "Ngập sâu tại phường Hải Châu", "en": "Deep flooding in Hai Chau"},
    "description": {"vi": "Mực nước 0,4 m trên nhiều tuyến đường.",
                    "en": "Water 0.4 m deep on several streets."},
    "instruction": {"vi": "Hạn chế đi lại; không đi qua vùng nước chảy xiết.",
                    "en": "Avoid travel; do not cross moving water."},
    "area": {"description": {"vi": "Phường Hải Châu", "en": "Hai Chau ward"},
             "polygon": {"type": "Polygon", "coordinates": [RING]}},
}


def schema_errors(xml: bytes) -> list[str]:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    ok = schema.validate(etree.fromstring(xml))
    return [] if ok else [str(e) for e in schema.error_log]


def issue(client: TestClient, body: dict[str, Any]) -> str:
    r = client.post("/ioc/warnings", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["identifier"])


def xml_of(client: TestClient, identifier: str) -> Any:
    r = client.get(f"/ioc/warnings/{identifier}.xml")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/cap+xml"
    assert schema_errors(r.content) == []
    return etree.fromstring(r.content)


def test_a_warning_is_valid_cap_in_vietnamese_and_english(client: TestClient) -> None:
    identifier = issue(client, WARNING)
    alert = xml_of(client, identifier)
    assert alert.findtext("cap:identifier", namespaces=CAP) == identifier
    assert alert.findtext("cap:msgType", namespaces=CAP) == "Alert"
    assert alert.findtext("cap:sent", namespaces=CAP).endswith("+00:00")
    infos = alert.findall("cap:info", namespaces=CAP)
    assert [i.findtext("cap:language", namespaces=CAP) for i in infos] == ["vi-VN", "en-US"]
    assert infos[0].findtext("cap:headline", namespaces=CAP) == "Ngập sâu tại phường Hải Châu"
    assert infos[1].findtext("cap:areaDesc", namespaces=CAP) is None  # it is in area
    assert infos[1].findtext("cap:area/cap:areaDesc", namespaces=CAP) == "Hai Chau ward"
    polygon = infos[0].findtext("cap:area/cap:polygon", namespaces=CAP)
    assert polygon.split()[0] == "16.05,108.2" and polygon.split()[0] == polygon.split()[-1]
    # The warning is an entity too: geo-queryable, with its headline in both languages.
    r = client.get("/ngsi-ld/v1/entities", params={
        "type": "CapAlert", "georel": "intersects", "geometry": "Point",
        "coordinates": "[108.215,16.06]", "options": "keyValues", "lang": "en"})
    assert [e["headline"] for e in r.json()] == ["Deep flooding in Hai Chau"]


def test_a_warning_from_an_incident(client: TestClient) -> None:
    eid = open_incident(client, severity="critical")
    identifier = issue(client, {"incident": eid, "instruction": "Sơ tán / Evacuate"})
    alert = xml_of(client, identifier)
    info = alert.find("cap:info", namespaces=CAP)
    assert info.findtext("cap:severity", namespaces=CAP) == "Extreme"
    assert info.findtext("cap:category", namespaces=CAP) == "Met"
    assert info.findtext("cap:area/cap:circle", namespaces=CAP) == "16.0598,108.2145 1"
    assert info.findtext("cap:area/cap:areaDesc", namespaces=CAP) == "Hải Châu"
    r = client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:CapAlert:{identifier}")
    assert r.json()["refIncident"]["object"] == eid
    assert client.post("/ioc/warnings", json={"incident": "urn:x:1"}).status_code == 400


def test_updates_and_cancellations_reference_what_they_replace(client: TestClient) -> None:
    first = issue(client, WARNING)
    r = client.post(f"/ioc/warnings/{first}/update",
                    json={"severity": "Extreme", "urgency": "Immediate"})
    assert r.status_code == 201, r.text
    second = r.json()["identifier"]
    alert = xml_of(client, second)
    assert alert.findtext("cap:msgType", namespaces=CAP) == "Update"
    refs = alert.findtext("cap:references", namespaces=CAP)
    assert refs.startswith("ioc@dothi.local," + first + ",")
    assert [w["identifier"] for w in client.get("/ioc/warnings").json()] == [second]
    r = client.post(f"/ioc/warnings/{second}/cancel", json={"note": "Nước đã rút"})
    assert r.status_code == 201
    third = r.json()["identifier"]
    alert = xml_of(client, third)
    assert alert.findtext("cap:msgType", namespaces=CAP) == "Cancel"
    assert alert.findtext("cap:note", namespaces=CAP) == "Nước đã rút"
    assert len(alert.findtext("cap:references", namespaces=CAP).split()) == 2
    feed = client.get("/ioc/warnings/feed.atom")
    assert feed.headers["content-type"] == "application/atom+xml"
    entries = etree.fromstring(feed.content).findall("a:entry", namespaces=ATOM)
    assert [e.findtext("a:title", namespaces=ATOM).split(":")[0] for e in entries] == [
        "Cancel"]
    link = entries[0].find("a:link", namespaces=ATOM).get("href")
    assert link.endswith(f"/ioc/warnings/{third}.xml")
    assert client.post("/ioc/warnings/nope/update", json={}).status_code == 404


def test_bad_warnings_are_refused_and_nothing_is_stored(client: TestClient) -> None:
    open_ring = {"type": "Polygon", "coordinates": [RING[:-1]]}
    for change, words in [
        ({"severity": "Terrible"}, "severity must be one of"),
        ({"headline": None}, "headline is a text"),
        ({"headline": {"vi": "chỉ tiếng Việt"}}, "with both"),
        ({"area": {"description": "x", "polygon": open_ring}}, "closed"),
        ({"area": {"description": "x", "circle": {"center": [108.2, 16.0],
                                                  "radiusKm": -1}}}, "radiusKm"),
        ({"expires": "2001-01-01T00:00:00Z"}, "in the past"),
        ({"colour": "red"}, "Unknown members"),
    ]:
        body = {k: v for k, v in {**WARNING, **change}.items() if v is not None}
        r = client.post("/ioc/warnings", json=body)
        assert r.status_code == 400, (change, r.text)
        assert words in r.json()["detail"], r.json()
    assert client.get("/ioc/warnings").json() == []


def test_a_subscription_pushes_warnings_on(client: TestClient) -> None:
    with receiver() as rec:
        r = client.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "CapAlert"}],
            "notification": {"endpoint": {"uri": rec.url},
                             "attributes": ["headline", "severity", "msgType"]}})
        assert r.status_code == 201, r.text
        identifier = issue(client, WARNING)
        note = rec.next()
        data = note.body["data"][0]
        assert data["id"] == f"urn:ngsi-ld:CapAlert:{identifier}"
        assert data["severity"]["value"] == "Severe"


def test_the_cap_checker_expands_no_entities_and_fetches_nothing() -> None:
    """The one XML parser of the platform (CAP's schema check) reads no DTD entities, so
    a billion laughs stays a few bytes, and no external entity is fetched or read."""
    from dothi.ioc.cap import validate

    laughs = (b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "haha">'
              + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + n]), (b"&%s;" % bytes([97 + n])) * 10)
                         for n in range(9))
              + b']><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&j;</alert>')
    problems = validate(laughs)
    assert problems and all("haha" not in p for p in problems)
    secret = b'<!DOCTYPE alert [<!ENTITY s SYSTEM "file:///etc/passwd">]>' \
             b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&s;</alert>'
    assert all("root:" not in p for p in validate(secret))
