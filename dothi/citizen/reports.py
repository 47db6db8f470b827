"""Citizens' field reports (phản ánh hiện trường): each report is a ``ServiceRequest``
entity carrying the Open311 GeoReport v2 fields as attributes (as the FIWARE
IssueTracking ``Open311:ServiceRequest`` model does), so the NGSI-LD API, the temporal API
and subscriptions see reports like any other entity.

What identifies the reporter (name, e-mail, phone, device and account ids) is never on
that entity: it is a ``ServiceRequestReporter`` entity in the tenant's ``personal``
partition of the store, which no open API can reach; its values are encrypted there
(``dothi.citizen.personal``), only officials read it, every read is in the audit log,
and an official can erase it on the reporter's request. The same record, for anonymous
reports too, keeps a keyed pseudonym of the client (the app's API key, or the address it
connected from) so that a client's reports per hour can be limited.

Each report opens (or counts one more occurrence of) an operations-centre incident,
assigned at once to the agency the catalogue routes it to by service and area; as the
incident moves, its reports follow: open while it is open, closed once it is resolved.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dothi.broker.broker import Broker
from dothi.citizen.catalogue import LOCALES, Catalogue, Service
from dothi.citizen.personal import FIELDS as PERSONAL
from dothi.citizen.personal import PARTITION, Vault, erase, reveal
from dothi.errors import BadRequestData, ResourceNotFound, TooManyRequests
from dothi.gis.admin_units import bounded_areas
from dothi.ioc.incidents import IncidentDesk
from dothi.ngsild import merge, qlang
from dothi.ngsild.entity import expand_attributes, first_value, prop
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import UNCHANGED, EntityQuery, Selector, partition, query_all

log = logging.getLogger(__name__)
REQUEST = "ServiceRequest"
REPORTER = "ServiceRequestReporter"
FIELDS = {"jurisdiction_id", "api_key", "service_code", "lat", "long", "address_string",
          "address_id", "description", "media_url", *PERSONAL}
ATTRIBUTE = re.compile(r"attribute\[([A-Za-z0-9_.\-]{1,64})\](\[\])?")
ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out on the phone
MAX_DESCRIPTION = 4000  # Open311's own limit
MAX_FIELD = 200
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
PHONE = re.compile(r"\+?[0-9 ().\-]{8,20}")
KEY_VALUES = RenderOptions(fmt="keyValues")
WINDOW = timedelta(hours=1)
# Reports of one service in one area within this many metres of an open incident that
# reporters opened are that incident.
NEAR_M = 200
LISTING_DAYS = 90  # Open311: without dates, the requests of the last 90 days
MAX_LISTED = 1000
MAX_RADIUS_M = 10_000


class ReportDesk:
    def __init__(self, broker: Broker, incidents: IncidentDesk, catalogue: Catalogue,
                 vault: Vault, *, hourly_limit: int) -> None:
        self.broker = broker
        self.vault = vault
        self.incidents = incidents
        self.catalogue = catalogue
        self.hourly_limit = hourly_limit
        self.ctx = broker.resolver.core
        incidents.followers.append(self.follow)

    # -- reporting --------------------------------------------------------------------

    def submit(self, tenant: str, fields: Mapping[str, list[str]], client: str,
               now: datetime | None = None) -> tuple[dict[str, Any], bool]:
        """A report from Open311's form fields (each a list of the values given);
        ``client`` is who sends it (an API key or an address). Returns the Open311
        answer (service_request_id, token, service_notice, account_id) and whether the
        report is new: the same text on the same service at the same place from the same
        client within the hour is the report already made."""
        form = _single_fields(fields)
        service = self.catalogue.service(form.get("service_code"))
        attributes = self.catalogue.check_attributes(service, {
            m.group(1): values for name, values in fields.items()
            if (m := ATTRIBUTE.fullmatch(name))})
        point = _point(form.get("lat"), form.get("long"))
        address = _text(form.get("address_string"), "address_string", MAX_FIELD)
        address_id = _text(form.get("address_id"), "address_id", MAX_FIELD)
        if point is None and address is None and address_id is None:
            raise BadRequestData("Where is it? Give lat and long, or address_string")
        description = _text(form.get("description"), "description", MAX_DESCRIPTION)
        media = form.get("media_url")
        if media is not None and (len(media) > 2000 or not media.startswith(
                ("https://", "http://"))):
            raise BadRequestData("media_url is an http(s) URL")
        personal = personal_fields(form)
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        client_hash = self.vault.pseudonym(tenant, client)
        fingerprint = hashlib.sha256(orjson.dumps(
            [service.code, description, point, address])).hexdigest()
        same = self._made_already(tenant, client_hash, when, fingerprint)
        if same is not None:
            item = render_entity(same, self.ctx, KEY_VALUES)
            return {"service_request_id": item["service_request_id"],
                    "token": item.get("token"), "account_id": None,
                    "service_notice": "Đã nhận phản ánh này. / Already received."}, False
        if self._recent_count(tenant, client_hash, when) >= self.hourly_limit:
            raise TooManyRequests(f"At most {self.hourly_limit} reports an hour from one "
                                 "client; please try again later")
        area = self._area(tenant, point)
        agency = self.catalogue.agency(service, area["id"] if area else None)
        rid = f"{when:%Y%m%d}-" + "".join(secrets.choice(ID_ALPHABET) for _ in range(6))
        eid = f"urn:ngsi-ld:{REQUEST}:{rid}"
        incident = self._incident(tenant, service, eid, agency, area, point, address,
                                  description, when)
        progress = self.progress(incident, agency)
        body: dict[str, Any] = {
            "id": eid, "type": REQUEST,
            "service_request_id": prop(rid),
            "service_code": prop(service.code),
            "service_name": {"type": "LanguageProperty", "languageMap": service.name},
            "requested_datetime": prop(datetime_value(when)),
            "updated_datetime": prop(datetime_value(when)),
            "token": prop(secrets.token_urlsafe(12)),
            "refIncident": {"type": "Relationship", "object": incident["id"]},
            **_progress_attributes(progress),
        }
        optional: dict[str, Any] = {
            "description": description, "address_string": address, "address_id": address_id,
            "media_url": media, "attributes": attributes or None,
            "ward": _name(area)}
        for name, value in optional.items():
            if value is not None:
                body[name] = prop(value)
        if point is not None:
            body["location"] = {"type": "GeoProperty", "value": point}
        if area is not None:
            body["refAdministrativeArea"] = {"type": "Relationship", "object": area["id"]}
        self.broker.create(tenant, body, self.ctx)
        reporter_id = f"urn:ngsi-ld:{REPORTER}:{rid}"
        reporter: dict[str, Any] = {
            "id": reporter_id, "type": REPORTER,
            "refServiceRequest": {"type": "Relationship", "object": eid},
            "client": prop(client_hash), "requestedAt": prop(datetime_value(when)),
            "fingerprint": prop(fingerprint),
            **{k: prop(v) for k, v in self.vault.seal(reporter_id, personal).items()}}
        self.broker.create(partition(tenant, PARTITION), reporter, self.ctx)
        return {"service_request_id": rid, "token": body["token"]["value"],
                "account_id": None, "service_notice": _notice(service, agency, self)}, True

    def _mine(self, client_hash: str, when: datetime, also: str = "", *, count: bool = False,
              limit: int = 1) -> EntityQuery:
        """This client's reporter records of the last hour (and ``also``, more q)."""
        since = datetime_value(when - WINDOW)["@value"]
        return EntityQuery(
            selectors=[Selector(types=parse_type_expr(REPORTER, self.ctx.expand))],
            q=parse_q(f'client=="{client_hash}";requestedAt>={since}{also}'),
            expand=self.ctx.expand, count=count, limit=limit)

    def _made_already(self, tenant: str, client_hash: str, when: datetime,
                      fingerprint: str) -> dict | None:
        """The public report this client made in the last hour with the same service,
        text and place, if any. Found by the record's fingerprint, not by reading every
        report of the hour: for an app reporting for a whole city, that made each report
        cost more than the one before (bench/soak.py)."""
        mine, _ = self.broker.store.query(partition(tenant, PARTITION), self._mine(
            client_hash, when, f';fingerprint=="{fingerprint}"'))
        if not mine:
            return None
        return self.broker.store.get(tenant, str(self._value(mine[0], "refServiceRequest")))

    def _recent_count(self, tenant: str, client_hash: str, when: datetime) -> int:
        """How many reports this client made in the last hour (counted by the store)."""
        _, count = self.broker.store.query(partition(tenant, PARTITION),
                                           self._mine(client_hash, when, count=True, limit=0))
        return count or 0

    def _area(self, tenant: str, point: dict | None) -> dict | None:
        """The smallest administrative area whose boundary holds the point."""
        if point is None:
            return None
        geo = parse_geoquery("intersects", "Point", point["coordinates"], None)
        areas = bounded_areas(self.broker, tenant, geo)
        if not areas:
            return None
        doc, _ = min(areas, key=lambda area: area[1].area)
        return render_entity(doc, self.ctx, KEY_VALUES)

    def _incident(self, tenant: str, service: Service, eid: str, agency: str,
                  area: dict | None, point: dict | None, address: str | None,
                  description: str | None, when: datetime) -> dict:
        """The incident the report opens, or the open one it is one more occurrence of;
        a new one is acknowledged and assigned to the agency at once."""
        where = _name(area) or address or "?"
        key = self._incident_key(tenant, service, area, point, address)
        iid, created = self.incidents.open(
            tenant, title=f"{service.name['vi']} — {where}",
            category=service.incident["category"], severity=service.incident["severity"],
            description=description, sub_category=service.code, location=point,
            ward=_name(area), source="citizen", by="open311", related=[eid],
            dedup_key=key, now=when)
        if created:
            self.incidents.move(tenant, iid, "acknowledged", by="open311", now=when)
            self.incidents.move(tenant, iid, "assigned", by="open311", agency=agency,
                                note=f"Routed by service {service.code}", now=when)
        doc = self.broker.store.get(tenant, iid)
        if doc is None:  # deleted between the two calls
            raise ResourceNotFound(f"Incident {iid} vanished")
        return doc

    def _incident_key(self, tenant: str, service: Service, area: dict | None,
                      point: dict | None, address: str | None) -> str:
        """The dedupKey of the open incident a report adds to: the one reporters opened
        for this service in this area within NEAR_M of the point, else a new one."""
        if point is None:
            return f"open311:{service.code}:address:{address}"
        states = "|".join(f'status=="{s}"' for s in sorted(self.incidents.flow.open))
        q = f'subCategory=="{service.code}";alertSource=="citizen";({states})'
        if area is not None:
            q += f";ward=={qlang.quote(str(_name(area)))}"
        docs, _ = self.broker.store.query(tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr("Incident", self.ctx.expand))],
            q=parse_q(q), geo=parse_geoquery(f"near;maxDistance=={NEAR_M}", "Point",
                                             point["coordinates"], None),
            expand=self.ctx.expand, limit=1))
        key = self.incidents.value(docs[0], "dedupKey") if docs else None
        return str(key) if key else f"open311:{service.code}:{uuid.uuid4()}"

    # -- following the incident -------------------------------------------------------

    def progress(self, incident: dict, agency: str | None = None) -> dict[str, Any]:
        """Where a report stands, read off its incident: Open311's open or closed, a note
        in both languages (the incident's status and agency: never the officials'
        internal notes), the agency responsible and when it is expected to be done."""
        desk = self.incidents
        status = str(desk.value(incident, "status"))
        agency = desk.value(incident, "assignedAgency") or agency
        label = desk.flow.statuses.get(status, {"vi": status, "en": status})
        names = desk.flow.agencies.get(str(agency), {}) if agency else {}
        notes = {lang: label[lang] + (f" — {names[lang]}" if names else "")
                 for lang in LOCALES}
        return {"status": "open" if status in desk.flow.open else "closed",
                "notes": notes, "agency": agency,
                "expected": desk.value(incident, "dueAt") if status in desk.flow.open
                else None}

    def follow(self, tenant: str, incident: dict) -> None:
        """An incident desk follower: the incident's reports take its progress."""
        related = [r for r in (self.incidents.value(incident, "relatedEntities") or [])
                   if isinstance(r, str) and r.startswith(f"urn:ngsi-ld:{REQUEST}:")]
        if not related:
            return
        progress = self.progress(incident)
        stamp = datetime_value(datetime.now(UTC).replace(microsecond=0))

        def change(old: dict | None) -> Any:
            if old is None:
                return UNCHANGED
            body = {**_progress_attributes(progress), "updated_datetime": prop(stamp)}
            now = now_iso()
            doc, _ = merge.append(old, expand_attributes(body, self.ctx, now), now,
                                  overwrite=True)
            if progress["expected"] is None:
                doc.pop(self.ctx.expand("expected_datetime"), None)
            return doc

        for outcome in self.broker.apply(tenant, [(eid, change) for eid in related]):
            if outcome.error is not None:
                log.error("report %s did not follow its incident: %s", outcome.id,
                          outcome.error)

    # -- reading ----------------------------------------------------------------------

    def get(self, tenant: str, rid: str) -> dict:
        doc = self.broker.store.get(tenant, f"urn:ngsi-ld:{REQUEST}:{rid}")
        if doc is None or self.ctx.expand(REQUEST) not in doc.get("type", ()):
            raise ResourceNotFound(f"No service request {rid}")
        return doc

    def by_token(self, tenant: str, token: str) -> str:
        docs = self._requests(tenant, f"token=={qlang.quote(token)}", None, 1)
        if not docs:
            raise ResourceNotFound(f"No service request with token {token}")
        return str(self._value(docs[0], "service_request_id"))

    def listing(self, tenant: str, params: Mapping[str, str],
                now: datetime | None = None) -> list[dict]:
        """Open311's GET requests: by service_request_id (which overrides every other
        parameter), or service_code, status, start_date and end_date (at most 90 days
        apart; by default the last 90 days), newest first, at most 1,000; and, dothi's
        extension, lat, long and radius (metres) for the requests near a point."""
        ids = _list(params.get("service_request_id"))
        if ids:
            docs = query_all(self.broker.store, tenant, EntityQuery(
                selectors=[Selector(ids=[f"urn:ngsi-ld:{REQUEST}:{i}" for i in ids])],
                expand=self.ctx.expand, limit=MAX_LISTED))
            return sorted(docs, key=lambda d: ids.index(self._value(d, "service_request_id")))
        terms = []
        codes = _list(params.get("service_code"))
        for code in codes:
            self.catalogue.service(code)
        if codes:
            terms.append("(" + "|".join(f'service_code=="{c}"' for c in codes) + ")")
        statuses = _list(params.get("status"))
        if not set(statuses) <= {"open", "closed"}:
            raise BadRequestData("status is open, closed or both (comma separated)")
        if statuses:
            terms.append("(" + "|".join(f'status=="{s}"' for s in statuses) + ")")
        start = _date_param(params.get("start_date"), "start_date")
        end = _date_param(params.get("end_date"), "end_date")
        span = timedelta(days=LISTING_DAYS)
        if start is None:
            end = end or now or datetime.now(UTC)
            start = end - span
        end = end or start + span
        if not timedelta(0) <= end - start <= span:
            raise BadRequestData(f"start_date comes before end_date, at most {LISTING_DAYS} "
                                 "days before it")
        terms.append(f"requested_datetime>={datetime_value(start)['@value']}")
        terms.append(f"requested_datetime<={datetime_value(end)['@value']}")
        geo = None
        if any(params.get(k) is not None for k in ("lat", "long", "radius")):
            point = _point(params.get("lat"), params.get("long"))
            radius = _number(params.get("radius") or "1000", "radius")
            if point is None or not 0 < radius <= MAX_RADIUS_M:
                raise BadRequestData(f"near a point: lat, long and radius (metres, up to "
                                     f"{MAX_RADIUS_M})")
            geo = parse_geoquery(f"near;maxDistance=={radius}", "Point",
                                 point["coordinates"], None)
        docs = self._requests(tenant, ";".join(terms), geo, None)
        docs.sort(key=lambda d: str(self._value(d, "requested_datetime")), reverse=True)
        return docs[:MAX_LISTED]

    def _requests(self, tenant: str, q: str, geo: Any, limit: int | None) -> list[dict]:
        query = EntityQuery(selectors=[Selector(types=parse_type_expr(
            REQUEST, self.ctx.expand))], q=parse_q(q), geo=geo, expand=self.ctx.expand,
            limit=limit or 1000)
        if limit is not None:
            return self.broker.store.query(tenant, query)[0]
        return query_all(self.broker.store, tenant, query)

    def view(self, doc: dict, locale: str) -> dict[str, Any]:
        """A request as Open311 shows it, in ``locale`` (vi or en): no personal data."""
        item = render_entity(doc, self.ctx, KEY_VALUES)
        point = (item.get("location") or {}).get("coordinates") or [None, None]
        agency = item.get("agency_responsible")
        names = self.incidents.flow.agencies.get(str(agency), {})
        return {
            "service_request_id": item["service_request_id"],
            "status": item.get("status"),
            "status_notes": _pick(item.get("status_notes"), locale),
            "service_name": _pick(item.get("service_name"), locale),
            "service_code": item.get("service_code"),
            "description": item.get("description"),
            "agency_responsible": names.get(locale, agency),
            "service_notice": None,
            "requested_datetime": _stamp(item.get("requested_datetime")),
            "updated_datetime": _stamp(item.get("updated_datetime")),
            "expected_datetime": _stamp(item.get("expected_datetime")),
            "address": item.get("address_string"),
            "address_id": item.get("address_id"),
            "zipcode": None,
            "lat": point[1], "long": point[0],
            "media_url": item.get("media_url"),
        }

    def reporter(self, tenant: str, rid: str) -> dict[str, Any]:
        """Who made a report (for officials only): the personal fields given, if any."""
        self.get(tenant, rid)
        given = reveal(self.broker, self.vault, tenant, f"urn:ngsi-ld:{REPORTER}:{rid}", rid,
                       "reporter")
        return {"service_request_id": rid, "anonymous": not given, **given}

    def erase_reporter(self, tenant: str, rid: str) -> bool:
        """Forget who made a report (on their request, or past the retention period):
        the personal record and its history go; the report stays, anonymous. False if
        there was nothing to forget."""
        self.get(tenant, rid)
        return erase(self.broker, partition(tenant, PARTITION),
                     f"urn:ngsi-ld:{REPORTER}:{rid}")

    # -- plumbing ---------------------------------------------------------------------

    def _value(self, doc: dict, name: str) -> Any:
        return first_value(doc, self.ctx.expand(name))


def _single_fields(fields: Mapping[str, list[str]]) -> dict[str, str]:
    unknown = {k for k in fields if k not in FIELDS and not ATTRIBUTE.fullmatch(k)}
    if unknown:
        raise BadRequestData(f"Unknown fields {sorted(unknown)}; Open311 takes "
                             f"{sorted(FIELDS)} and attribute[code]")
    out = {}
    for name in FIELDS:
        values = fields.get(name) or []
        if len(values) > 1:
            raise BadRequestData(f"{name} is given {len(values)} times")
        if values and values[0].strip():
            out[name] = values[0].strip()
    return out


def personal_fields(form: dict[str, str]) -> dict[str, str]:
    """The personal fields given, checked."""
    given = {k: form[k] for k in PERSONAL if k in form}
    for name, value in given.items():
        _text(value, name, MAX_FIELD)
    if "email" in given and not EMAIL.fullmatch(given["email"]):
        raise BadRequestData("email is not an e-mail address")
    if "phone" in given and not PHONE.fullmatch(given["phone"]):
        raise BadRequestData("phone is not a telephone number")
    return given


def _text(value: str | None, name: str, most: int) -> str | None:
    if value is not None and len(value) > most:
        raise BadRequestData(f"{name} is longer than {most} characters")
    return value


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadRequestData(f"{name} must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadRequestData(f"{name} must be a finite number")
    return value


def _point(lat: str | None, lon: str | None) -> dict[str, Any] | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise BadRequestData("lat and long go together")
    y, x = _number(lat, "lat"), _number(lon, "long")
    if not (-90 <= y <= 90 and -180 <= x <= 180):
        raise BadRequestData("lat and long are WGS 84 degrees")
    return {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]}


def _list(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def _date_param(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{name} is an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise BadRequestData(f"{name} needs its time zone (Z or +07:00), as Open311 says")
    return when


def datetime_value(when: datetime) -> dict[str, str]:
    """An NGSI-LD DateTime value, in UTC to the second."""
    stamp = when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"@type": "DateTime", "@value": stamp}


def _name(area: dict | None) -> str | None:
    if area is None:
        return None
    name = area.get("name")
    return str(name.get("vi") or next(iter(name.values()))) if isinstance(name, dict) \
        else str(name) if name is not None else area["id"]


def _stamp(value: Any) -> Any:
    return value.get("@value") if isinstance(value, dict) else value


def _pick(texts: Any, locale: str) -> Any:
    return texts.get(locale) or texts.get("vi") if isinstance(texts, dict) else texts


def _progress_attributes(progress: dict[str, Any]) -> dict[str, Any]:
    out = {"status": prop(progress["status"]),
           "status_notes": {"type": "LanguageProperty", "languageMap": progress["notes"]}}
    if progress["agency"]:
        out["agency_responsible"] = prop(progress["agency"])
    if progress["expected"]:
        out["expected_datetime"] = prop({"@type": "DateTime",
                                          "@value": progress["expected"]})
    return out


def _notice(service: Service, agency: str, desk: ReportDesk) -> str:
    names = desk.incidents.flow.agencies[agency]
    return (f"Đã tiếp nhận và chuyển {names['vi']} xử lý. / "
            f"Received and passed to the {names['en']}.")
