"""A published dataset in open formats: its entities now (CSV, GeoJSON, NGSI-LD JSON-LD,
Parquet), and the values of its ``history`` attributes over a period (CSV, Parquet).

Withheld attributes never leave: they are dropped before any format is written. A table
(CSV, Parquet) has one column per attribute; a value that is not a number, text or
boolean (an address, a list) is written as its JSON. Points also get longitude and latitude
columns, and every geometry its GeoJSON in a ``geometry`` column."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from dothi.broker.broker import Broker
from dothi.errors import TooManyResults
from dothi.ngsild.context import CORE_CONTEXT_URL
from dothi.ngsild.qlang import STRING, AttrPath, Literal, Term
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.temporal import TimeQuery
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.opendata.catalogue import Dataset
from dothi.store.base import EntityQuery, Selector, query_all

MEDIA = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json",
         "jsonld": "application/ld+json", "parquet": "application/vnd.apache.parquet"}
TABLES = ("csv", "parquet")
MAX_HISTORY_DAYS = 366
MAX_HISTORY_ROWS = 1_000_000  # a download is built in memory
PAGE = 500  # entities read at a time from the history


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]


def entities(broker: Broker, tenant: str, dataset: Dataset, fmt: str) -> bytes:
    """The dataset's entities now, in ``fmt`` (csv, geojson, jsonld or parquet)."""
    ctx = broker.resolver.core
    q = None if dataset.layer is None else \
        Term(AttrPath(("refGisLayer",)), "==", Literal(STRING, dataset.layer))
    docs = query_all(broker.store, tenant, EntityQuery(
        selectors=[_selector(broker, dataset)], q=q, expand=ctx.expand, limit=1000))
    docs.sort(key=lambda d: d["id"])
    omit = frozenset(dataset.withhold) or None
    if fmt == "jsonld":
        normalized = RenderOptions(omit=omit)
        return orjson.dumps([{**render_entity(d, ctx, normalized),
                              "@context": CORE_CONTEXT_URL} for d in docs])
    items = [render_entity(d, ctx, RenderOptions(fmt="keyValues", omit=omit)) for d in docs]
    if fmt == "geojson":
        return orjson.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": i["id"], "geometry": i.get("location"),
             "properties": {k: v for k, v in i.items() if k not in ("id", "location")}}
            for i in items]})
    return write_table(_entity_table(items), fmt)


def history(broker: Broker, tenant: str, dataset: Dataset, start: datetime, end: datetime,
            fmt: str) -> bytes:
    """The values of the dataset's history attributes observed in [start, end): one row per
    entity and time of observation, in ``fmt`` (csv or parquet)."""
    ctx = broker.resolver.core
    names = list(dataset.history)
    iris = {ctx.expand(n): n for n in names}
    tq = TimeQuery(start=int(start.timestamp() * 1000), end=int(end.timestamp() * 1000),
                   attrs=frozenset(iris))
    selector = _selector(broker, dataset)
    hours = int((end - start).total_seconds() // 3600) + 1
    rows: list[list[Any]] = []
    offset = 0
    while True:
        found, _ = broker.store.temporal_query(tenant, [selector], None, tq, PAGE, offset,
                                               False, max(1000, hours * 60))
        for temporal in found:
            at: dict[str, dict[str, Any]] = {}
            for iri, instances in temporal.attrs.items():
                for instance in instances:
                    when = instance.get("observedAt")
                    if isinstance(when, str):
                        at.setdefault(when, {})[iris[iri]] = _plain(instance.get("value"))
            rows.extend([temporal.id, when, *(values.get(n) for n in names)]
                        for when, values in sorted(at.items()))
            if len(rows) > MAX_HISTORY_ROWS:
                raise TooManyResults(f"More than {MAX_HISTORY_ROWS:,} rows: ask for a "
                                     "shorter period")
        if len(found) < PAGE:
            break
        offset += PAGE
    rows.sort(key=lambda r: (r[1], r[0]))
    return write_table(Table(["id", "observedAt", *names], rows), fmt)


def _selector(broker: Broker, dataset: Dataset) -> Selector:
    """The entities of the dataset's type (a layer's are narrowed further by the caller)."""
    ctx = broker.resolver.core
    return Selector(types=parse_type_expr(ctx.compact(dataset.type_iri), ctx.expand))


def write_table(table: Table, fmt: str) -> bytes:
    if fmt == "parquet":
        return _parquet(table)
    out = io.StringIO()
    out.write("\ufeff")  # Excel, which most officials open a CSV with, then reads UTF-8
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows([["" if v is None else v for v in row] for row in table.rows])
    return out.getvalue().encode("utf-8")


def _entity_table(items: list[dict[str, Any]]) -> Table:
    names = sorted({k for i in items for k in i} - {"id", "type", "location"})
    points = any(isinstance(i.get("location"), dict) and i["location"].get("type") == "Point"
                 for i in items)
    columns = ["id", *names, *(("longitude", "latitude") if points else ()), "geometry"]
    rows = []
    for i in items:
        row = [i["id"], *(_plain(i.get(n)) for n in names)]
        where = i.get("location")
        if points:
            xy = where.get("coordinates") if isinstance(where, dict) and \
                where.get("type") == "Point" else None
            row.extend(xy[:2] if isinstance(xy, list) and len(xy) >= 2 else (None, None))
        row.append(orjson.dumps(where).decode() if where is not None else None)
        rows.append(row)
    return Table(columns, rows)


def _plain(value: Any) -> Any:
    """A table cell: numbers, text and booleans as they are, anything else as JSON."""
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return orjson.dumps(value).decode()


def _parquet(table: Table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for k, name in enumerate(table.columns):
        values = [row[k] for row in table.rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            arrays[name] = pa.array(values, pa.bool_())
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            arrays[name] = pa.array(values, pa.int64())
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in present):
            arrays[name] = pa.array([None if v is None else float(v) for v in values],
                                    pa.float64())
        else:
            arrays[name] = pa.array([None if v is None else str(v) for v in values],
                                    pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue()
