"""Planning look-up: which planning zones, and which of their rules, apply at a point or on
a parcel. Zones are ``PlanningZone`` entities, imported with ``dothi import --type
PlanningZone`` and ``--field`` renaming the file's columns to these attribute names:

    zoneCode, landUse, maxFloorAreaRatio, maxHeight, maxBuildingDensity,
    approvalDecision, approvalDate

Parcels (for a look-up by parcel id) are ``LandParcel`` entities with ``parcelId``."""

from __future__ import annotations

from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.gis.admin_units import bounded_areas
from dothi.ngsild import qlang
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

KEY_VALUES = RenderOptions(fmt="keyValues")
RULES = ("zoneCode", "landUse", "maxFloorAreaRatio", "maxHeight", "maxBuildingDensity",
         "approvalDecision", "approvalDate")
# How each rule reads, in Vietnamese and in English.
LABELS = {
    "zoneCode": ("Mã ô quy hoạch", "Zone code"),
    "landUse": ("Chức năng sử dụng đất", "Land use"),
    "maxFloorAreaRatio": ("Hệ số sử dụng đất tối đa", "Maximum floor-area ratio"),
    "maxHeight": ("Chiều cao tối đa (m)", "Maximum height (m)"),
    "maxBuildingDensity": ("Mật độ xây dựng tối đa (%)", "Maximum building density (%)"),
    "approvalDecision": ("Quyết định phê duyệt", "Approving decision"),
    "approvalDate": ("Ngày phê duyệt", "Date approved"),
}
LAND_USE = {
    "residential": ("Đất ở", "Residential"),
    "commercial": ("Đất thương mại, dịch vụ", "Commercial and services"),
    "mixed": ("Đất hỗn hợp", "Mixed use"),
    "green": ("Đất cây xanh", "Green space"),
    "public": ("Đất công trình công cộng", "Public facilities"),
    "education": ("Đất giáo dục", "Education"),
    "health": ("Đất y tế", "Health"),
    "industrial": ("Đất công nghiệp", "Industrial"),
    "transport": ("Đất giao thông", "Transport"),
    "water": ("Mặt nước", "Water"),
}


def lookup(broker: Broker, tenant: str, *, lon: float | None = None,
           lat: float | None = None, parcel: str | None = None) -> dict[str, Any]:
    ctx = broker.resolver.core
    if parcel is not None:
        where = _parcel(broker, tenant, parcel)
    else:
        if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BadRequestData("give lat and lon (WGS 84 degrees), or parcel")
        where = {"type": "Point", "coordinates": [lon, lat]}
    geo = parse_geoquery("intersects", where["type"], where["coordinates"], None)
    zones = []
    for doc in _all(broker, tenant, "PlanningZone", geo):
        item = render_entity(doc, ctx, KEY_VALUES)
        zones.append({
            "id": item["id"],
            "layer": str(item.get("refGisLayer", "")).rsplit(":", 1)[-1] or None,
            **{k: item[k] for k in RULES if k in item},
            "rules": [{"name": k, "vi": LABELS[k][0], "en": LABELS[k][1],
                       "value": item[k], **_use(k, item[k])} for k in RULES if k in item],
        })
    wards = [render_entity(d, ctx, KEY_VALUES) for d, _ in bounded_areas(broker, tenant, geo)]
    return {"where": where, "parcel": parcel, "zones": zones,
            "areas": [{"id": w["id"], "name": w.get("name"),
                       "level": w.get("administrativeLevel")} for w in wards],
            "summary": _summary(zones)}


def _use(name: str, value: Any) -> dict[str, str]:
    if name == "landUse" and isinstance(value, str) and value in LAND_USE:
        vi, en = LAND_USE[value]
        return {"valueVi": vi, "valueEn": en}
    return {}


def _summary(zones: list[dict[str, Any]]) -> dict[str, str]:
    if not zones:
        return {"vi": "Không có ô quy hoạch nào tại vị trí này trong dữ liệu đã nạp.",
                "en": "No planning zone at this place in the data loaded."}
    vi, en = [], []
    for z in zones:
        use = LAND_USE.get(str(z.get("landUse")), (z.get("landUse"), z.get("landUse")))
        vi.append(f"Ô {z.get('zoneCode', '?')}: {use[0] or 'chưa rõ chức năng'}"
                  + (f", hệ số sử dụng đất tối đa {z['maxFloorAreaRatio']}"
                     if "maxFloorAreaRatio" in z else "")
                  + (f", cao tối đa {z['maxHeight']} m" if "maxHeight" in z else ""))
        en.append(f"Zone {z.get('zoneCode', '?')}: {use[1] or 'use not given'}"
                  + (f", maximum floor-area ratio {z['maxFloorAreaRatio']}"
                     if "maxFloorAreaRatio" in z else "")
                  + (f", maximum height {z['maxHeight']} m" if "maxHeight" in z else ""))
    return {"vi": "; ".join(vi) + ".", "en": "; ".join(en) + "."}


def _parcel(broker: Broker, tenant: str, parcel: str) -> dict[str, Any]:
    docs = _all(broker, tenant, "LandParcel", None, q=f"parcelId=={qlang.quote(parcel)}")
    if not docs:
        raise ResourceNotFound(f"No land parcel {parcel!r}")
    value = (docs[0].get(broker.resolver.core.expand("location")) or [{}])[0].get("value")
    if not isinstance(value, dict):
        raise BadRequestData(f"land parcel {parcel!r} has no location")
    return value


def _all(broker: Broker, tenant: str, etype: str, geo: Any, q: str | None = None
         ) -> list[dict]:
    ctx = broker.resolver.core
    return query_all(broker.store, tenant, EntityQuery(
        selectors=[Selector(types=parse_type_expr(etype, ctx.expand))],
        q=parse_q(q) if q else None, geo=geo, geo_attr=ctx.expand("location"),
        expand=ctx.expand, limit=1000))
