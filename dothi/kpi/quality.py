"""The quality score of a city's databases (the Government's 2025-2026 rating of
databases): for each entity type and each agency that provides it, five shares of its
entities, then their mean as a score out of 100.

- completeness: the entities with every mandatory attribute (``quality.yaml``, else the
  Smart Data Models schema's required ones, else ``location``);
- validity: the entities whose attributes all pass their Smart Data Models schema
  (types without a shipped schema are not scored on it);
- timeliness: the entities updated within the expected interval (types without one are
  not scored on it);
- consistency: the entities inside the city (its administrative areas, with a 1 km
  margin) and with numeric values in their plausible ranges;
- uniqueness: the entities that do not repeat another's place and name.

Each result is kept as a ``DataQualityAssessment`` entity, one per type and agency; its
attributes' history (the temporal API) is the trend."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from shapely.geometry import shape

from dothi.broker.broker import Broker
from dothi.gis.admin_units import city_outline
from dothi.gis.assessment import metric_projection
from dothi.iot.validation import (
    SchemaCatalogue,
    UnknownSchema,
    UnresolvableReference,
    default_catalogue,
)
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.temporal import parse_duration_ms
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

RULES = Path(__file__).with_name("quality.yaml")
ASSESSMENT = "DataQualityAssessment"
DIMENSIONS = ("completeness", "validity", "timeliness", "consistency", "uniqueness")
KEY_VALUES = RenderOptions(fmt="keyValues")
PLAIN = "\x00plain"  # where an item keeps its values in the schemas' shape
MARGIN_M = 1000
SKIPPED = {ASSESSMENT, "KeyPerformanceIndicator", "GisLayer"}  # the platform's own records


@dataclass
class Quality:
    entity_type: str
    agency: str
    entities: int = 0
    shares: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        known = [v for v in self.shares.values() if v is not None]
        return round(100 * sum(known) / len(known), 1) if known else None


class QualityRater:
    def __init__(self, broker: Broker, rules: Path | None = None,
                 schemas: SchemaCatalogue | None = None) -> None:
        self.broker = broker
        self.ctx = broker.resolver.core
        data = yaml.safe_load((rules or RULES).read_text(encoding="utf-8"))
        self.rules: dict[str, dict[str, Any]] = data.get("types") or {}
        self.schemas = schemas or default_catalogue()

    def rate(self, tenant: str, now: datetime | None = None) -> list[Quality]:
        """Every entity type of the tenant, per agency, best first."""
        when = now or datetime.now(UTC)
        city = self._city(tenant)
        out: list[Quality] = []
        for stat in self.broker.store.type_stats(tenant):
            name = self.ctx.compact(stat.type)
            if name in SKIPPED:
                continue
            docs = query_all(self.broker.store, tenant, EntityQuery(
                selectors=[Selector(types=parse_type_expr(name, self.ctx.expand))],
                expand=self.ctx.expand, limit=1000))
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for doc in docs:
                item = render_entity(doc, self.ctx, KEY_VALUES)
                item["modifiedAt"] = doc.get("modifiedAt")
                item[PLAIN] = self._plain(doc)
                groups[_agency(item)].append(item)
            for agency, items in sorted(groups.items()):
                out.append(self._rate(name, agency, items, city, when))
        return sorted(out, key=lambda q: (-(q.score or 0), q.entity_type, q.agency))

    def _rate(self, etype: str, agency: str, items: list[dict[str, Any]], city: Any,
              when: datetime) -> Quality:
        rules = self.rules.get(etype, {})
        quality = Quality(etype, agency, entities=len(items))
        mandatory = rules.get("mandatory") or self._required(etype) or ["location"]
        complete = [i for i in items if all(i.get(a) not in (None, "", []) for a in mandatory)]
        quality.shares["completeness"] = len(complete) / len(items)
        for i in items:
            if i not in complete:
                lacking = [a for a in mandatory if i.get(a) in (None, "", [])]
                quality.problems.append(f"{i['id']}: no {', '.join(lacking)}")
        quality.shares["validity"] = self._validity(etype, items, quality.problems)
        every = rules.get("every")
        if every:
            limit = parse_duration_ms(every)
            stamp = when.timestamp() * 1000
            late = [i for i in items if not i.get("modifiedAt") or stamp - _ms(
                i["modifiedAt"]) > limit]
            quality.shares["timeliness"] = 1 - len(late) / len(items)
            quality.problems += [f"{i['id']}: not updated within {every}" for i in late[:5]]
        else:
            quality.shares["timeliness"] = None
        quality.shares["consistency"] = self._consistency(items, rules.get("ranges") or {},
                                                          city, quality.problems)
        # Only what has a place and a name can repeat another (two plan variants' zones
        # share their blocks and are no duplicates).
        named = [i for i in items if i.get("location") is not None and i.get("name")]
        seen: set[bytes] = set()
        repeated = 0
        for i in named:
            key = orjson.dumps([i["location"], i["name"]], option=orjson.OPT_SORT_KEYS)
            if key in seen:
                repeated += 1
                quality.problems.append(f"{i['id']}: the same place and name as another")
            seen.add(key)
        quality.shares["uniqueness"] = 1 - repeated / len(named) if named else None
        quality.problems = quality.problems[:20]
        return quality

    def _plain(self, doc: dict) -> dict[str, Any]:
        """Each attribute's value as a Smart Data Models schema describes it: a
        DateTime as its text, a LanguageProperty as one of its texts, a Relationship as
        its object."""
        out: dict[str, Any] = {}
        for iri, instances in doc.items():
            if iri in ("id", "type", "createdAt", "modifiedAt", "@context", "scope") or \
                    not isinstance(instances, list) or not instances:
                continue
            first = instances[0]
            kind = first.get("type")
            if kind in ("Property", "GeoProperty"):
                value = first.get("value")
                out[self.ctx.compact(iri)] = value.get("@value") if isinstance(
                    value, dict) and "@value" in value else value
            elif kind == "LanguageProperty":
                texts = first.get("languageMap") or {}
                if isinstance(texts, dict) and texts:
                    out[self.ctx.compact(iri)] = next(iter(texts.values()))
            elif kind == "Relationship":
                out[self.ctx.compact(iri)] = first.get("object")
        return out

    def _required(self, etype: str) -> list[str]:
        try:
            schema = self.schemas.find(etype)
        except (UnknownSchema, LookupError):
            return []
        document = orjson.loads(schema.path.read_bytes())
        return [a for a in document.get("required", []) if a not in ("id", "type")]

    def _validity(self, etype: str, items: list[dict[str, Any]],
                  problems: list[str]) -> float | None:
        try:
            schema = self.schemas.find(etype)
        except (UnknownSchema, LookupError):
            return None
        valid = 0
        for item in items:
            broken = []
            for name, value in item[PLAIN].items():
                try:
                    broken += schema.validate_attributes({name: value})
                except UnresolvableReference:
                    continue
            if broken:
                problems.append(f"{item['id']}: {broken[0].message}")
            else:
                valid += 1
        return valid / len(items)

    def _consistency(self, items: list[dict[str, Any]], ranges: dict[str, list[float]],
                     city: Any, problems: list[str]) -> float:
        good = 0
        for item in items:
            wrong = [f"{a} {item[a]} outside {low}..{high}"
                     for a, (low, high) in ranges.items()
                     if isinstance(item.get(a), int | float) and not low <= item[a] <= high]
            where = item.get("location")
            if city is not None and isinstance(where, dict):
                try:
                    if not city.intersects(shape(where)):
                        wrong.append("outside the city")
                except (ValueError, TypeError, AttributeError):
                    wrong.append("a location that is not a geometry")
            if wrong:
                problems.append(f"{item['id']}: {'; '.join(wrong)}")
            else:
                good += 1
        return good / len(items)

    def _city(self, tenant: str) -> Any:
        """The union of the tenant's administrative areas, 1 km wider; None without any."""
        union = city_outline(self.broker, tenant)
        if union is None:
            return None
        to_m, to_deg = metric_projection(union.centroid.x, union.centroid.y)
        return to_deg(to_m(union).buffer(MARGIN_M))

    # -- keeping ----------------------------------------------------------------------

    def store(self, tenant: str, results: list[Quality], now: datetime | None = None) -> int:
        stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(
            timespec="seconds").replace("+00:00", "Z")
        entities = []
        for q in results:
            body: dict[str, Any] = {
                "id": f"urn:ngsi-ld:{ASSESSMENT}:{q.entity_type}:" + re.sub(
                    r"[^A-Za-z0-9-]+", "-", q.agency),
                "type": ASSESSMENT,
                "assessedType": _prop(q.entity_type, stamp),
                "agency": _prop(q.agency, stamp),
                "entities": _prop(q.entities, stamp),
                "problems": _prop(q.problems or ["none"], stamp),
            }
            if q.score is not None:
                body["score"] = _prop(q.score, stamp)
            for dimension, share in q.shares.items():
                if share is not None:
                    body[dimension] = _prop(round(share, 4), stamp)
            entities.append(body)
        result = self.broker.batch(tenant, "upsert", entities, lambda item: self.ctx)
        if result.errors:
            raise RuntimeError(f"quality not stored: {result.errors[:3]}")
        return len(entities)


def _agency(item: dict[str, Any]) -> str:
    """Who provides an entity: its dataProvider, else its owner, else no one named."""
    for name in ("dataProvider", "owner"):
        value = item.get(name)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and value:
            return value
    return "-"


def _ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _prop(value: Any, stamp: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": stamp}
