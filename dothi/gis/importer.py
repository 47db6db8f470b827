"""``dothi import``: a GIS file becomes a named layer of NGSI-LD entities.

Each feature is one entity (``urn:ngsi-ld:{type}:{layer}:{feature id}``) holding its
geometry as ``location`` (reprojected to WGS 84), its fields as Properties, and a
``refGisLayer`` Relationship to the layer's own ``GisLayer`` entity, which records the
source file and CRS, the fields, the feature count and the extent. Importing a layer again
replaces it: features no longer in the file are deleted.

An invalid geometry (self-intersecting ring, say) is refused with its feature number and
GEOS's reason, or, with ``repair``, made valid and flagged (``geometryRepaired`` true and
``geometryProblem``)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dothi.broker.broker import Broker
from dothi.gis.crs import label, resolve
from dothi.gis.geometry import Geometries, Refused, geojson
from dothi.gis.reader import open_source
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

LAYER_TYPE = "GisLayer"
LAYER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
BATCH = 1000
# Names a field cannot keep: NGSI-LD's own members and the ones the import writes.
RESERVED = {"id", "type", "location", "observationSpace", "operationSpace", "createdAt",
            "modifiedAt", "deletedAt", "scope", "refGisLayer", "geometryRepaired",
            "geometryProblem", "@context"}


def layer_id(name: str) -> str:
    return f"urn:ngsi-ld:{LAYER_TYPE}:{name}"


def attribute_name(source: str) -> str:
    """A field name as an NGSI-LD attribute name: ASCII (Vietnamese letters lose their
    marks, đ becomes d), other characters as _, starting with a letter."""
    text = unicodedata.normalize("NFD", source.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "field"
    if not text[0].isalpha():
        text = "f_" + text
    return "prop_" + text if text in RESERVED else text


@dataclass
class ImportReport:
    layer: str
    entity_type: str
    source_crs: str
    features: int = 0
    imported: int = 0
    repaired: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    removed: int = 0
    bbox: list[float] | None = None
    period: list[str] | None = None  # the earliest and latest instants of --datetime


class LayerImporter:
    def __init__(self, broker: Broker, tenant: str) -> None:
        self.broker = broker
        self.tenant = tenant
        self.ctx = broker.resolver.core

    def run(self, path: Path, *, layer: str | None = None, entity_type: str = "GisFeature",
            crs: str | None = None, repair: bool = False, source_layer: str | None = None,
            title: str | None = None, rename: dict[str, str] | None = None,
            temporal: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Import ``path`` as ``layer`` (default: the file's name). ``progress(done,
        total)`` is called as features are written. Raises ValueError for a file that
        cannot be read at all; per-feature problems are in the report."""
        import shapely

        name = layer or re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-")
        if not LAYER_NAME.fullmatch(name):
            raise ValueError(f"layer name {name!r}: letters, digits, - and _ only (≤ 63)")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", entity_type):
            raise ValueError(f"entity type {entity_type!r} is not a valid NGSI-LD type name")
        source = open_source(path, source_layer)
        source_crs = resolve(source.declared_crs, crs)
        rename = rename or {}
        for src, dst in rename.items():
            if src not in source.fields:
                raise ValueError(f"--field {src}={dst}: the file has no field {src!r} "
                                 f"(it has {', '.join(source.fields)})")
            if attribute_name(dst) != dst:
                raise ValueError(f"--field {src}={dst}: {dst!r} is not an attribute name "
                                 "(ASCII letters, digits and _; not a reserved name)")
        names = {f: rename.get(f) or attribute_name(f) for f in source.fields}
        if temporal is not None and temporal not in source.fields:
            raise ValueError(f"--datetime {temporal}: the file has no field {temporal!r}")
        report = ImportReport(name, entity_type, label(source_crs), source.count)
        ref = {"type": "Relationship", "object": layer_id(name)}
        batch: list[dict[str, Any]] = []
        numbers: dict[str, int] = {}  # entity id -> feature number, for the report
        written: set[str] = set()
        bounds: list[float] = []
        geometries = Geometries(source_crs, repair)
        for n, fid, shape, props in source.features:
            try:
                shape, problem = geometries.prepare(shape)
            except Refused as exc:
                report.refused.append((n, str(exc)))
                continue
            entity: dict[str, Any] = {
                "id": f"urn:ngsi-ld:{entity_type}:{name}:{fid if fid is not None else n}",
                "type": entity_type, "refGisLayer": ref}
            if problem is not None:
                report.repaired.append((n, problem))
                entity["geometryRepaired"] = {"type": "Property", "value": True}
                entity["geometryProblem"] = {"type": "Property", "value": problem}
            x0, y0, x1, y1 = (float(v) for v in shapely.bounds(shape))
            bounds = [x0, y0, x1, y1] if not bounds else [
                min(bounds[0], x0), min(bounds[1], y0), max(bounds[2], x1), max(bounds[3], y1)]
            entity["location"] = {"type": "GeoProperty", "value": geojson(shape)}
            if temporal is not None:
                when = _instant(props.get(temporal))
                if when is None:
                    report.refused.append((n, f"{temporal}: {props.get(temporal)!r} is not a "
                                              "date or date-time"))
                    continue
                props = {**props, temporal: {"@type": "DateTime", "@value": when}}
                report.period = [min(report.period[0], when), max(report.period[1], when)] \
                    if report.period else [when, when]
            for source_name, value in props.items():
                if value is not None and value != "":
                    entity[names[source_name]] = {"type": "Property", "value": value}
            numbers[entity["id"]] = n
            batch.append(entity)
            if len(batch) >= BATCH:
                self._write(batch, numbers, report, written, progress)
        self._write(batch, numbers, report, written, progress)
        report.bbox = bounds or None
        report.removed = self._remove_stale(name, entity_type, written)
        self._write_layer(path, report, names, title,
                          names[temporal] if temporal is not None else None)
        self.broker.store.analyze()  # a layer's first queries plan on fresh statistics
        return report

    def _write(self, batch: list[dict[str, Any]], numbers: dict[str, int],
               report: ImportReport, written: set[str],
               progress: Callable[[int, int], None] | None) -> None:
        if not batch:
            return
        result = self.broker.batch(self.tenant, "upsert", list(batch),
                                   lambda item: self.ctx)
        failed = {eid for eid, _ in result.errors}
        for eid, err in result.errors:
            report.refused.append((numbers.get(eid or "", 0), err.detail))
        for entity in batch:
            if entity["id"] not in failed:
                written.add(entity["id"])
                report.imported += 1
        batch.clear()
        if progress is not None:
            progress(report.imported + len(report.refused), report.features)

    def _remove_stale(self, name: str, entity_type: str, keep: set[str]) -> int:
        """Features of an earlier import of this layer (of this entity type or of the one
        the layer had) that this one no longer has."""
        types = {entity_type}
        before = self.broker.store.get(self.tenant, layer_id(name))
        if before is not None:
            earlier = (before.get(self.ctx.expand("featureType")) or [{}])[0].get("value")
            if isinstance(earlier, str):
                types.add(earlier)
        stale = [d["id"] for d in query_all(self.broker.store, self.tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(",".join(sorted(types)),
                                                      self.ctx.expand))],
            q=parse_q(f'refGisLayer=="{layer_id(name)}"'), expand=self.ctx.expand,
            limit=BATCH, ids_only=True)) if d["id"] not in keep]
        for start in range(0, len(stale), BATCH):
            self.broker.batch(self.tenant, "delete", stale[start:start + BATCH],
                              lambda item: self.ctx)
        return len(stale)

    def _write_layer(self, path: Path, report: ImportReport, names: dict[str, str],
                     title: str | None, temporal: str | None) -> None:
        layer: dict[str, Any] = {
            "id": layer_id(report.layer), "type": LAYER_TYPE,
            "name": {"type": "Property", "value": report.layer},
            "title": {"type": "Property", "value": title or report.layer},
            "featureType": {"type": "Property", "value": report.entity_type},
            "sourceFile": {"type": "Property", "value": path.name},
            "sourceCrs": {"type": "Property", "value": report.source_crs},
            "featureCount": {"type": "Property", "value": report.imported},
            "fields": {"type": "Property", "value": [
                {"name": attr, "source": src} for src, attr in names.items()]},
            "dateImported": {"type": "Property", "value": {
                "@type": "DateTime",
                "@value": datetime.now(UTC).isoformat(timespec="seconds").replace(
                    "+00:00", "Z")}},
        }
        if temporal is not None:
            layer["temporalField"] = {"type": "Property", "value": temporal}
            if report.period:
                layer["temporalExtent"] = {"type": "Property", "value": report.period}
        if report.bbox:
            x0, y0, x1, y1 = report.bbox
            layer["location"] = {"type": "GeoProperty", "value": {
                "type": "Polygon",
                "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}}
        result = self.broker.batch(self.tenant, "upsert", [layer], lambda item: self.ctx)
        if result.errors:
            raise ValueError(f"the layer entity was refused: {result.errors[0][1].detail}")


def _instant(value: Any) -> str | None:
    """A field's date or date-time as an ISO 8601 UTC instant (a date is its midnight UTC;
    a time without an offset is taken as UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
