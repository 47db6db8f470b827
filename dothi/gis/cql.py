"""CQL2 filters as the store's own query: an NGSI-LD q syntax tree for the comparisons
and one geo-query for a spatial predicate, so a filtered request costs what the equivalent
NGSI-LD query costs. CQL2 text is read by ``dothi.gis.cql_text``, CQL2 JSON by
pygeofilter; both give pygeofilter's syntax tree, translated here.

Supported: =, <>, <, <=, >, >=, LIKE (CASEI for case-insensitive), BETWEEN, IN,
IS NOT NULL, their NOT forms, AND, OR and parentheses (IS NULL is not: NGSI-LD q can say
that an attribute is there, not that it is absent); one spatial predicate (S_INTERSECTS,
S_WITHIN, S_CONTAINS, S_DISJOINT, S_EQUALS, S_OVERLAPS) on the feature geometry, AND-ed
with the rest. Anything else is refused with what is supported."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_json

from dothi.gis import cql_text
from dothi.gis.cql_text import Unsupported
from dothi.ngsild import qlang
from dothi.ngsild.qlang import (
    BOOLEAN,
    NUMBER,
    STRING,
    AttrPath,
    Literal,
    Pattern,
    QExpr,
    Range,
    Term,
    ValueList,
)

__all__ = ["Translated", "Unsupported", "box", "parse", "translate"]

SPATIAL = {ast.GeometryIntersects: "intersects", ast.GeometryWithin: "within",
           ast.GeometryContains: "contains", ast.GeometryDisjoint: "disjoint",
           ast.GeometryEquals: "equals", ast.GeometryOverlaps: "overlaps"}
COMPARE = {ast.Equal: "==", ast.NotEqual: "!=", ast.LessThan: "<", ast.LessEqual: "<=",
           ast.GreaterThan: ">", ast.GreaterEqual: ">="}
NEGATED = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
GEOMETRY_NAMES = {"geometry", "geom", "location", "the_geom", "shape"}


@dataclass
class Translated:
    q: QExpr | None
    georel: str | None = None
    geometry: dict[str, Any] | None = None


def parse(text: str | None, lang: str | None) -> Any:
    """The filter's AST; ValueError with what is wrong when it does not parse."""
    if text is None:
        return None
    lang = lang or "cql2-text"
    try:
        if lang == "cql2-text":
            return cql_text.parse(text)
        if lang == "cql2-json":
            return parse_json(json.loads(text))
    except Unsupported:
        raise
    except Exception as exc:  # noqa: BLE001 - the readers' and json's errors, as they are
        raise ValueError(f"the {lang} filter does not parse: {exc}") from None
    raise ValueError(f"filter-lang {lang!r}: cql2-text or cql2-json")


def translate(node: Any, queryables: set[str]) -> Translated:
    """``node`` (a pygeofilter AST) as q plus at most one top-level spatial predicate."""
    spatial: list[Any] = []
    rest: list[Any] = []
    for part in _conjuncts(node):
        (spatial if type(part) in SPATIAL or isinstance(part, ast.BBox) else rest).append(part)
    if len(spatial) > 1:
        raise Unsupported("one spatial predicate per filter")
    out = Translated(qlang.join(qlang.And, [_q(p, queryables) for p in rest])
                     if rest else None)
    if spatial:
        out.georel, out.geometry = _spatial(spatial[0], queryables)
    return out


def _conjuncts(node: Any) -> list[Any]:
    if isinstance(node, ast.And):
        return [*_conjuncts(node.lhs), *_conjuncts(node.rhs)]
    return [node]


def _spatial(node: Any, queryables: set[str]) -> tuple[str, dict[str, Any]]:
    if isinstance(node, ast.BBox):
        _geometry_attribute(node.lhs)
        return "intersects", box(node.minx, node.miny, node.maxx, node.maxy)
    lhs, rhs = node.lhs, node.rhs
    if isinstance(lhs, ast.Attribute):
        _geometry_attribute(lhs)
        literal = rhs
    else:
        _geometry_attribute(rhs)
        literal = lhs
    return SPATIAL[type(node)], _geometry(literal)


def _geometry_attribute(node: Any) -> None:
    if not isinstance(node, ast.Attribute) or node.name.lower() not in GEOMETRY_NAMES:
        raise Unsupported("a spatial predicate compares the feature geometry (`geometry`) "
                          "with a literal geometry")


def _geometry(node: Any) -> dict[str, Any]:
    if isinstance(node, values.Geometry):
        return dict(node.geometry)  # both readers give GeoJSON with lists, as JSON does
    if isinstance(node, values.Envelope):
        # pygeofilter's CQL2 JSON reader fills Envelope(x1, x2, y1, y2) from a bbox's
        # [minx, miny, maxx, maxy] in that order, so its fields hold them positionally.
        return box(node.x1, node.x2, node.y1, node.y2)
    if isinstance(node, ast.Function) and node.name.lower() == "bbox" and \
            len(node.arguments) in (4, 6):
        a = node.arguments
        return box(a[0], a[1], a[2], a[3]) if len(a) == 4 else box(a[0], a[1], a[3], a[4])
    raise Unsupported("the geometry of a spatial predicate is a WKT or GeoJSON literal or "
                      "BBOX(minx, miny, maxx, maxy)")


def box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """The rectangle (x0, y0)-(x1, y1) as a GeoJSON Polygon."""
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1],
                                                [x0, y0]]]}


def _path(node: Any, queryables: set[str]) -> AttrPath:
    if not isinstance(node, ast.Attribute):
        raise Unsupported("a comparison has a property on its left and a literal on its right")
    if node.name not in queryables:
        raise ValueError(f"{node.name!r} is not a queryable of this collection "
                         f"({', '.join(sorted(queryables)) or 'none'})")
    return AttrPath((str(node.name),))


def _literal(value: Any) -> Literal:
    if isinstance(value, bool):
        return Literal(BOOLEAN, value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"number {value} is out of range")
        return Literal(NUMBER, value)
    if isinstance(value, str):
        return Literal(STRING, value)
    raise Unsupported(f"literal {value!r}: strings, numbers and booleans")


def _q(node: Any, queryables: set[str], negate: bool = False) -> QExpr:
    if isinstance(node, ast.Not):
        return _q(node.sub_node, queryables, not negate)
    if isinstance(node, ast.And | ast.Or):
        kind = qlang.And if isinstance(node, ast.And) != negate else qlang.Or  # De Morgan
        return qlang.join(kind, [_q(node.lhs, queryables, negate),
                                 _q(node.rhs, queryables, negate)])
    if type(node) in COMPARE:
        op = COMPARE[type(node)]
        return Term(_path(node.lhs, queryables), NEGATED[op] if negate else op,
                    _literal(node.rhs))
    if isinstance(node, ast.In):
        items = tuple(_literal(v) for v in node.sub_nodes)
        return Term(_path(node.lhs, queryables), "!=" if negate != node.not_ else "==",
                    items[0] if len(items) == 1 else ValueList(items))
    if isinstance(node, ast.Between):
        low, high = _literal(node.low), _literal(node.high)
        if low.kind != high.kind or low.kind not in (NUMBER, STRING):
            raise ValueError("BETWEEN takes two numbers or two character literals")
        if low.value > high.value:  # type: ignore[operator]
            raise ValueError("BETWEEN: the low end is above the high end")
        return Term(_path(node.lhs, queryables), "!=" if negate != node.not_ else "==",
                    Range(low, high))
    if isinstance(node, ast.IsNull):
        if negate == node.not_:  # NGSI-LD q can say that an attribute is there, not absent
            raise Unsupported("IS NULL is not supported (IS NOT NULL is)")
        return Term(_path(node.lhs, queryables))
    if isinstance(node, ast.Like):
        return Term(_path(node.lhs, queryables), "!~=" if negate != node.not_ else "~=",
                    Pattern(_like_regex(node)))
    if type(node) in SPATIAL or isinstance(node, ast.BBox):
        raise Unsupported("a spatial predicate is supported AND-ed with the rest of the "
                          "filter, not under OR or NOT")
    if isinstance(node, ast.SpatialComparisonPredicate | ast.Relate):
        raise Unsupported("S_TOUCHES, S_CROSSES and RELATE are not supported; spatial "
                          "predicates: S_INTERSECTS, S_WITHIN, S_CONTAINS, S_DISJOINT, "
                          "S_EQUALS, S_OVERLAPS")
    raise Unsupported(f"{type(node).__name__} is not supported; supported: comparisons, "
                      "LIKE, BETWEEN, IN, IS NULL, NOT, AND, OR and one spatial predicate")


def _like_regex(node: Any) -> str:
    """CQL2's LIKE pattern as a regular expression: % is any run of characters, _ one
    character, \\ escapes the next. The pattern's own wildcard fields are not read:
    pygeofilter's CQL2 JSON reader sets "." as the one-character wildcard, which CQL2
    does not have."""
    out = []
    escaped = False
    for ch in node.pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return ("(?i)" if node.nocase else "") + "^" + "".join(out) + "$"
