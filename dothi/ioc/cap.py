"""Public warnings as CAP 1.2 (OASIS Common Alerting Protocol) alerts: one ``CapAlert``
entity per message (so subscriptions push them to any channel, webhook or MQTT, and the
temporal API keeps them), rendered as CAP XML that is checked against the official schema
(``schemas/CAP-v1.2.xsd``) before anything is stored, and listed in an Atom feed.

A warning has one ``info`` block per language, Vietnamese first, then English, and one
area (a GeoJSON polygon or a circle, and a description such as the wards it covers). An
update or a cancellation is a new message whose ``references`` names the one it replaces.
"""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, BadRequestData, ResourceNotFound, only_members
from dothi.ngsild.entity import expand_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA = Path(__file__).with_name("schemas") / "CAP-v1.2.xsd"
ALERT_TYPE = "CapAlert"
LANGUAGES = ("vi-VN", "en-US")
URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
              "Transport", "Infra", "CBRNE", "Other")
# From an incident's category and severity to CAP's.
FROM_CATEGORY = {"flooding": "Met", "airQuality": "Env", "traffic": "Transport",
                 "lighting": "Infra", "waste": "Env", "water": "Health", "device": "Infra",
                 "other": "Other"}
FROM_SEVERITY = {"critical": "Extreme", "high": "Severe", "medium": "Moderate",
                 "low": "Minor", "informational": "Minor"}


class WarningDesk:
    def __init__(self, broker: Broker, sender: str) -> None:
        self.broker = broker
        self.sender = sender
        self.ctx = broker.resolver.core

    # -- making messages --------------------------------------------------------------

    def issue(self, tenant: str, body: Any, *, incident: dict | None = None,
              now: datetime | None = None) -> str:
        """A new alert (msgType Alert); returns its identifier."""
        return self._store(tenant, self._message(body, "Alert", None, incident, now))

    def update(self, tenant: str, identifier: str, body: Any,
               now: datetime | None = None) -> str:
        old = self.get(tenant, identifier)
        merged = {**old["input"], **(body if isinstance(body, dict) else {})}
        return self._store(tenant, self._message(merged, "Update", old, None, now))

    def cancel(self, tenant: str, identifier: str, note: Any = None,
               now: datetime | None = None) -> str:
        old = self.get(tenant, identifier)
        body = {**old["input"]}
        if note is not None:
            body["note"] = note
        return self._store(tenant, self._message(body, "Cancel", old, None, now))

    def _message(self, body: Any, kind: str, previous: dict | None, incident: dict | None,
                 now: datetime | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequestData("A warning is a JSON object")
        allowed = {"event", "category", "urgency", "severity", "certainty", "headline",
                   "description", "instruction", "area", "expires", "status", "note",
                   "incident", "web"}
        only_members(body, allowed, f"; allowed: {sorted(allowed)}")
        given = dict(body)
        if incident is not None:
            # What the operator did not say is taken from the incident.
            given.setdefault("category", FROM_CATEGORY.get(incident["category"], "Other"))
            given.setdefault("severity", FROM_SEVERITY.get(incident["severity"], "Unknown"))
            given.setdefault("event", incident["event"])
            given.setdefault("headline", incident["event"])
            given.setdefault("incident", incident["id"])
            where = incident.get("location")
            if "area" not in given and isinstance(where, dict):
                area: dict[str, Any] = {"description": incident["areaDesc"]}
                if where.get("type") == "Polygon":
                    area["polygon"] = where
                elif where.get("type") == "Point":
                    area["circle"] = {"center": where["coordinates"], "radiusKm": 1}
                given["area"] = area
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        status = given.get("status", "Actual")
        if status not in ("Actual", "Exercise", "System", "Test", "Draft"):
            raise BadRequestData("status is Actual, Exercise, System, Test or Draft")
        info = {
            "category": _one_of(given.get("category"), CATEGORIES, "category"),
            "event": _texts(given.get("event"), "event", required=True),
            "urgency": _one_of(given.get("urgency", "Immediate"), URGENCY, "urgency"),
            "severity": _one_of(given.get("severity"), SEVERITY, "severity"),
            "certainty": _one_of(given.get("certainty", "Observed"), CERTAINTY, "certainty"),
            "headline": _texts(given.get("headline"), "headline", required=True),
            "description": _texts(given.get("description"), "description"),
            "instruction": _texts(given.get("instruction"), "instruction"),
        }
        expires = given.get("expires")
        if expires is not None:
            expires_at = _when(expires, "expires")
            if expires_at <= when:
                raise BadRequestData("expires is in the past")
        else:
            expires_at = when + timedelta(hours=24)
        area = _area(given.get("area"))
        identifier = f"dothi-{uuid.uuid4().hex}"
        message = {
            "identifier": identifier, "sender": self.sender, "sent": _cap_time(when),
            "status": status, "msgType": kind, "scope": "Public",
            "note": given.get("note") if isinstance(given.get("note"), str) else None,
            "references": None if previous is None else " ".join(
                [*(previous["references"] or "").split(),
                 f"{previous['sender']},{previous['identifier']},{previous['sent']}"]),
            "info": info, "expires": _cap_time(expires_at), "area": area,
            "web": given.get("web") if isinstance(given.get("web"), str) else None,
            "incident": given.get("incident") or (previous or {}).get("incident"),
            "input": {k: v for k, v in given.items() if k != "note"},
        }
        problems = validate(to_xml(message))
        if problems:
            raise BadRequestData("The warning is not valid CAP 1.2: " + "; ".join(problems))
        return message

    def _store(self, tenant: str, message: dict[str, Any]) -> str:
        eid = entity_id(message["identifier"])
        geometry = message["area"]["geometry"]
        body = {
            "id": eid, "type": ALERT_TYPE,
            "cap": {"type": "Property", "value": message},
            "msgType": {"type": "Property", "value": message["msgType"]},
            "severity": {"type": "Property", "value": message["info"]["severity"]},
            "headline": {"type": "LanguageProperty",
                         "languageMap": message["info"]["headline"]},
            "expires": {"type": "Property", "value": {"@type": "DateTime",
                                                      "@value": _iso(message["expires"])}},
            "location": {"type": "GeoProperty", "value": geometry},
        }
        if message["incident"]:
            body["refIncident"] = {"type": "Relationship", "object": message["incident"]}
        doc = expand_entity(body, self.ctx, now_iso())

        def create(old: dict | None) -> dict:
            if old is not None:
                raise AlreadyExists(f"Warning {message['identifier']} exists")
            return doc

        self.broker.apply_one(tenant, eid, create)
        return str(message["identifier"])

    # -- reading ----------------------------------------------------------------------

    def get(self, tenant: str, identifier: str) -> dict[str, Any]:
        doc = self.broker.store.get(tenant, entity_id(identifier))
        if doc is None:
            raise ResourceNotFound(f"No warning {identifier}")
        return doc[self.ctx.expand("cap")][0]["value"]  # type: ignore[no-any-return]

    def current(self, tenant: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The messages in force: not expired, not updated or cancelled since, newest
        first (a cancellation stays listed until it expires, so readers learn of it)."""
        query = EntityQuery(selectors=[Selector(types=parse_type_expr(
            ALERT_TYPE, self.ctx.expand))], limit=10_000)
        docs, _ = self.broker.store.query(tenant, query)
        messages = [d[self.ctx.expand("cap")][0]["value"] for d in docs]
        replaced = {ref.split(",")[1] for m in messages
                    for ref in (m.get("references") or "").split()}
        stamp = _cap_time((now or datetime.now(UTC)).replace(microsecond=0))
        live = [m for m in messages if m["identifier"] not in replaced
                and _iso(m["expires"]) > _iso(stamp)]
        return sorted(live, key=lambda m: _iso(m["sent"]), reverse=True)

    def covering(self, tenant: str, lon: float, lat: float,
                 now: datetime | None = None) -> list[dict[str, Any]]:
        """The messages in force whose area holds the point (a citizen's place)."""
        here = Point(lon, lat)
        out = []
        for message in self.current(tenant, now):
            area = message["area"]
            if "circle" in area:
                center, radius = area["circle"].split(" ")
                clat, clon = (float(v) for v in center.split(","))
                if _km(clon, clat, lon, lat) <= float(radius):
                    out.append(message)
            elif shape(area["geometry"]).covers(here):
                out.append(message)
        return out


def entity_id(identifier: str) -> str:
    return f"urn:ngsi-ld:CapAlert:{identifier}"


# -- CAP XML --------------------------------------------------------------------------------


def to_xml(message: dict[str, Any]) -> bytes:
    """The message as CAP 1.2 XML, elements in the schema's order."""
    ET.register_namespace("", CAP_NS)

    def add(parent: ET.Element, name: str, text: Any) -> None:
        if text is not None and text != "":
            ET.SubElement(parent, f"{{{CAP_NS}}}{name}").text = str(text)

    alert = ET.Element(f"{{{CAP_NS}}}alert")
    for name in ("identifier", "sender", "sent", "status", "msgType"):
        add(alert, name, message[name])
    add(alert, "scope", message["scope"])
    add(alert, "note", message.get("note"))
    add(alert, "references", message.get("references"))
    info = message["info"]
    for lang_index, language in enumerate(LANGUAGES):
        key = language[:2]
        block = ET.SubElement(alert, f"{{{CAP_NS}}}info")
        add(block, "language", language)
        add(block, "category", info["category"])
        add(block, "event", _pick(info["event"], key))
        for name in ("urgency", "severity", "certainty"):
            add(block, name, info[name])
        add(block, "expires", message["expires"])
        add(block, "senderName", "Trung tâm IOC" if lang_index == 0 else "Operations centre")
        for name in ("headline", "description", "instruction"):
            add(block, name, _pick(info[name], key))
        add(block, "web", message.get("web"))
        area = ET.SubElement(block, f"{{{CAP_NS}}}area")
        add(area, "areaDesc", _pick(message["area"]["description"], key))
        add(area, "polygon", message["area"].get("polygon"))
        add(area, "circle", message["area"].get("circle"))
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True)


@cache
def _schema() -> Any:
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def validate(xml: bytes) -> list[str]:
    """What the CAP 1.2 schema finds wrong with ``xml`` (empty if nothing)."""
    from lxml import etree

    # No DTD entities and no network: a billion laughs or an external entity is refused.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    schema = _schema()
    try:
        if schema.validate(etree.fromstring(xml, parser)):
            return []
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    except etree.XMLSchemaValidateError as exc:  # e.g. an entity left unresolved
        return [f"cannot be checked: {exc}"]
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def atom_feed(messages: list[dict[str, Any]], base_url: str, now: datetime) -> bytes:
    """An Atom feed of the messages in force, each entry linking to its CAP XML."""
    ns = "http://www.w3.org/2005/Atom"
    ET.register_namespace("", ns)
    feed = ET.Element(f"{{{ns}}}feed")

    def add(parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ns}}}{name}", attrs)
        el.text = text
        return el

    add(feed, "id", f"{base_url}/ioc/warnings/feed.atom")
    add(feed, "title", "Cảnh báo công cộng / Public warnings")
    add(feed, "updated", _cap_time(now.replace(microsecond=0)))
    add(feed, "link", "", rel="self", href=f"{base_url}/ioc/warnings/feed.atom")
    author = ET.SubElement(feed, f"{{{ns}}}author")
    add(author, "name", "dothi IOC")
    for m in messages:
        entry = ET.SubElement(feed, f"{{{ns}}}entry")
        add(entry, "id", f"urn:oasis:names:tc:emergency:cap:1.2:{m['identifier']}")
        add(entry, "title", f"{m['msgType']}: {_pick(m['info']['headline'], 'vi')} / "
                            f"{_pick(m['info']['headline'], 'en')}")
        add(entry, "updated", m["sent"])
        add(entry, "link", "", rel="alternate", type="application/cap+xml",
            href=f"{base_url}/ioc/warnings/{m['identifier']}.xml")
        add(entry, "summary", _pick(m["info"]["description"], "vi")
            or _pick(m["info"]["headline"], "vi") or "")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


# -- checks ---------------------------------------------------------------------------------


def _one_of(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise BadRequestData(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def _texts(value: Any, name: str, *, required: bool = False) -> dict[str, str] | None:
    """A text in Vietnamese and English: {"vi": ..., "en": ...} (a plain string serves
    both)."""
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip():
        return {"vi": value, "en": value}
    if isinstance(value, dict) and value.get("vi") and value.get("en") and all(
            isinstance(v, str) for v in value.values()) and set(value) <= {"vi", "en"}:
        return dict(value)
    raise BadRequestData(f"{name} is a text, or {{\"vi\": ..., \"en\": ...}} with both")


def _pick(texts: dict[str, str] | None, lang: str) -> str | None:
    return None if texts is None else texts.get(lang) or texts.get("vi")


def _area(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData('area is {"description": ..., "polygon": GeoJSON Polygon} or '
                             '{"description": ..., "circle": {"center": [lon, lat], '
                             '"radiusKm": n}}')
    description = _texts(value.get("description"), "area.description", required=True)
    polygon, circle = value.get("polygon"), value.get("circle")
    if (polygon is None) == (circle is None):
        raise BadRequestData("area has a polygon or a circle (one of them)")
    if polygon is not None:
        ring = polygon.get("coordinates", [[]])[0] if isinstance(polygon, dict) and \
            polygon.get("type") == "Polygon" else None
        if not ring or len(ring) < 4 or ring[0] != ring[-1] or not all(
                _lonlat(p) for p in ring):
            raise BadRequestData("area.polygon is a GeoJSON Polygon whose outer ring is "
                                 "closed and has at least 4 positions")
        return {"description": description, "geometry": {"type": "Polygon",
                                                          "coordinates": [ring]},
                "polygon": " ".join(f"{lat},{lon}" for lon, lat in ring)}
    center = circle.get("center") if isinstance(circle, dict) else None
    radius = circle.get("radiusKm") if isinstance(circle, dict) else None
    if not _lonlat(center) or not isinstance(radius, int | float) or not 0 < radius <= 500:
        raise BadRequestData("area.circle is {\"center\": [lon, lat], \"radiusKm\": n}")
    assert isinstance(center, list)
    lon, lat = center
    return {"description": description, "geometry": {"type": "Point", "coordinates": center},
            "circle": f"{lat},{lon} {radius}"}


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * \
        math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _lonlat(p: Any) -> bool:
    return isinstance(p, list) and len(p) == 2 and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in p) and \
        -180 <= p[0] <= 180 and -90 <= p[1] <= 90


def _when(value: Any, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{name} is an ISO 8601 date-time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _cap_time(when: datetime) -> str:
    """CAP's form: seconds and an explicit offset, never "Z"."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _iso(cap_time: str) -> str:
    return cap_time.replace("+00:00", "Z")
