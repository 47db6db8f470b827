"""The figures an operations centre keeps in view (the dashboard's tiles): open incidents
by domain and how many are overdue, devices online and silent, the worst PM2.5 and VN_AQI now, flood
stations above their alert level, and the warnings in force. Each is a counting query on
the store, so the figures are right with any number of server processes."""

from __future__ import annotations

from typing import Any

from dothi.broker.broker import Broker
from dothi.ioc.aqi import Method
from dothi.ioc.cap import WarningDesk
from dothi.ioc.incidents import IncidentDesk
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector


def summary(broker: Broker, desk: IncidentDesk, warnings: WarningDesk,
            tenant: str, rules_behind: int = 0) -> dict[str, Any]:
    ctx = broker.resolver.core

    def count(etype: str, q: str | None = None) -> int:
        query = EntityQuery(selectors=[Selector(types=parse_type_expr(etype, ctx.expand))],
                            q=parse_q(q) if q else None, expand=ctx.expand, limit=1,
                            count=True, ids_only=True)
        # Through the broker: an agency's officer counts its own incidents (dothi.auth).
        return int(broker.query(tenant, query).count or 0)

    open_states = "|".join(f'status=="{s}"' for s in sorted(desk.flow.open))
    by_category = {category: count("Incident", f'category=="{category}";({open_states})')
                   for category in desk.flow.categories}
    flooded = 0
    worst_pm25: float | None = None
    worst_aqi: float | None = None
    query = EntityQuery(selectors=[Selector(types=parse_type_expr(
        "FloodMonitoring", ctx.expand))], limit=10_000)
    for doc in broker.store.query(tenant, query)[0]:
        level, alert = desk.value(doc, "currentLevel"), desk.value(doc, "alertLevel")
        if isinstance(level, int | float) and isinstance(alert, int | float) and level > alert:
            flooded += 1
    query = EntityQuery(selectors=[Selector(types=parse_type_expr(
        "AirQualityObserved", ctx.expand))], limit=10_000)
    for doc in broker.store.query(tenant, query)[0]:
        pm25, aqi = desk.value(doc, "pm25"), desk.value(doc, "airQualityIndex")
        if isinstance(pm25, int | float) and (worst_pm25 is None or pm25 > worst_pm25):
            worst_pm25 = float(pm25)
        if isinstance(aqi, int | float) and (worst_aqi is None or aqi > worst_aqi):
            worst_aqi = float(aqi)
    return {
        "openIncidents": {k: v for k, v in by_category.items() if v},
        "openIncidentsTotal": sum(by_category.values()),
        "overdueIncidents": count("Incident", f"escalationLevel>0;({open_states})"),
        "devices": {state: count("Device", f'deviceState=="{state}"')
                    for state in ("online", "silent", "unknown")},
        "floodStationsAboveAlert": flooded,
        "pm25Max": worst_pm25,
        "aqiMax": worst_aqi,
        "aqiLevel": None if worst_aqi is None else _level(round(worst_aqi)),
        "warningsInForce": len(warnings.current(tenant)),
        # Changes this process's rule engine could not judge (it fell behind a storm).
        "changesNotJudged": rules_behind,
    }


_METHOD: list[Method] = []


def _level(aqi: int) -> dict[str, Any]:
    """The VN_AQI band of ``aqi``: its name, Vietnamese and English labels and colour."""
    if not _METHOD:
        _METHOD.append(Method.shipped())
    level = _METHOD[0].level(aqi)
    return {"name": level.name, "vi": level.vi, "en": level.en,
            "rgb": list(level.rgb), "health": dict(level.health)}
