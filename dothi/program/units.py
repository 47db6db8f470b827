"""The units of the national programme: the 34 provinces and centrally run cities after
the 2025 reform, which report (their official codes, names and representative points,
from the ``vietnamadminunits`` dataset), any other reporting unit a request names (a
ministry, by its short name), and the wards and communes that may be pilots."""

from __future__ import annotations

from functools import cache
from typing import Any

from dothi.gis.admin_units import rows


@cache
def provinces() -> dict[str, dict[str, Any]]:
    """By code: the name, the short name and the representative point (lon, lat)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows():
        out.setdefault(row["provinceCode"], {
            "code": row["provinceCode"], "name": row["province"],
            "short": row["provinceShort"],
            "point": [row["provinceLon"], row["provinceLat"]]})
    return out


@cache
def wards() -> dict[str, dict[str, str]]:
    """The wards, communes and special zones by code: their names and provinces."""
    return {r["wardCode"]: {"name": r["ward"], "province": r["province"]} for r in rows()}


def unit_name(code: str) -> str:
    province = provinces().get(code)
    return province["name"] if province else code
