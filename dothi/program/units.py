"""The reporting units of the national programme: the 34 provinces and centrally run
cities after the 2025 reform (their official codes, names and representative points,
from the ``vietnamadminunits`` dataset), and any other unit a request names (a
ministry, by its short name)."""

from __future__ import annotations

from functools import cache
from typing import Any

from dothi.gis.admin_units import _rows


@cache
def provinces() -> dict[str, dict[str, Any]]:
    """By code: the name, the short name and the representative point (lon, lat)."""
    out: dict[str, dict[str, Any]] = {}
    for row in _rows():
        out.setdefault(row["provinceCode"], {
            "code": row["provinceCode"], "name": row["province"],
            "short": row["provinceShort"],
            "point": [row["provinceLon"], row["provinceLat"]]})
    return out


def unit_name(code: str) -> str:
    province = provinces().get(code)
    return province["name"] if province else code
