"""Public comment on plans (lấy ý kiến cộng đồng về quy hoạch): an authority opens a plan
(a planning layer, or any entity) for comment for a period; anyone comments on it at a
point or over an area, saying whether they support it, oppose it, suggest a change or ask;
officials moderate; what is approved is public; the authority gets a summary per planning
zone.

- ``PlanConsultation`` entities are public: the plan, the title and description in
  Vietnamese and English, when comment opens and closes.
- A comment waits in the tenant's ``moderation`` partition of the store, out of every
  open API, as a ``PlanComment`` with the planning zones of the plan it falls in. Approved,
  a copy without anything about its author becomes a public ``PlanComment``.
- Who commented (name, e-mail, phone, if given) is a ``PlanCommentAuthor`` in the
  ``personal`` partition, as for field reports.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry import shape

from dothi.broker.broker import Broker
from dothi.citizen.personal import FIELDS as PERSONAL
from dothi.citizen.personal import PARTITION, Vault, erase, reveal
from dothi.citizen.reports import datetime_value, personal_fields
from dothi.errors import BadRequestData, Conflict, ResourceNotFound, TooManyRequests, only_members
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes, first_value, prop
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, partition, query_all

CONSULTATION = "PlanConsultation"
COMMENT = "PlanComment"
AUTHOR = "PlanCommentAuthor"
POSITIONS = {"support": ("Ủng hộ", "Support"), "oppose": ("Phản đối", "Oppose"),
             "suggestion": ("Góp ý, đề xuất", "Suggestion"), "question": ("Câu hỏi", "Question")}
DECISIONS = ("approved", "rejected")
MAX_TEXT = 4000
MAX_VERTICES = 500
KEY_VALUES = RenderOptions(fmt="keyValues")


class ConsultationDesk:
    def __init__(self, broker: Broker, vault: Vault, *, hourly_limit: int) -> None:
        self.broker = broker
        self.vault = vault
        self.hourly_limit = hourly_limit
        self.ctx = broker.resolver.core

    # -- consultations ----------------------------------------------------------------

    def open(self, tenant: str, body: Any, now: datetime | None = None) -> str:
        """A new consultation from ``{"plan", "title", "description", "opens",
        "closes"}``; returns its id."""
        if not isinstance(body, dict):
            raise BadRequestData("A consultation is a JSON object")
        only_members(body, {"plan", "title", "description", "opens", "closes"})
        plan = body.get("plan")
        if not isinstance(plan, str) or self.broker.store.get(tenant, plan) is None:
            raise BadRequestData("plan is the id of an entity of this tenant (a planning "
                                 "layer's GisLayer, say)")
        title = _texts(body.get("title"), "title", required=True)
        description = _texts(body.get("description"), "description")
        opens = _when(body.get("opens"), "opens") if "opens" in body else \
            (now or datetime.now(UTC)).replace(microsecond=0)
        closes = _when(body.get("closes"), "closes")
        if closes <= opens:
            raise BadRequestData("closes comes after opens")
        eid = f"urn:ngsi-ld:{CONSULTATION}:{uuid.uuid4()}"
        entity: dict[str, Any] = {
            "id": eid, "type": CONSULTATION,
            "refPlan": {"type": "Relationship", "object": plan},
            "title": {"type": "LanguageProperty", "languageMap": title},
            "opensAt": prop(datetime_value(opens)),
            "closesAt": prop(datetime_value(closes)),
        }
        if description:
            entity["description"] = {"type": "LanguageProperty", "languageMap": description}
        where = self._value(self.broker.store.get(tenant, plan) or {}, "location")
        if isinstance(where, dict):
            entity["location"] = {"type": "GeoProperty", "value": where}
        self.broker.create(tenant, entity, self.ctx)
        return eid

    def consultations(self, tenant: str, now: datetime | None = None) -> list[dict]:
        docs = query_all(self.broker.store, tenant, self._query(CONSULTATION))
        views = [self.view(d, tenant, now) for d in docs]
        return sorted(views, key=lambda v: v["closesAt"], reverse=True)

    def get(self, tenant: str, cid: str) -> dict:
        doc = self.broker.store.get(tenant, cid)
        if doc is None or self.ctx.expand(CONSULTATION) not in doc.get("type", ()):
            raise ResourceNotFound(f"No consultation {cid}")
        return doc

    def view(self, doc: dict, tenant: str, now: datetime | None = None) -> dict[str, Any]:
        return {**self._terms(doc, now),
                "publishedComments": self._count(tenant, f'refConsultation=="{doc["id"]}"')}

    def _terms(self, doc: dict, now: datetime | None = None) -> dict[str, Any]:
        """What the consultation says, and whether it is open ``now``."""
        item = render_entity(doc, self.ctx, KEY_VALUES)
        opens, closes = (_stamp(item[k]) for k in ("opensAt", "closesAt"))
        stamp = datetime_value(now or datetime.now(UTC))["@value"]
        status = "upcoming" if stamp < opens else "open" if stamp < closes else "closed"
        return {"id": doc["id"], "plan": item["refPlan"], "title": item["title"],
                "description": item.get("description"), "opensAt": opens,
                "closesAt": closes, "status": status, "location": item.get("location")}

    # -- comments ---------------------------------------------------------------------

    def comment(self, tenant: str, cid: str, body: Any, client: str,
                now: datetime | None = None) -> str:
        """A comment, waiting for moderation; returns its id."""
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        consultation = self._terms(self.get(tenant, cid), when)
        if consultation["status"] != "open":
            raise Conflict(f"This plan is not open for comment: it is {consultation['status']}"
                           f" (from {consultation['opensAt']} to {consultation['closesAt']})")
        if not isinstance(body, dict):
            raise BadRequestData("A comment is a JSON object")
        only_members(body, {"text", "position", "location", *PERSONAL})
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise BadRequestData(f"text is the comment, 1 to {MAX_TEXT} characters")
        position = body.get("position")
        if position not in POSITIONS:
            raise BadRequestData(f"position is one of {', '.join(POSITIONS)}")
        location = _geometry(body.get("location"))
        personal = personal_fields({k: v for k, v in body.items() if k in PERSONAL})
        hashed = self.vault.pseudonym(tenant, client)
        since = datetime_value(when - timedelta(hours=1))["@value"]
        recent = self.broker.store.query(partition(tenant, "moderation"), self._query(
            COMMENT, f'client=="{hashed}";submittedAt>={since}', ids_only=True,
            limit=self.hourly_limit))[0]
        if len(recent) >= self.hourly_limit:
            raise TooManyRequests(f"At most {self.hourly_limit} comments an hour from one "
                                  "client; please try again later")
        zones = self._zones(tenant, consultation["plan"], location)
        mid = uuid.uuid4().hex
        entity: dict[str, Any] = {
            "id": f"urn:ngsi-ld:{COMMENT}:{mid}", "type": COMMENT,
            "refConsultation": {"type": "Relationship", "object": cid},
            "text": prop(text.strip()), "position": prop(position),
            "zones": prop(zones), "moderation": prop("pending"),
            "submittedAt": prop(datetime_value(when)), "client": prop(hashed),
        }
        if location is not None:
            entity["location"] = {"type": "GeoProperty", "value": location}
        self.broker.create(partition(tenant, "moderation"), entity, self.ctx)
        if personal:
            author = f"urn:ngsi-ld:{AUTHOR}:{mid}"
            self.broker.create(partition(tenant, PARTITION), {
                "id": author, "type": AUTHOR,
                "refComment": {"type": "Relationship", "object": entity["id"]},
                **{k: prop(v) for k, v in self.vault.seal(author, personal).items()}},
                self.ctx)
        return str(entity["id"])

    def published(self, tenant: str, cid: str) -> list[dict[str, Any]]:
        """The approved comments, as the public sees them."""
        self.get(tenant, cid)
        docs = query_all(self.broker.store, tenant,
                         self._query(COMMENT, f'refConsultation=="{cid}"'))
        return sorted((self._comment_view(d) for d in docs),
                      key=lambda c: c["submittedAt"])

    def waiting(self, tenant: str, cid: str) -> list[dict[str, Any]]:
        """The comments for officials to moderate, oldest first."""
        self.get(tenant, cid)
        docs = query_all(self.broker.store, partition(tenant, "moderation"), self._query(
            COMMENT, f'refConsultation=="{cid}";moderation=="pending"'))
        return sorted((self._comment_view(d) for d in docs),
                      key=lambda c: c["submittedAt"])

    def moderate(self, tenant: str, cid: str, mid: str, decision: Any, note: Any = None,
                 by: Any = None, now: datetime | None = None) -> str:
        """Approve (publish) or reject a waiting comment; returns the decision."""
        if decision not in DECISIONS:
            raise BadRequestData(f"decision is {' or '.join(DECISIONS)}")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_TEXT):
            raise BadRequestData("note is a text")
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        store = partition(tenant, "moderation")
        published: list[dict] = []

        def change(old: dict | None) -> dict:
            if old is None or self._value(old, "refConsultation") != cid:
                raise ResourceNotFound(f"No comment {mid} on {cid}")
            if self._value(old, "moderation") != "pending":
                raise Conflict(f"The comment was {self._value(old, 'moderation')} already")
            body = {"moderation": prop(decision),
                    "moderatedAt": prop(datetime_value(when))}
            if note:
                body["moderationNote"] = prop(note)
            if isinstance(by, str):
                body["moderatedBy"] = prop(by)
            stamp = now_iso()
            doc, _ = merge.append(old, expand_attributes(body, self.ctx, stamp), stamp,
                                  overwrite=True)
            published.append(doc)
            return doc

        outcome = self.broker.apply(store, [(f"urn:ngsi-ld:{COMMENT}:{mid}", change)])[0]
        if outcome.error is not None:
            raise outcome.error
        if decision == "approved":
            self._publish(tenant, published[0])
        return str(decision)

    def _publish(self, tenant: str, doc: dict) -> None:
        keep = ("refConsultation", "text", "position", "zones", "submittedAt", "location",
                "moderatedAt")
        item = render_entity(doc, self.ctx, KEY_VALUES)
        entity: dict[str, Any] = {"id": doc["id"], "type": COMMENT}
        for name in keep:
            if name not in item:
                continue
            if name == "refConsultation":
                entity[name] = {"type": "Relationship", "object": item[name]}
            elif name == "location":
                entity[name] = {"type": "GeoProperty", "value": item[name]}
            else:
                entity[name] = prop(item[name])
        self.broker.create(tenant, entity, self.ctx)

    def summary(self, tenant: str, cid: str) -> dict[str, Any]:
        """For the authority: every comment counted by moderation state and position,
        per planning zone of the plan (comments outside every zone under ``-``), with
        the approved and waiting texts of each zone."""
        consultation = self.view(self.get(tenant, cid), tenant)
        docs = query_all(self.broker.store, partition(tenant, "moderation"),
                         self._query(COMMENT, f'refConsultation=="{cid}"'))
        comments = [self._comment_view(d) for d in docs]
        zones: dict[str, dict[str, Any]] = {}
        for c in comments:
            for zone in c["zones"] or ["-"]:
                entry = zones.setdefault(zone, {"zone": zone, "positions": Counter(),
                                                "comments": []})
                if c["moderation"] != "rejected":
                    entry["positions"][c["position"]] += 1
                    entry["comments"].append({k: c[k] for k in ("id", "text", "position",
                                                                 "moderation")})
        by_zone = sorted(zones.values(), key=lambda z: -sum(z["positions"].values()))
        moderation = Counter(c["moderation"] for c in comments)
        positions = Counter(c["position"] for c in comments if c["moderation"] != "rejected")
        vi = ", ".join(f"{n} {POSITIONS[p][0].lower()}" for p, n in positions.most_common())
        en = ", ".join(f"{n} {POSITIONS[p][1].lower()}" for p, n in positions.most_common())
        return {
            "consultation": consultation, "total": len(comments),
            "moderation": {k: moderation.get(k, 0) for k in ("pending", *DECISIONS)},
            "positions": {p: positions.get(p, 0) for p in POSITIONS},
            "zones": [{**z, "positions": {p: z["positions"].get(p, 0) for p in POSITIONS}}
                      for z in by_zone],
            "text": {"vi": f"{len(comments)} ý kiến ({moderation.get('rejected', 0)} bị "
                           f"loại): {vi or 'chưa có'}.",
                     "en": f"{len(comments)} comments ({moderation.get('rejected', 0)} "
                           f"rejected): {en or 'none yet'}."},
        }

    def author(self, tenant: str, cid: str, mid: str) -> dict[str, Any]:
        """Who wrote a comment, for officials."""
        comment = self._comment(tenant, cid, mid)
        given = reveal(self.broker, self.vault, tenant, f"urn:ngsi-ld:{AUTHOR}:{mid}", comment,
                       "author")
        return {"comment": comment, "anonymous": not given, **given}

    def erase_author(self, tenant: str, cid: str, mid: str) -> bool:
        """Forget who wrote a comment; the comment stays, anonymous."""
        self._comment(tenant, cid, mid)
        return erase(self.broker, partition(tenant, PARTITION), f"urn:ngsi-ld:{AUTHOR}:{mid}")

    def _comment(self, tenant: str, cid: str, mid: str) -> str:
        """The id of comment ``mid`` on consultation ``cid``, or 404."""
        doc = self.broker.store.get(partition(tenant, "moderation"),
                                    f"urn:ngsi-ld:{COMMENT}:{mid}")
        if doc is None or self._value(doc, "refConsultation") != cid:
            raise ResourceNotFound(f"No comment {mid} on {cid}")
        return str(doc["id"])

    # -- plumbing ---------------------------------------------------------------------

    def _zones(self, tenant: str, plan: str, location: dict | None) -> list[str]:
        """The codes of the plan's planning zones the comment's place touches."""
        if location is None:
            return []
        geo = parse_geoquery("intersects", location["type"], location["coordinates"], None)
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr("PlanningZone", self.ctx.expand))],
            q=parse_q(f'refGisLayer=="{plan}"'), geo=geo, expand=self.ctx.expand,
            limit=1000))
        return sorted(str(self._value(d, "zoneCode") or d["id"]) for d in docs)

    def _comment_view(self, doc: dict) -> dict[str, Any]:
        item = render_entity(doc, self.ctx, KEY_VALUES)
        return {"id": doc["id"].rsplit(":", 1)[-1], "text": item.get("text"),
                "position": item.get("position"), "zones": item.get("zones") or [],
                "location": item.get("location"),
                "submittedAt": _stamp(item.get("submittedAt")),
                "moderation": item.get("moderation", "approved"),
                "moderationNote": item.get("moderationNote")}

    def _query(self, etype: str, q: str | None = None, *, count: bool = False,
               ids_only: bool = False, limit: int = 1000) -> EntityQuery:
        return EntityQuery(selectors=[Selector(types=parse_type_expr(etype, self.ctx.expand))],
                           q=parse_q(q) if q else None, expand=self.ctx.expand, limit=limit,
                           count=count, ids_only=ids_only)

    def _count(self, tenant: str, q: str) -> int:
        query = self._query(COMMENT, q, count=True, ids_only=True, limit=0)
        return self.broker.store.query(tenant, query)[1] or 0

    def _value(self, doc: dict, name: str) -> Any:
        return first_value(doc, self.ctx.expand(name))


def _stamp(value: Any) -> Any:
    return value.get("@value") if isinstance(value, dict) else value


def _texts(value: Any, name: str, *, required: bool = False) -> dict[str, str] | None:
    if value is None and not required:
        return None
    if isinstance(value, dict) and set(value) == {"vi", "en"} and all(
            isinstance(v, str) and v.strip() for v in value.values()):
        return dict(value)
    raise BadRequestData(f'{name} is {{"vi": ..., "en": ...}}')


def _when(value: Any, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{name} is an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise BadRequestData(f"{name} needs its time zone (Z or +07:00)")
    return when.astimezone(UTC)


def _geometry(value: Any) -> dict[str, Any] | None:
    """A comment's place: a GeoJSON Point or a valid Polygon of at most MAX_VERTICES."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("Point", "Polygon"):
        raise BadRequestData("location is a GeoJSON Point or Polygon")
    try:
        geometry = shape(value)
    except (ValueError, TypeError, AttributeError, IndexError):
        raise BadRequestData("location is not a valid GeoJSON geometry") from None
    points = len(value["coordinates"][0]) if value["type"] == "Polygon" else 1
    bounds = geometry.bounds
    if points > MAX_VERTICES or not geometry.is_valid or geometry.is_empty or not (
            -180 <= bounds[0] and bounds[2] <= 180 and -90 <= bounds[1] and bounds[3] <= 90):
        raise BadRequestData(f"location must be valid, in lon/lat, with at most "
                             f"{MAX_VERTICES} vertices")
    return {"type": value["type"], "coordinates": value["coordinates"]}

