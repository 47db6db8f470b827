"""What a principal's scope narrows, on both backends: an agency's officer sees and works
its own incidents only, a ward's its ward's; a key for some entity types writes those
only; a tenant's administrator stays in its tenant; a subscription notifies only what its
subscriber may read; the audit log names who acted."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx

from dothi.store import audit
from tests.auth.conftest import Instance, accounts_file
from tests.conftest import streetlight
from tests.receiver import receiver
from tests.server import running_server
from tests.web.test_dashboard_api import events, next_incidents

E = "/ngsi-ld/v1/entities"
FLOOD = {"title": "Ngập", "category": "flooding", "severity": "high",
         "location": {"type": "Point", "coordinates": [108.2145, 16.0598]}}


def incident(s: Instance, agency: str, ward: str) -> str:
    admin = s.headers("system-admin")
    r = s.client.post("/ioc/incidents", json={**FLOOD, "ward": ward, "dedupKey": agency + ward},
                      headers=admin)
    assert r.status_code == 201, r.text
    eid = str(r.json()["id"])
    for status, extra in (("acknowledged", {}), ("assigned", {"agency": agency})):
        r = s.client.post(f"/ioc/incidents/{eid}/status", json={"status": status, **extra},
                          headers=admin)
        assert r.status_code == 200, r.text
    return eid


def ids(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    return {e["id"] for e in r.json()}


def test_an_agency_sees_and_works_its_own_incidents(secured: Instance) -> None:
    s = secured
    ours = incident(s, "transport", "Hải Châu")
    theirs = incident(s, "drainage", "Sơn Trà")
    mine = s.headers("officer")  # of the transport department
    r = s.client.get(E, params={"type": "Incident", "count": "true"}, headers=mine)
    assert ids(r) == {ours} and r.headers["NGSILD-Results-Count"] == "1"
    assert ids(s.client.get("/ioc/incidents", headers=mine)) == {ours}
    assert s.client.get(f"{E}/{theirs}", headers=mine).status_code == 404
    assert s.client.get(f"/ioc/incidents/{theirs}", headers=mine).status_code == 404
    assert s.client.get(f"/ngsi-ld/v1/temporal/entities/{theirs}",
                        headers=mine).status_code == 404
    assert s.client.get(f"/ngsi-ld/v1/temporal/entities/{ours}",
                        headers=mine).status_code == 200
    temporal = s.client.get("/ngsi-ld/v1/temporal/entities", headers=mine,
                            params={"type": "Incident", "lastN": "1"})
    assert ids(temporal) == {ours}
    # Works its own; the other agency's is not its to touch.
    note = {"text": "Đã cử đội xử lý"}
    assert s.client.post(f"/ioc/incidents/{ours}/comments", json=note,
                         headers=mine).status_code == 201
    assert s.client.post(f"/ioc/incidents/{theirs}/comments", json=note,
                         headers=mine).status_code == 403
    before = s.client.get(f"{E}/{theirs}", headers=s.headers("system-admin")).json()
    r = s.client.patch(f"{E}/{theirs}/attrs", headers=mine,
                       json={"status": {"type": "Property", "value": "closed"}})
    assert r.status_code == 403
    # ... nor to hand over to itself.
    r = s.client.post(f"/ioc/incidents/{ours}/status", headers=mine,
                      json={"status": "assigned", "agency": "drainage"})
    assert r.status_code == 403
    assert s.client.get(f"{E}/{theirs}", headers=s.headers("system-admin")).json() == before
    # The other agency sees only its own; the ward's officer only its ward's.
    assert ids(s.client.get(E, params={"type": "Incident"},
                            headers=s.headers("drainage-officer"))) == {theirs}
    assert ids(s.client.get(E, params={"type": "Incident"},
                            headers=s.headers("ward-officer"))) == {ours}
    # The summary's tiles count its own.
    tiles = s.client.get("/ioc/summary", headers=mine).json()
    everyone = s.client.get("/ioc/summary", headers=s.headers("operator")).json()
    assert (tiles["openIncidentsTotal"], everyone["openIncidentsTotal"]) == (1, 2)
    # Open data for the public: no incident at all, and no such type.
    assert ids(s.client.get(E, params={"type": "Incident"})) == set()
    types = s.client.get("/ngsi-ld/v1/types").json()["typeList"]
    assert "Incident" not in types and "Incident" in s.client.get(
        "/ngsi-ld/v1/types", headers=mine).json()["typeList"]


def test_a_key_for_some_types_writes_those_only(secured: Instance) -> None:
    s = secured
    vendor = s.headers("lights-vendor")
    assert s.client.post(E, json=streetlight(7), headers=vendor).status_code == 201
    weather = {"id": "urn:ngsi-ld:WeatherObserved:w1", "type": "WeatherObserved",
               "temperature": {"type": "Property", "value": 31}}
    r = s.client.post(E, json=weather, headers=vendor)
    assert r.status_code == 403
    r = s.client.post("/ngsi-ld/v1/entityOperations/upsert", headers=vendor,
                      json=[streetlight(8), weather])
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Streetlight:dn-8"]
    assert [e["error"]["status"] for e in r.json()["errors"]] == [403]
    assert s.client.get(f"{E}/urn:ngsi-ld:WeatherObserved:w1").status_code == 404
    # Nor can it turn a streetlight into something else.
    r = s.client.post(f"{E}/urn:ngsi-ld:Streetlight:dn-7/attrs", headers=vendor,
                      json={"type": "WeatherObserved"})
    assert r.status_code == 403
    assert s.client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-7").json()["type"] == "Streetlight"


def test_a_tenant_administrator_stays_in_its_tenant(secured: Instance) -> None:
    s = secured
    admin = s.headers("tenant-a-admin")
    here = s.headers("tenant-a-admin", **{"NGSILD-Tenant": "urn:ngsi-ld:tenant:a"})
    assert s.client.post(E, json=streetlight(1), headers=here).status_code == 201
    assert s.client.get(E, params={"type": "Streetlight"}, headers=here).json()
    assert s.client.post(E, json=streetlight(2), headers=admin).status_code == 403
    elsewhere = s.headers("tenant-a-admin", **{"NGSILD-Tenant": "urn:ngsi-ld:tenant:b"})
    assert s.client.post(E, json=streetlight(1), headers=elsewhere).status_code == 403
    assert s.client.get(E, params={"type": "Streetlight"}, headers=admin).status_code == 403


def test_subscriptions_notify_only_what_the_subscriber_may_read(secured: Instance) -> None:
    s = secured
    citizen = s.headers("citizen")
    with receiver() as sink:
        body = {"type": "Subscription", "entities": [{"type": "Incident"},
                                                     {"type": "Streetlight"}],
                "notification": {"endpoint": {"uri": sink.url, "accept": "application/json"}}}
        r = s.client.post("/ngsi-ld/v1/subscriptions", json=body, headers=citizen)
        assert r.status_code == 201, r.text
        sid = r.headers["Location"].rsplit("/", 1)[-1]
        incident(s, "transport", "Hải Châu")  # created, acknowledged, assigned: not sent
        assert s.client.post(E, json=streetlight(3),
                             headers=s.headers("operator")).status_code == 201
        got = sink.next()
        assert [e["id"] for e in got.body["data"]] == ["urn:ngsi-ld:Streetlight:dn-3"]
        # The incident's three changes came before the streetlight: nothing else is queued.
        assert sink.nothing_queued()
    # Its subscription is its own: others' are not there for it, and it may not read who
    # else subscribed; a manager sees them all.
    mine = s.client.get("/ngsi-ld/v1/subscriptions", headers=citizen).json()
    assert [x["id"] for x in mine] == [sid] and "dothi:reader" not in mine[0]
    other = s.client.post("/ngsi-ld/v1/subscriptions", headers=s.headers("operator"),
                          json={**body, "notification": {"endpoint": {
                              "uri": "http://127.0.0.1:9/n"}}})
    oid = other.headers["Location"].rsplit("/", 1)[-1]
    assert s.client.get(f"/ngsi-ld/v1/subscriptions/{oid}", headers=citizen).status_code \
        == 404
    assert s.client.delete(f"/ngsi-ld/v1/subscriptions/{oid}", headers=citizen).status_code \
        == 404
    everyone = s.client.get("/ngsi-ld/v1/subscriptions", headers=s.headers("city-admin"))
    assert {x["id"] for x in everyone.json()} == {sid, oid}


def test_only_managers_have_private_networks_notified(secured: Instance) -> None:
    """Server-side request forgery: a citizen's subscription may not make the platform
    post to its own network (here 10.0.0.0/8, not one of DOTHI_AUTH_PRIVATE_ENDPOINTS)."""
    s = secured
    body = {"type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": "http://10.1.2.3:5432/"}}}
    for who, status in (("citizen", 403), ("operator", 403), ("city-admin", 201)):
        r = s.client.post("/ngsi-ld/v1/subscriptions", json=body, headers=s.headers(who))
        assert r.status_code == status, (who, r.text)
    public = {**body, "notification": {"endpoint": {"uri": "http://93.184.215.14/n"}}}
    r = s.client.post("/ngsi-ld/v1/subscriptions", json=public, headers=s.headers("citizen"))
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].rsplit("/", 1)[-1]
    r = s.client.patch(f"/ngsi-ld/v1/subscriptions/{sid}", headers=s.headers("citizen"),
                       json={"notification": {"endpoint": {"uri": "mqtt://[::1]:1883/t"}}})
    assert r.status_code == 403
    r = s.client.post("/ngsi-ld/v1/subscriptions", headers=s.headers("citizen"), json={
        **body, "notification": {"endpoint": {"uri": "http://no-such-host.invalid/n"}}})
    assert r.status_code == 400


class _Redirect(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", "http://10.1.2.3/context.jsonld")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_public_cannot_have_contexts_fetched_from_private_networks(
        secured: Instance) -> None:
    """A Link header's @context is fetched by the server: not from its own network for
    someone who does not manage it, nor through a redirect there."""
    s = secured
    s.client.app.state.broker.cache.fetch_enabled = True  # type: ignore[attr-defined]

    def link(url: str) -> dict[str, str]:
        return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                        'type="application/ld+json"'}

    r = s.client.get(E, params={"type": "Streetlight"},
                     headers=link("http://10.1.2.3/context.jsonld"))
    assert r.status_code == 403 and "private network" in r.json()["detail"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        here = f"http://127.0.0.1:{server.server_address[1]}/context.jsonld"
        r = s.client.get(E, params={"type": "Streetlight"}, headers=link(here))
        assert r.status_code == 403 and "10.1.2.3" in r.json()["detail"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_audit_log_names_who_acted(secured: Instance) -> None:
    s = secured
    assert s.client.post(E, json=streetlight(4), headers=s.headers("operator")).status_code \
        == 201
    store = s.client.app.state.broker.store  # type: ignore[attr-defined]
    rows = store.audit_rows(limit=10, where=audit.Filter(
        target="urn:ngsi-ld:Streetlight:dn-4", newest_first=True))
    assert [(r.who, r.action) for r in rows] == [("key:operator", "entity.create")]


def test_an_agencys_dashboard_feed_shows_its_own_incidents(tmp_path: Path) -> None:
    """The live feed of a real server: the drainage company's officer follows it while
    incidents of two agencies are opened and assigned; only its own reaches it."""
    keys = accounts_file(tmp_path / "accounts.yaml")
    env = {"DOTHI_AUTH_ANONYMOUS": "public",
           "DOTHI_AUTH_ACCOUNTS": str(tmp_path / "accounts.yaml"),
           "DOTHI_AUTH_KEY_FILE": str(tmp_path / "auth.key")}
    admin = {"Authorization": f"Bearer {keys['system-admin']}"}
    officer = {"Authorization": f"Bearer {keys['drainage-officer']}"}
    with running_server(tmp_path / "feed.db", env=env) as url, \
            httpx.Client(base_url=url, timeout=20) as http, \
            http.stream("GET", "/ioc/stream", headers=officer) as response:
        assert http.get("/ioc/stream", headers={}).status_code == 401
        stream = events(response)
        assert next_incidents(stream)["changed"] == []
        made = {}
        for agency in ("transport", "drainage"):
            eid = http.post("/ioc/incidents", headers=admin,
                            json={**FLOOD, "ward": "Hải Châu", "dedupKey": agency}).json()["id"]
            for status, extra in (("acknowledged", {}), ("assigned", {"agency": agency})):
                r = http.post(f"/ioc/incidents/{eid}/status", headers=admin,
                              json={"status": status, **extra})
                assert r.status_code == 200, r.text
            made[agency] = eid
        seen: set[str] = set()
        while made["drainage"] not in seen:  # each event waits 20 s at most
            seen |= {i["id"] for i in next_incidents(stream)["changed"]}
        assert made["transport"] not in seen
