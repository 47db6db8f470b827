"""Vietnam's administrative units after the 2025 reform (34 provinces and 3,321 wards,
communes and special zones, with their official codes) as reference ``AdministrativeArea``
entities, from the ``vietnamadminunits`` package's dataset (MIT licence).

The dataset has no boundary polygons: each unit's ``location`` is its representative point,
and ``boundaryStatus`` says ``notAvailable``. ``import_boundaries`` puts a file's polygons
on the units whose official code the file carries (``boundaryStatus`` ``imported``, with
the file named in ``boundarySource``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import shapely.geometry
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from dothi.broker.broker import Broker
from dothi.gis.crs import label, resolve
from dothi.gis.geometry import Geometries, Refused, geojson
from dothi.gis.reader import open_source
from dothi.ngsild.entity import first_value
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

SOURCE = ("vietnamadminunits (MIT licence), after the 2025 reorganisation of administrative "
          "units; https://github.com/tranngocminhhieu/vietnamadminunits")
LEVEL = {"Phường": "ward", "Xã": "commune", "Đặc khu": "specialZone"}
BATCH = 1000


def province_id(code: str) -> str:
    return f"urn:ngsi-ld:AdministrativeArea:vn-province-{code}"


def ward_id(code: str) -> str:
    return f"urn:ngsi-ld:AdministrativeArea:vn-ward-{code}"


def rows() -> list[dict[str, Any]]:
    """The dataset's wards, each with its province, by province and ward code."""
    db = resources.files("vietnamadminunits").joinpath("data/dataset.db")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT province, provinceShort, provinceCode, provinceLat, provinceLon, ward, "
            "wardShort, wardType, wardCode, wardLat, wardLon, wardAreaKm2 FROM admin_units "
            "ORDER BY provinceCode, wardCode")]


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def entities(province: str | None = None) -> Iterator[dict[str, Any]]:
    """The provinces (or one, by code), then their wards, as NGSI-LD entities."""
    seen: set[str] = set()
    for row in rows():
        code = row["provinceCode"]
        if province is not None and code != province:
            continue
        if code not in seen:
            seen.add(code)
            yield {"id": province_id(code), "type": "AdministrativeArea",
                   "name": _prop(row["province"]), "alternateName": _prop(row["provinceShort"]),
                   "officialCode": _prop(code), "administrativeLevel": _prop("province"),
                   "location": _point(row["provinceLon"], row["provinceLat"]),
                   "boundaryStatus": _prop("notAvailable"), "source": _prop(SOURCE)}
        ward = {"id": ward_id(row["wardCode"]), "type": "AdministrativeArea",
                "name": _prop(row["ward"]), "alternateName": _prop(row["wardShort"]),
                "officialCode": _prop(row["wardCode"]),
                "administrativeLevel": _prop(LEVEL.get(row["wardType"], row["wardType"])),
                "containedInPlace": {"type": "Relationship", "object": province_id(code)},
                "location": _point(row["wardLon"], row["wardLat"]),
                "boundaryStatus": _prop("notAvailable"), "source": _prop(SOURCE)}
        if row["wardAreaKm2"] is not None:  # two units have none in the dataset
            ward["area"] = _prop(row["wardAreaKm2"], unitCode="KMK")
        yield ward


def load(broker: Broker, tenant: str, province: str | None = None,
         progress: Callable[[int, int], None] | None = None) -> tuple[int, list[str]]:
    """Upsert the units (only their reference attributes: a boundary imported before is
    kept); returns (how many, errors)."""
    items = list(entities(province))
    if not items:
        raise ValueError(f"no province with code {province!r}")
    errors: list[str] = []
    ctx = broker.resolver.core
    bounded = _with_boundary(broker, tenant)
    for item in items:
        if item["id"] in bounded:  # keep the polygon imported from a file
            del item["location"], item["boundaryStatus"]
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        result = broker.batch(tenant, "upsert", chunk, lambda item: ctx, options="update")
        errors.extend(f"{eid}: {err.detail}" for eid, err in result.errors)
        if progress is not None:
            progress(start + len(chunk), len(items))
    broker.store.analyze()
    return len(items) - len(errors), errors


def bounded_areas(broker: Broker, tenant: str, geo: Any = None
                  ) -> list[tuple[dict, BaseGeometry]]:
    """The tenant's AdministrativeArea entities that have a boundary (units loaded without
    one have only a point), each with its shape; only those meeting ``geo`` if given."""
    ctx = broker.resolver.core
    out = []
    for doc in query_all(broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr("AdministrativeArea", ctx.expand))],
            geo=geo, expand=ctx.expand, limit=1000)):
        where = first_value(doc, ctx.expand("location"))
        if isinstance(where, dict) and where.get("type") in ("Polygon", "MultiPolygon"):
            out.append((doc, shapely.geometry.shape(where)))
    return out


def city_outline(broker: Broker, tenant: str) -> BaseGeometry | None:
    """The union of the tenant's areas with a boundary; None without any."""
    shapes = [s for _, s in bounded_areas(broker, tenant)]
    return unary_union(shapes) if shapes else None


def _with_boundary(broker: Broker, tenant: str) -> set[str]:
    ctx = broker.resolver.core
    return {d["id"] for d in query_all(broker.store, tenant, EntityQuery(
        selectors=[Selector(types=parse_type_expr("AdministrativeArea", ctx.expand))],
        q=parse_q('boundaryStatus=="imported"'), expand=ctx.expand, limit=BATCH,
        ids_only=True))}


@dataclass
class BoundaryReport:
    source_crs: str
    matched: int = 0
    unknown: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def import_boundaries(broker: Broker, tenant: str, path: Path, code_field: str, *,
                      level: str = "ward", crs: str | None = None,
                      repair: bool = False) -> BoundaryReport:
    """Put the polygons of ``path`` on the units whose official code is in ``code_field``
    (wards, or provinces with ``level="province"``). Codes are read as numbers, with the
    leading zeros a spreadsheet drops restored to the official width (5 digits for wards,
    2 for provinces)."""
    source = open_source(path)
    if code_field not in source.fields:
        raise ValueError(f"{path.name} has no field {code_field!r} "
                         f"(it has {', '.join(source.fields)})")
    source_crs = resolve(source.declared_crs, crs)
    width, make_id = (2, province_id) if level == "province" else (5, ward_id)
    report = BoundaryReport(label(source_crs))
    ctx = broker.resolver.core
    updates: list[dict[str, Any]] = []
    geometries = Geometries(source_crs, repair)
    for n, _fid, shape, props in source.features:
        raw = props.get(code_field)
        code = str(int(raw)).zfill(width) if isinstance(raw, int | float) or (
            isinstance(raw, str) and raw.strip().isdigit()) else None
        if code is None:
            report.unknown.append((n, f"no official code in {code_field!r}: {raw!r}"))
            continue
        if shape is not None and shape.geom_type not in ("Polygon", "MultiPolygon"):
            report.refused.append((n, "not a polygon"))
            continue
        try:
            shape, _problem = geometries.prepare(shape)
        except Refused as exc:
            report.refused.append((n, str(exc)))
            continue
        if broker.store.get(tenant, make_id(code)) is None:
            report.unknown.append((n, f"no {level} with code {code} (load them first: "
                                      "dothi admin-units load)"))
            continue
        updates.append({"id": make_id(code), "type": "AdministrativeArea",
                        "location": {"type": "GeoProperty", "value": geojson(shape)},
                        "boundaryStatus": _prop("imported"),
                        "boundarySource": _prop(f"{path.name} ({report.source_crs})")})
    for start in range(0, len(updates), BATCH):
        result = broker.batch(tenant, "upsert", updates[start:start + BATCH],
                              lambda item: ctx, options="update")
        report.matched += len(updates[start:start + BATCH]) - len(result.errors)
        report.refused.extend((0, f"{eid}: {err.detail}") for eid, err in result.errors)
    return report
