"""CQL2, text and JSON, translated straight into the q syntax tree: each filter gives the
tree that the q text beside it parses to, and LIKE patterns match what CQL2 says."""

from __future__ import annotations

import json
import re

import pytest

from dothi.gis import cql
from dothi.ngsild.qlang import Pattern, Term, parse_q

NAMES = {"far", "landUse", "code", "name", "open"}


@pytest.mark.parametrize(("cql2", "q"), [
    ("far > 2 AND landUse = 'green'", 'far>2;landUse=="green"'),
    ("far > 2 AND (landUse = 'green' AND code <> 'A1')",
     'far>2;landUse=="green";code!="A1"'),
    ("landUse = 'green' OR far > 3 AND code = 'A1'", 'landUse=="green"|(far>3;code=="A1")'),
    ("NOT (landUse = 'green' OR far < 2)", 'landUse!="green";far>=2'),
    ("NOT (far <= 1 AND far >= 3)", "far>1|far<3"),
    ("code IN ('A1', 'C3')", 'code=="A1","C3"'),
    ("code NOT IN ('A1')", 'code!="A1"'),
    ("far BETWEEN 1 AND 2.5", "far==1..2.5"),
    ("NOT far BETWEEN 1 AND 2", "far!=1..2"),
    ("code IS NOT NULL", "code"),
    ("NOT code IS NULL", "code"),
    ("open = TRUE AND far = -1.5", "open==true;far==-1.5"),
    ("name = 'Hải \"Châu\"'", 'name=="Hải \\"Châu\\""'),
])
def test_text_gives_the_q_tree(cql2: str, q: str) -> None:
    out = cql.translate(cql.parse(cql2, None), NAMES)
    assert out.q == parse_q(q) and out.georel is None


def test_json_gives_the_q_tree() -> None:
    node = cql.parse(json.dumps({"op": "and", "args": [
        {"op": ">", "args": [{"property": "far"}, 2]},
        {"op": "in", "args": [{"property": "code"}, ["A1", "B2"]]}]}), "cql2-json")
    assert cql.translate(node, NAMES).q == parse_q('far>2;code=="A1","B2"')


@pytest.mark.parametrize(("pattern", "matches", "misses"), [
    ("Hải Châu%", ["Hải Châu", "Hải Châu 1"], ["Hải  Châu", "Thanh Khê"]),
    ("A.1%", ["A.1", "A.10"], ["AX1"]),
    ("_2", ["A2", "B2"], ["A12", "2"]),
    ("50\\%", ["50%"], ["500"]),
    ("(x)+[y]", ["(x)+[y]"], ["xxy"]),
])
def test_like_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    """A LIKE pattern's characters other than % and _ stand for themselves (the q text
    this translation used to write turned an escaped space into a backslash)."""
    out = cql.translate(cql.parse(f"name LIKE '{pattern}'", None), NAMES).q
    assert isinstance(out, Term) and isinstance(out.value, Pattern)
    regex = re.compile(out.value.source)
    assert [m for m in matches if regex.search(m)] == matches
    assert [m for m in misses if regex.search(m)] == []


def test_spatial_predicates() -> None:
    out = cql.translate(cql.parse(
        "far > 1 AND S_WITHIN(geometry, BBOX(108.1, 15.9, 108.2, 16))", None), NAMES)
    assert (out.q, out.georel) == (parse_q("far>1"), "within")
    assert out.geometry == cql.box(108.1, 15.9, 108.2, 16)
    node = cql.parse(json.dumps({"op": "s_intersects", "args": [
        {"property": "geometry"}, {"bbox": [108.1, 15.9, 108.2, 16.0]}]}), "cql2-json")
    assert cql.translate(node, NAMES).geometry == cql.box(108.1, 15.9, 108.2, 16.0)


@pytest.mark.parametrize(("cql2", "says"), [
    ("height > 3", "'height' is not a queryable of this collection"),
    ("code IS NULL", "IS NULL is not supported"),
    ("far BETWEEN 'a' AND 2", "two numbers or two character literals"),
    ("far = code", "literal ATTRIBUTE code"),
    ("S_INTERSECTS(geometry, POINT(1 2)) AND S_WITHIN(geometry, POINT(1 2))",
     "one spatial predicate"),
    ("S_TOUCHES(geometry, POINT(1 2))", "S_TOUCHES, S_CROSSES and RELATE are not supported"),
    ("far > 1 OR S_WITHIN(geometry, POINT(1 2))", "not under OR or NOT"),
    ("CASEI(code) = 'a'", "a property on its left"),
    ("TRUE", "Include is not supported"),
])
def test_refused(cql2: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        cql.translate(cql.parse(cql2, None), NAMES)
