"""dothi's CQL2 text reader: the same tree as pygeofilter's where pygeofilter reads the
standard right, the standard's meaning where it does not, and errors that say where."""

from __future__ import annotations

import random

import pytest
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text import parse as pygeofilter_parse

from dothi.gis.cql_text import Unsupported, parse

POLYGON = "POLYGON((108.2 16.0, 108.21 16.0, 108.21 16.01, 108.2 16.01, 108.2 16.0))"


@pytest.mark.parametrize("text", [
    "landUse = 'green'",
    "far > 2 AND landUse = 'green' AND code <> 'A1'",
    "far >= 2 OR far <= 1 OR far < 0.5",
    f"landUse = 'green' AND far > 2 AND S_INTERSECTS(geometry, {POLYGON})",
    "S_WITHIN(geometry, POINT(108.2 16.05))",
    "S_CONTAINS(geometry, LINESTRING(108.2 16.0, 108.3 16.1))",
    "S_DISJOINT(geometry, MULTIPOINT((1 2), (3 4)))",
    "S_EQUALS(geometry, MULTIPOLYGON(((1 2, 3 4, 5 6, 1 2)), ((7 8, 9 10, 11 12, 7 8))))",
    "S_OVERLAPS(geometry, MULTILINESTRING((1 2, 3 4), (5 6, 7 8)))",
    "S_INTERSECTS(geometry, BBOX(108.1, 15.9, 108.2, 16))",
    "far BETWEEN 1 AND 2.5", "far NOT BETWEEN -1 AND 2",
    "code IN ('A1', 'C3')", "code NOT IN ('A1')", "maxHeight IS NOT NULL", "code IS NULL",
    "flag = TRUE", "flag = false", "x1 = -2.5e3", "x1 = .5", "x1 = 5.",
    "NOT landUse = 'green'", "NOT (landUse = 'green')", "(far > 1 AND far < 3)",
    '"max height" > 30', "a:b.c = 1",
])
def test_same_tree_as_pygeofilter(text: str) -> None:
    assert parse(text) == pygeofilter_parse(text)


def test_and_binds_tighter_than_or() -> None:
    """CQL2's booleanExpression is booleanTerm {OR booleanTerm}; pygeofilter 0.4.0 reads
    the first two as a group instead."""
    a, b, c = (ast.Equal(ast.Attribute(n), 1) for n in ("aa", "bb", "cc"))
    assert parse("aa = 1 OR bb = 1 AND cc = 1") == ast.Or(a, ast.And(b, c))
    assert parse("aa = 1 AND bb = 1 OR cc = 1") == ast.Or(ast.And(a, b), c)
    assert pygeofilter_parse("aa = 1 OR bb = 1 AND cc = 1") == ast.And(ast.Or(a, b), c)


@pytest.mark.parametrize(("text", "tree"), [
    ("NOT (aa = 1 OR bb = 2)", ast.Not(ast.Or(ast.Equal(ast.Attribute("aa"), 1),
                                              ast.Equal(ast.Attribute("bb"), 2)))),
    ("x = 'it''s'", ast.Equal(ast.Attribute("x"), "it's")),
    ("x = 'it\\'s'", ast.Equal(ast.Attribute("x"), "it's")),
    ("tên = 'Đà Nẵng'", ast.Equal(ast.Attribute("tên"), "Đà Nẵng")),
    ("code LIKE 'A_%'", ast.Like(ast.Attribute("code"), "A_%", False, "%", "_", "\\", False)),
    ("CASEI(name) NOT LIKE CASEI('đà%')",
     ast.Like(ast.Attribute("name"), "đà%", True, "%", "_", "\\", True)),
    ("S_INTERSECTS(geometry, POINT Z(1 2 3))",
     ast.GeometryIntersects(ast.Attribute("geometry"),
                            values.Geometry({"type": "Point", "coordinates": [1.0, 2.0, 3.0]}))),
    ("S_INTERSECTS(geometry, MULTIPOINT(1 2, 3 4))",
     ast.GeometryIntersects(ast.Attribute("geometry"), values.Geometry(
         {"type": "MultiPoint", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}))),
    ("s_intersects(geometry, GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(1 2, 3 4)))",
     ast.GeometryIntersects(ast.Attribute("geometry"), values.Geometry(
         {"type": "GeometryCollection", "geometries": [
             {"type": "Point", "coordinates": [1.0, 2.0]},
             {"type": "LineString", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}]}))),
    ("TRUE", ast.Include(False)),
])
def test_the_standard_where_pygeofilter_differs(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(("text", "says"), [
    ("far >", "expected a property, a number, a 'character literal', TRUE or FALSE at "
              "position 6, found the end"),
    ("far > 2 landUse", "expected AND, OR or the end at position 9, found 'landUse'"),
    ("((far > 2)", "expected ) at position 11"),
    ("far != 2", "CQL2 writes 'not equal' as <>"),
    ("far ~ 2", "unexpected '~' at position 5"),
    ("code LIKE 1", "LIKE takes a character literal"),
    ("code LIKE CASEI('a%')", "a CASEI pattern needs CASEI on the property too"),
    ("S_INTERSECTS(geometry, POLYGON((1 2, 3 4), 5 6))", "do not nest as its type needs"),
    ("S_INTERSECTS(geometry, POINT(1 2, 3 4))", "do not nest as its type needs"),
    ("S_INTERSECTS(geometry, BBOX(1, 2, 3))", "BBOX takes 4 or 6 numbers"),
    ("code IS 'x'", "expected NULL"),
    ("(" * 40 + "far > 1" + ")" * 40, "parentheses nest deeper than 32"),
])
def test_syntax_errors_say_where(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(text)
    assert not isinstance(caught.value, Unsupported)
    assert says in str(caught.value)


@pytest.mark.parametrize(("text", "says"), [
    ("T_AFTER(built, TIMESTAMP('2024-01-01T00:00:00Z'))", "temporal predicates"),
    ("A_CONTAINS(tags, ('a'))", "array predicates"),
    ("built > DATE('2024-01-01')", "temporal literals"),
    ("far + 1 > 2", "arithmetic"),
])
def test_valid_but_unsupported(text: str, says: str) -> None:
    with pytest.raises(Unsupported, match=says):
        parse(text)


def test_any_token_soup_parses_or_says_why() -> None:
    """Random sequences of CQL2's own tokens (a fuzz run with a fixed seed): each parses
    or raises ValueError, never another error."""
    vocabulary = ["aa", '"b c"', "1", "-2.5", "'x'", "'it''s'", "TRUE", "AND", "OR", "NOT",
                  "LIKE", "BETWEEN", "IN", "IS", "NULL", "CASEI", "(", ")", ",", "=", "<>",
                  "<", ">=", "+", "-", "S_INTERSECTS", "geometry", "POINT", "POLYGON",
                  "MULTIPOINT", "GEOMETRYCOLLECTION", "Z", "BBOX", "T_AFTER", "DATE", "!="]
    rng = random.Random(950)
    for _ in range(5000):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 14)))
        try:
            parse(text)
        except ValueError:
            pass


@pytest.mark.parametrize("text", [
    f"landUse = 'green' AND far > 2 AND S_INTERSECTS(geometry, {POLYGON})",
    "NOT (code IN ('A1', 'B2') OR far NOT BETWEEN -1 AND 2.5e1) AND x IS NOT NULL",
    "CASEI(name) LIKE CASEI('đà%') OR S_WITHIN(geometry, BBOX(1, 2, 3, 4))",
    "S_INTERSECTS(geometry, GEOMETRYCOLLECTION(POINT Z(1 2 3), MULTIPOINT((1 2), (3 4))))",
])
def test_every_prefix_parses_or_says_why(text: str) -> None:
    """A filter cut off at any character ends in a ValueError, never another error."""
    for end in range(len(text) + 1):
        try:
            parse(text[:end])
        except ValueError:
            pass
