"""The temporal representation of entities (clauses 4.5.7–4.5.19, 6.18–6.22): query
parameters, ISO 8601 durations, and the three representations (normalized,
temporalValues, aggregatedValues) built from stored attribute instances."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dothi.errors import BadRequestData
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.render import RenderOptions, render_instance, simple_value
from dothi.ngsild.timeutil import format_iso, normalize_datetime

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt")
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
# The member that carries an instance's value in temporalValues, by attribute type.
VALUES_KEY = {
    "Property": "values", "GeoProperty": "values", "Relationship": "objects",
    "LanguageProperty": "languageMaps", "ListProperty": "valueLists",
    "ListRelationship": "objectLists", "JsonProperty": "jsons", "VocabProperty": "vocabs",
}
# temporalValues give a LanguageProperty's whole map at each time.
ALL_LANGUAGES = RenderOptions()
_DURATION = re.compile(
    r"P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def iso_to_ms(text: str) -> int:
    """Milliseconds since the epoch of a stored (normalised, UTC) timestamp."""
    dt = datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    return (dt - EPOCH) // timedelta(milliseconds=1)


def ms_to_iso(ms: int) -> str:
    return format_iso(EPOCH + timedelta(milliseconds=ms))


def parse_duration_ms(text: str) -> int:
    """An ISO 8601 duration of fixed length (weeks, days, hours, minutes, seconds) in ms."""
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration is not an ISO 8601 duration: {text!r}")
    if match.group("y") or match.group("mo"):
        raise BadRequestData(
            "aggrPeriodDuration in years or months has no fixed length; use weeks or days "
            f"(e.g. P30D): {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    ms = (parts.get("w", 0) * 7 * 86400 + parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600
          + parts.get("mi", 0) * 60 + parts.get("s", 0)) * 1000
    if ms < 1:
        raise BadRequestData("aggrPeriodDuration must be longer than zero")
    return int(ms)


@dataclass
class TimeQuery:
    """What part of each attribute's history to return, and how."""

    start: int | None = None  # ms, inclusive (timerel=after starts 1 ms after timeAt)
    end: int | None = None  # ms, exclusive
    timeproperty: str = "observedAt"
    last_n: int | None = None
    fmt: str = "normalized"  # normalized, temporalValues, aggregatedValues
    aggr_methods: tuple[str, ...] = ()
    aggr_period_ms: int | None = None
    attrs: frozenset[str] | None = None  # attribute IRIs
    sys_attrs: bool = False

    @property
    def render(self) -> RenderOptions:
        """How each instance of the normalized representation is rendered."""
        return RenderOptions(sys_attrs=self.sys_attrs)


def parse_time_query(params: Mapping[str, Any], ctx: ActiveContext,
                     *, need_timerel: bool) -> TimeQuery:
    """timerel/timeAt/endTimeAt/timeproperty/lastN/options/aggr* (clause 6.18.3.2)."""
    timerel = params.get("timerel")
    time_at = params.get("timeAt")
    end_at = params.get("endTimeAt")
    tq = TimeQuery()
    if timerel is None:
        if need_timerel and params.get("lastN") is None:
            raise BadRequestData("A temporal query needs timerel (before, after or between) "
                                 "with timeAt, or lastN")
        if time_at is not None or end_at is not None:
            raise BadRequestData("timeAt and endTimeAt need timerel")
    else:
        if timerel not in TIMERELS:
            raise BadRequestData(f"timerel must be one of {', '.join(TIMERELS)}")
        if time_at is None:
            raise BadRequestData("timerel needs timeAt")
        at = iso_to_ms(normalize_datetime(time_at, "timeAt"))
        if timerel == "between":
            if end_at is None:
                raise BadRequestData("timerel=between needs endTimeAt")
            end = iso_to_ms(normalize_datetime(end_at, "endTimeAt"))
            if end <= at:
                raise BadRequestData("endTimeAt must be later than timeAt")
            tq.start, tq.end = at, end
        elif end_at is not None:
            raise BadRequestData("endTimeAt is only used with timerel=between")
        elif timerel == "before":
            tq.end = at
        else:
            tq.start = at + 1
    prop = params.get("timeproperty") or "observedAt"
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}")
    tq.timeproperty = prop
    last_n = params.get("lastN")
    if last_n is not None:
        if not str(last_n).isdigit() or int(last_n) < 1:
            raise BadRequestData("lastN must be a positive integer")
        tq.last_n = int(last_n)
    fmt = params.get("format")
    for opt in (o.strip() for o in (params.get("options") or "").split(",")):
        if opt in ("temporalValues", "aggregatedValues", "normalized"):
            if fmt is not None and fmt != opt:
                raise BadRequestData("options and format name different representations")
            fmt = opt
        elif opt == "sysAttrs":
            tq.sys_attrs = True
        elif opt in ("simplified", "keyValues"):
            fmt = "temporalValues"
        elif opt:
            raise BadRequestData(f"Unknown option {opt!r}")
    if fmt in ("simplified", "keyValues"):
        fmt = "temporalValues"
    if fmt not in (None, "normalized", "temporalValues", "aggregatedValues"):
        raise BadRequestData(f"Unknown temporal format {fmt!r}")
    tq.fmt = fmt or "normalized"
    if tq.fmt == "aggregatedValues":
        methods = params.get("aggrMethods")
        if not methods:
            raise BadRequestData("aggregatedValues needs aggrMethods")
        chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
        bad = [m for m in chosen if m not in AGGR_METHODS]
        if bad or not chosen:
            raise BadRequestData(f"Unknown aggrMethods {bad}; use {', '.join(AGGR_METHODS)}")
        tq.aggr_methods = chosen
        period = params.get("aggrPeriodDuration")
        tq.aggr_period_ms = parse_duration_ms(period) if period else None
    elif params.get("aggrMethods") or params.get("aggrPeriodDuration"):
        raise BadRequestData("aggrMethods and aggrPeriodDuration need format aggregatedValues")
    attrs = params.get("attrs")
    if attrs:
        tq.attrs = frozenset(ctx.expand(a.strip()) for a in attrs.split(",") if a.strip())
    return tq


# -- rendering ---------------------------------------------------------------------------

def render_temporal(
    eid: str, types: list[str], attrs: dict[str, list[dict]], ctx: ActiveContext,
    tq: TimeQuery,
) -> dict[str, Any]:
    """One temporal entity; ``attrs`` maps attribute IRIs to instances in time order
    (each with instanceId and its timestamps)."""
    out: dict[str, Any] = {"id": eid}
    compact = [ctx.compact(t) for t in types]
    if compact:
        out["type"] = compact[0] if len(compact) == 1 else compact
    for iri, instances in attrs.items():
        name = ctx.compact(iri)
        if tq.fmt == "temporalValues":
            out[name] = _values(instances, ctx, tq.timeproperty)
        else:
            out[name] = [render_instance(i, ctx, tq.render, i) for i in instances]
    return out


def _values(instances: list[dict], ctx: ActiveContext, timeproperty: str) -> Any:
    """temporalValues: one object per datasetId with [value, time] pairs."""
    groups: dict[str | None, dict[str, Any]] = {}
    for inst in instances:
        ds = inst.get("datasetId")
        atype = inst["type"]
        group = groups.get(ds)
        if group is None:
            group = {"type": atype, VALUES_KEY[atype]: []}
            if ds is not None:
                group["datasetId"] = ds
            groups[ds] = group
        group[VALUES_KEY[atype]].append([simple_value(inst, ctx, ALL_LANGUAGES),
                                          inst.get(timeproperty)])
    found = list(groups.values())
    return found[0] if len(found) == 1 else found


def render_aggregated(
    eid: str, types: list[str], buckets: dict[str, dict[str | None, list[dict]]],
    kinds: dict[str, str], ctx: ActiveContext, tq: TimeQuery,
) -> dict[str, Any]:
    """aggregatedValues: per attribute (and datasetId), each method's
    [value, startAt, endAt] triples."""
    out: dict[str, Any] = {"id": eid}
    compact = [ctx.compact(t) for t in types]
    if compact:
        out["type"] = compact[0] if len(compact) == 1 else compact
    for iri, per_dataset in buckets.items():
        rendered = []
        for ds, rows in per_dataset.items():
            item: dict[str, Any] = {"type": kinds.get(iri, "Property")}
            if ds is not None:
                item["datasetId"] = ds
            for method in tq.aggr_methods:
                item[method] = [[r[method], ms_to_iso(r["start"]), ms_to_iso(r["end"])]
                                for r in rows]
            rendered.append(item)
        out[ctx.compact(iri)] = rendered[0] if len(rendered) == 1 else rendered
    return out
