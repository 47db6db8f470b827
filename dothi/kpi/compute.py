"""Computing indicators: from the store, by the measures of ``methods.yaml``, or from raw
numerators and denominators given for a city and period (a published dataset's, say);
each result keeps its provenance (the measures, what they found, when) and is stored as a
``KeyPerformanceIndicator`` entity (the Smart Data Models shape, with the indicator's
code, catalogue, unit and direction). What cannot be computed is listed with the reason."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from dothi.broker.broker import Broker
from dothi.errors import DothiError
from dothi.gis.admin_units import city_outline
from dothi.gis.assessment import Assessor, metric_projection
from dothi.kpi.catalogue import Catalogue, Method, scale_of
from dothi.ngsild.entity import first_value, prop
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.temporal import TimeQuery
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

KPI = "KeyPerformanceIndicator"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # a Vietnamese city's year starts at its own midnight


@dataclass
class Result:
    code: str
    city: str
    period: str
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    scale: float = 1.0
    source: str = "store"  # "store" or the raw file's name and row
    measures: dict[str, Any] = field(default_factory=dict)
    missing: str | None = None


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """A year ("2025") or an interval of dates ("2025-01-01/2025-07-01"), in the city's
    time zone, as [start, end)."""
    if re.fullmatch(r"\d{4}", period):
        year = int(period)
        return datetime(year, 1, 1, tzinfo=TZ), datetime(year + 1, 1, 1, tzinfo=TZ)
    found = re.fullmatch(r"(\d{4}-\d\d-\d\d)/(\d{4}-\d\d-\d\d)", period)
    if found:
        start, end = (datetime.fromisoformat(d).replace(tzinfo=TZ) for d in found.groups())
        if start < end:
            return start, end
    raise ValueError(f"period {period!r}: a year (2025) or dates (2025-01-01/2025-07-01)")


class Computer:
    def __init__(self, broker: Broker, catalogue: Catalogue, assessor: Assessor,
                 targets: dict[str, dict[str, float]] | None = None) -> None:
        self.broker = broker
        self.catalogue = catalogue
        self.assessor = assessor
        self.targets = targets or {}  # the framework's, by indicator code
        self.ctx = broker.resolver.core

    # -- from the store ---------------------------------------------------------------

    def compute(self, tenant: str, city: str, period: str,
                progress: Callable[[int, int], None] | None = None) -> list[Result]:
        """Every indicator with a method: computed, or missing with the reason."""
        start, end = period_bounds(period)
        results = []
        methods = sorted(self.catalogue.methods.items())
        for done, (code, method) in enumerate(methods, 1):
            results.append(self._one(tenant, city, period, code, method, start, end))
            if progress:
                progress(done, len(methods))
        return results

    def _one(self, tenant: str, city: str, period: str, code: str, method: Method,
             start: datetime, end: datetime) -> Result:
        result = Result(code=code, city=city, period=period, scale=method.scale)
        try:
            result.numerator, result.measures["numerator"] = self._measure(
                tenant, method.numerator, start, end)
            if method.denominator is not None:
                result.denominator, result.measures["denominator"] = self._measure(
                    tenant, method.denominator, start, end)
        except _Missing as exc:
            result.missing = str(exc)
            return result
        return _finish(result)

    def _measure(self, tenant: str, measure: dict[str, Any], start: datetime,
                 end: datetime) -> tuple[float, dict[str, Any]]:
        kind, spec = next(iter(measure.items()))
        where = {"measure": kind, **spec}
        if kind == "share":
            area = self._city_area(tenant)
            found = self.assessor.assess(tenant, area)["access"].get(spec["amenity"])
            if found is None or found["share"] is None:
                raise _Missing(f"no residents or no {spec['amenity']} to measure access to")
            return float(found["share"]), {**where, "residents": "assessment.yaml"}
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(spec["type"], self.ctx.expand))],
            q=parse_q(spec["q"]) if spec.get("q") else None, expand=self.ctx.expand,
            limit=1000))
        where["entities"] = len(docs)
        if not docs:
            # Zero found is no data, not a count of zero: the city enters it, or loads them.
            raise _Missing(f"no {spec['type']} entities" +
                           (f" with {spec['q']}" if spec.get("q") else "") + " in the store")
        if kind == "count":
            return float(len(docs)), where
        if kind == "sum":
            values = [v for d in docs if isinstance(
                v := first_value(d, self.ctx.expand(spec["attribute"])), int | float)]
            if not values:
                raise _Missing(f"no {spec['type']} has a numeric {spec['attribute']}")
            return float(sum(values)), {**where, "withValue": len(values)}
        if kind == "hectares":
            shapes = [shape(g) for d in docs
                      if isinstance(g := first_value(d, self.ctx.expand("location")), dict)
                      and g.get("type") in ("Polygon", "MultiPolygon")]
            if not shapes:
                raise _Missing(f"no {spec['type']} has a polygon")
            union = unary_union(shapes)
            to_m, _ = metric_projection(union.centroid.x, union.centroid.y)
            return to_m(union).area / 1e4, {**where, "polygons": len(shapes)}
        return self._history_mean(tenant, docs, spec["attribute"], start, end, where)

    def _history_mean(self, tenant: str, docs: list[dict], attribute: str, start: datetime,
                      end: datetime, where: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        iri = self.ctx.expand(attribute)
        begin, finish = (int(t.timestamp() * 1000) for t in (start, end))
        means = []
        for doc in docs:
            found = self.broker.store.temporal_get(tenant, doc["id"], TimeQuery(
                start=begin, end=finish, fmt="aggregatedValues", aggr_methods=("avg",),
                aggr_period_ms=finish - begin, attrs=frozenset({iri})), 1)
            buckets = (found.aggregated.get(iri, {}) if found else {}).get(None, [])
            values = [b["avg"] for b in buckets if isinstance(b.get("avg"), int | float)]
            if values:
                means.append(sum(values) / len(values))
        if not means:
            raise _Missing(f"no {attribute} history in the period")
        return sum(means) / len(means), {**where, "withHistory": len(means)}

    def _city_area(self, tenant: str) -> dict[str, Any]:
        outline = city_outline(self.broker, tenant)
        if outline is None:
            raise _Missing("no administrative area with a boundary")
        return dict(mapping(outline.buffer(0)))

    # -- from raw values --------------------------------------------------------------

    def from_raw(self, rows: Iterable[dict[str, str]], source: str) -> list[Result]:
        """Rows of ``city, period, code, numerator, denominator`` (the denominator may be
        empty): each indicator's value at its own scale."""
        results = []
        for n, row in enumerate(rows, 2):  # row 1 is the header
            code = (row.get("code") or "").strip()
            result = Result(code=code, city=(row.get("city") or "").strip(),
                            period=(row.get("period") or "").strip(),
                            source=f"{source}, row {n}")
            try:
                indicator = self.catalogue.indicator(code)
            except KeyError as exc:
                result.missing = str(exc.args[0])
                results.append(result)
                continue
            method = self.catalogue.methods.get(code)
            result.scale = method.scale if method else scale_of(indicator)
            try:
                result.numerator = _number(row.get("numerator"), "numerator")
                text = (row.get("denominator") or "").strip()
                result.denominator = _number(text, "denominator") if text else None
            except _Missing as exc:
                result.missing = str(exc)
                results.append(result)
                continue
            result.measures = {"numerator": {"raw": row.get("numerator")},
                               "denominator": {"raw": row.get("denominator")}}
            results.append(_finish(result))
        return results

    # -- storing ----------------------------------------------------------------------

    def store(self, tenant: str, results: list[Result], now: datetime | None = None) -> int:
        """Each computed result as a KeyPerformanceIndicator entity (replacing the one of
        the same indicator, city and period); returns how many."""
        stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        entities = [self._entity(r, stamp.replace("+00:00", "Z")) for r in results
                    if r.value is not None]
        for start in range(0, len(entities), 500):
            result = self.broker.batch(tenant, "upsert", entities[start:start + 500],
                                       lambda item: self.ctx)
            if result.errors:
                raise RuntimeError(f"indicators not stored: {result.errors[:3]}")
        return len(entities)

    def _entity(self, r: Result, stamp: str) -> dict[str, Any]:
        indicator = self.catalogue.indicator(r.code)
        bounds: tuple[datetime, datetime] | None
        try:
            bounds = period_bounds(r.period)
        except ValueError:  # a raw file's own label for its period
            bounds = None
        body: dict[str, Any] = {
            "id": entity_id(r.city, r.code, r.period), "type": KPI,
            "name": prop(indicator.name),
            "kpiCode": prop(r.code), "catalogue": prop(indicator.catalogue),
            "category": prop(["quantitative"]),
            "kpiValue": prop(r.value), "unit": prop(indicator.unit),
            "desirableDirection": prop(indicator.direction or "unknown"),
            "city": prop(r.city), "period": prop(r.period),
            "calculationMethod": prop("automatic" if r.source == "store" else "manual"),
            "calculationFormula": prop(_formula(r)),
            "provenance": prop({"source": r.source, **r.measures,
                                 "numerator": r.numerator, "denominator": r.denominator,
                                 "scale": r.scale, "computedAt": stamp}),
            "calculatedBy": prop("dothi kpi compute"),
            "updatedAt": prop({"@type": "DateTime", "@value": stamp}),
        }
        if r.code in self.targets:
            body["kpiTarget"] = prop(self.targets[r.code])
        if bounds is not None:
            body["calculationPeriod"] = prop({
                "from": bounds[0].isoformat(), "to": bounds[1].isoformat()})
        return body


def city_values(broker: Broker, tenant: str, city: str) -> dict[str, dict[str, Any]]:
    """A city's stored indicator values: by code, then period, each with its provenance
    and formula."""
    ctx = broker.resolver.core
    docs = query_all(broker.store, tenant, EntityQuery(
        selectors=[Selector(types=parse_type_expr(KPI, ctx.expand))],
        q=parse_q(f'city=="{city}"'), expand=ctx.expand, limit=1000))
    by_code: dict[str, dict[str, Any]] = {}
    for doc in docs:
        item = render_entity(doc, ctx, RenderOptions(fmt="keyValues"))
        by_code.setdefault(item["kpiCode"], {})[item["period"]] = {
            "value": item["kpiValue"], "provenance": item.get("provenance"),
            "formula": item.get("calculationFormula")}
    return by_code


class _Missing(DothiError):
    """An indicator that cannot be computed, and why."""

    status = 422


def entity_id(city: str, code: str, period: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", code).strip("-")
    return f"urn:ngsi-ld:{KPI}:{re.sub(r'[^A-Za-z0-9-]+', '-', city)}:{slug}:" + \
        re.sub(r"[^0-9A-Za-z-]+", "-", period)


def _finish(r: Result) -> Result:
    assert r.numerator is not None
    if r.denominator is None:
        r.value = r.scale * r.numerator
    elif r.denominator == 0:
        r.missing = "the denominator is 0"
    else:
        r.value = r.scale * r.numerator / r.denominator
    return r


def _number(text: str | None, name: str) -> float:
    try:
        value = float((text or "").strip().replace(",", ""))
    except ValueError:
        raise _Missing(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Missing(f"{name} is not a finite number")
    return value


def _formula(r: Result) -> str:
    scale = f"{r.scale:g} × " if r.scale != 1 else ""
    return f"{scale}numerator / denominator" if r.denominator is not None \
        else f"{scale}numerator"


def read_raw(path: Path) -> list[dict[str, str]]:
    """The rows of a raw-values CSV (UTF-8; columns city, period, code, numerator,
    denominator)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"city", "period", "code", "numerator"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name}: no column {', '.join(sorted(missing))}")
        return list(reader)
