"""Each role, allowed and denied, on each API (issue 10's test matrix).

The expected table is written out here by hand, row by row, from what each role is for;
the policy (dothi/auth/policy.yaml) must agree with it. A denied request gets 401 when it
showed no credential and 403 when it did, and changes nothing; an entity the role may not
read is simply not there for it (404). An allowed request may still fail for what it
asks (a review of nothing is 409): only its access is tested here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from tests.auth.conftest import ROLES, Instance, accounts_file, secured_settings
from tests.conftest import streetlight

E = "/ngsi-ld/v1/entities"
ALL = frozenset(ROLES)
ADMINS = frozenset({"city-admin", "system-admin"})
STAFF = frozenset({"officer", "operator"}) | ADMINS  # read internal types, write entities
SUBSCRIBERS = STAFF | {"citizen"}
REPORTERS = ALL - {"assessor"}
OPERATORS = ADMINS | {"operator"}
UNITS = ADMINS | {"reporter"}  # a province's reporter, for its own province (48)


@dataclass(frozen=True)
class Op:
    api: str
    what: str
    allowed: frozenset[str]
    call: Callable[[TestClient, str, dict[str, str]], httpx.Response]
    hidden_is_404: bool = False  # a denied read finds nothing instead of 401/403


def light(role: str, suffix: str) -> str:
    return f"urn:ngsi-ld:Streetlight:{role}-{suffix}"


def ld(body: Any) -> dict[str, Any]:
    return {"json": body}


OPS = [
    Op("NGSI-LD", "read an entity", ALL,
       lambda c, r, h: c.get(f"{E}/urn:ngsi-ld:Streetlight:dn-1", headers=h)),
    Op("NGSI-LD", "query entities", ALL,
       lambda c, r, h: c.get(E, params={"type": "Streetlight"}, headers=h)),
    Op("NGSI-LD", "read an incident", STAFF,
       lambda c, r, h: c.get(f"{E}/{INCIDENTS['transport']}", headers=h), hidden_is_404=True),
    Op("NGSI-LD", "create an entity", STAFF,
       lambda c, r, h: c.post(E, json=streetlight(id=light(r, "new")), headers=h)),
    Op("NGSI-LD", "update attributes", STAFF,
       lambda c, r, h: c.patch(f"{E}/{light(r, 'u')}/attrs", headers=h,
                               json={"powerState": {"type": "Property", "value": "off"}})),
    Op("NGSI-LD", "delete an entity", STAFF,
       lambda c, r, h: c.delete(f"{E}/{light(r, 'd')}", headers=h)),
    Op("NGSI-LD", "batch upsert", STAFF,
       lambda c, r, h: c.post("/ngsi-ld/v1/entityOperations/upsert", headers=h,
                              json=[streetlight(id=light(r, "batch"))])),
    Op("NGSI-LD", "read a history", ALL,
       lambda c, r, h: c.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Streetlight:dn-1",
                             headers=h)),
    Op("NGSI-LD", "list entity types", ALL,
       lambda c, r, h: c.get("/ngsi-ld/v1/types", headers=h)),
    Op("NGSI-LD", "subscribe", SUBSCRIBERS,
       lambda c, r, h: c.post("/ngsi-ld/v1/subscriptions", headers=h, json={
           "type": "Subscription", "entities": [{"type": "Streetlight"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}})),
    Op("NGSI-LD", "register a context source", ADMINS,
       lambda c, r, h: c.post("/ngsi-ld/v1/csourceRegistrations", headers=h, json={
           "type": "ContextSourceRegistration", "information": [
               {"entities": [{"type": "Streetlight"}]}],
           "endpoint": "http://127.0.0.1:9"})),
    Op("NGSI-LD", "list context sources", ADMINS,
       lambda c, r, h: c.get("/ngsi-ld/v1/csourceRegistrations", params={"type": "Streetlight"},
                             headers=h)),
    Op("NGSI-LD", "add an @context", ADMINS,
       lambda c, r, h: c.post("/ngsi-ld/v1/jsonldContexts", headers=h,
                              json={"@context": {"x": f"https://example.vn/{r}#x"}})),
    Op("OGC API", "list collections", ALL, lambda c, r, h: c.get("/ogc/collections",
                                                                 headers=h)),
    Op("Open311", "report a problem", REPORTERS,
       lambda c, r, h: c.post("/open311/v2/requests.json", headers=h, data={
           "service_code": "waste", "lat": "16.0598", "long": "108.2145",
           "description": f"Rác tồn ({r})"})),
    Op("Open311", "read the reports", ALL,
       lambda c, r, h: c.get("/open311/v2/requests.json", headers=h)),
    Op("Open311", "see who reported", OPERATORS,
       lambda c, r, h: c.get(f"/ioc/service-requests/{REPORT[0]}/reporter", headers=h)),
    Op("Open311", "erase who reported", ADMINS,
       lambda c, r, h: c.delete("/ioc/service-requests/20260101-NOSUCH/reporter",
                                headers=h)),
    Op("CAP", "issue a warning", OPERATORS,
       lambda c, r, h: c.post("/ioc/warnings", headers=h, json=WARNING)),
    Op("CAP", "read the warnings", ALL, lambda c, r, h: c.get("/ioc/warnings", headers=h)),
    Op("CAP", "the warnings' Atom feed", ALL,
       lambda c, r, h: c.get("/ioc/warnings/feed.atom", headers=h)),
    Op("IOC", "open an incident", OPERATORS,  # an officer only within its agency
       lambda c, r, h: c.post("/ioc/incidents", headers=h, json=FLOOD)),
    Op("IOC", "list incidents", STAFF, lambda c, r, h: c.get("/ioc/incidents", headers=h)),
    Op("IOC", "comment on an incident", STAFF,
       lambda c, r, h: c.post(f"/ioc/incidents/{INCIDENTS['transport']}/comments",
                              headers=h, json={"text": f"{r} đã đến hiện trường"})),
    Op("IOC", "add a rule", ADMINS,
       lambda c, r, h: c.post("/ioc/rules", headers=h, json={"id": "bad"})),
    Op("IOC", "the operations summary", STAFF,
       lambda c, r, h: c.get("/ioc/summary", headers=h)),
    Op("Web", "the operations dashboard", STAFF,
       lambda c, r, h: c.get("/ioc/dashboard", headers=h, follow_redirects=False)),
    Op("IoT", "list service groups", ADMINS, lambda c, r, h: c.get("/iot/services",
                                                                   headers=h)),
    Op("KPI", "read indicator values", ALL,
       lambda c, r, h: c.get("/kpi/values", params={"city": "hue"}, headers=h)),
    Op("KPI", "enter an indicator value", ADMINS,
       lambda c, r, h: c.post("/kpi/values", headers=h, json={
           "city": "hue", "period": "2025", "code": "SC: SH: SA: 9C", "numerator": 41,
           "denominator": 652572, "evidence": "https://example.vn/atgt.pdf"})),
    Op("KPI", "review a self-assessment", frozenset({"assessor", "system-admin"}),
       lambda c, r, h: c.post("/kpi/assessment/review", headers=h,
                              params={"city": "hue", "period": "2025"},
                              json={"decision": "accept"})),
    Op("Registers", "register a record", ADMINS,
       lambda c, r, h: c.post("/registry/registers/plan/records", headers=h, json={})),
    Op("Planning", "comment on a plan", REPORTERS,
       lambda c, r, h: c.post("/planning/consultations/nosuch/comments", headers=h,
                              json={"text": "Ý kiến"})),
    Op("Planning", "moderate comments", ADMINS,
       lambda c, r, h: c.get("/planning/consultations/nosuch/moderation", headers=h)),
    Op("Programme", "read the tasks", ALL, lambda c, r, h: c.get("/program/tasks", headers=h)),
    Op("Programme", "report a task's progress", UNITS,
       lambda c, r, h: c.post("/program/tasks/48-2026-1/progress", headers=h,
                              json={"progress": 10})),
    Op("Programme", "ask the provinces for a report", ADMINS,
       lambda c, r, h: c.post("/program/requests", headers=h, json={})),
    Op("Programme", "write a province's report", UNITS,
       lambda c, r, h: c.put("/program/reports/nosuch/48", headers=h, json={})),
    Op("Programme", "write another province's report", ADMINS,
       lambda c, r, h: c.put("/program/reports/nosuch/46", headers=h, json={})),
    Op("Programme", "review a province's report", ADMINS,
       lambda c, r, h: c.post("/program/reports/nosuch/48/review", headers=h,
                              json={"decision": "accept"})),
    Op("Programme", "submit an action plan", UNITS,
       lambda c, r, h: c.put("/program/plans/48/2026", headers=h, json={})),
    Op("Programme", "draft a provincial scheme", UNITS,
       lambda c, r, h: c.put("/program/schemes/48/de-an", headers=h, json={})),
    Op("Programme", "comment on a scheme", REPORTERS,
       lambda c, r, h: c.post("/program/schemes/48/nosuch/comments", headers=h,
                              json={"text": "Ý kiến"})),
    Op("Programme", "rank pilot candidates", ALL,
       lambda c, r, h: c.get("/program/pilots", headers=h)),
    Op("Programme", "record a pilot decision", ADMINS,
       lambda c, r, h: c.post("/program/pilots/nosuch/decision", headers=h, json={})),
    Op("Web", "the national dashboard", ALL,
       lambda c, r, h: c.get("/program/dashboard", headers=h)),
    Op("Meta", "read the settings", ADMINS, lambda c, r, h: c.get("/-/settings", headers=h)),
    Op("Sign-in", "who am I", ALL, lambda c, r, h: c.get("/auth/me", headers=h)),
]
FLOOD = {"title": "Ngập sâu 40 cm", "category": "flooding", "severity": "high",
         "ward": "Hải Châu", "location": {"type": "Point", "coordinates": [108.2145, 16.0598]}}
WARNING = {
    "event": {"vi": "Ngập lụt đô thị", "en": "Urban flooding"},
    "category": "Met", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
    "headline": {"vi": "Ngập sâu", "en": "Deep flooding"},
    "description": {"vi": "Mực nước 0,4 m.", "en": "Water 0.4 m deep."},
    "area": {"description": {"vi": "Phường Hải Châu", "en": "Hai Chau ward"},
             "circle": {"lat": 16.06, "lon": 108.21, "radiusKm": 1.5}}}
INCIDENTS: dict[str, str] = {}  # agency -> an incident assigned to it
REPORT: list[str] = []


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    folder: Path = tmp_path_factory.mktemp("matrix")
    keys = accounts_file(folder / "accounts.yaml")
    settings = secured_settings(f"sqlite:///{folder / 'matrix.db'}", folder)
    with TestClient(create_app(settings)) as client:
        made = Instance(client, settings, keys)
        admin = made.headers("system-admin")
        rows = [streetlight()] + [streetlight(id=light(r, s)) for r in ROLES for s in "ud"]
        assert client.post("/ngsi-ld/v1/entityOperations/create", json=rows,
                           headers=admin).status_code == 201
        for agency in ("transport", "drainage"):
            r = client.post("/ioc/incidents", json={**FLOOD, "dedupKey": agency},
                            headers=admin)
            INCIDENTS[agency] = r.json()["id"]
            for status, extra in (("acknowledged", {}), ("assigned", {"agency": agency})):
                assert client.post(f"/ioc/incidents/{INCIDENTS[agency]}/status",
                                   json={"status": status, **extra},
                                   headers=admin).status_code == 200
        r = client.post("/open311/v2/requests.json", data={
            "service_code": "waste", "lat": "16.0598", "long": "108.2145",
            "description": "Rác", "email": "hoa@example.vn"})
        assert r.status_code == 201, r.text
        REPORT.append(r.json()[0]["service_request_id"])
        r = client.put("/program/tasks/48-2026-1", headers=admin, json={
            "unit": "48", "name": "Nền tảng dữ liệu", "description": "Triển khai",
            "deadline": "2030-12-31", "responsiblePerson": "Giám đốc Sở KH&CN",
            "responsibility": "Sở KH&CN", "authority": "UBND thành phố",
            "expectedProduct": "Nền tảng", "leadAgency": "Sở KH&CN"})
        assert r.status_code == 200, r.text
        yield made


def _audit_rows(instance: Instance) -> int:
    return len(instance.client.app.state.broker.store.audit_rows(  # type: ignore[attr-defined]
        limit=1_000_000))


@pytest.mark.parametrize("op", OPS, ids=[f"{o.api}: {o.what}" for o in OPS])
@pytest.mark.parametrize("role", ROLES)
def test_role_on_api(instance: Instance, role: str, op: Op) -> None:
    before = _audit_rows(instance)
    r = op.call(instance.client, role, instance.headers(role))
    assert r.status_code < 500, r.text
    if role in op.allowed:
        assert r.status_code not in (401, 403) and r.status_code != 303, \
            f"{role} may {op.what}: {r.status_code} {r.text[:300]}"
        return
    if op.hidden_is_404:
        assert r.status_code == 404, r.text
    elif op.api == "Web":
        assert r.status_code == 303 and r.headers["location"].startswith("/auth/login")
    else:
        assert r.status_code == (401 if role == "public" else 403), \
            f"{role} may not {op.what}: {r.status_code} {r.text[:300]}"
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
    # A refusal writes nothing (a read of personal data would be audited too).
    assert _audit_rows(instance) == before


def test_the_policy_agrees_with_the_matrix(instance: Instance) -> None:
    """Each role's actions, as /auth/me tells them, are those the rows above assume."""
    expected = {
        "public": {"read", "report", "comment"},
        "citizen": {"read", "subscribe", "report", "comment"},
        "reporter": {"read", "report", "comment", "programme"},
        "assessor": {"read", "assess"},
        "officer": {"read", "read-internal", "write", "subscribe", "handle-incidents",
                    "report", "comment"},
        "operator": {"read", "read-internal", "write", "subscribe", "handle-incidents",
                     "warn", "read-personal", "report", "comment"},
        "city-admin": {"read", "read-internal", "write", "subscribe", "manage",
                       "handle-incidents", "warn", "read-personal", "erase-personal",
                       "enter", "report", "comment", "programme", "coordinate"},
    }
    for role, actions in expected.items():
        me = instance.client.get("/auth/me", headers=instance.headers(role)).json()
        assert (me["role"], set(me["may"])) == (role, actions)
        assert me["identified"] is (role != "public")


def matrix_markdown() -> str:
    """The table above as docs/trust.md shows it: one row per operation, one column per
    role, ✓ allowed, · denied."""
    short = {"public": "public", "citizen": "citizen", "reporter": "reporter",
             "assessor": "assessor",
             "officer": "officer", "operator": "operator", "city-admin": "city admin",
             "system-admin": "system admin"}
    lines = ["| API | operation | " + " | ".join(short[r] for r in ROLES) + " |",
             "|---|---|" + "---|" * len(ROLES)]
    for op in OPS:
        marks = " | ".join("✓" if r in op.allowed else "·" for r in ROLES)
        lines.append(f"| {op.api} | {op.what} | {marks} |")
    return "\n".join(lines) + "\n"


def test_the_documented_matrix_is_this_one() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "trust.md").read_text("utf-8")
    assert matrix_markdown() in docs, "docs/trust.md's role matrix: paste matrix_markdown()"
