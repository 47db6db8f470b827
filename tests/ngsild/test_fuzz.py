"""Fuzzing the parsers of what clients send in a query string: ``q``, ``scopeQ`` and the
geo-query (georel, geometry, coordinates). Whatever the text, the answer is a parsed
value or a DothiError (a 400 for the client), never another exception (a 500); and what
parses is translated to SQL for both backends and decided on a document by SQLite
without an error. ``fuzz/parsers.py`` drives the same properties with atheris, coverage
guided, for as long as one wants; here Hypothesis runs a fixed number of examples."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dothi.errors import DothiError
from dothi.ngsild.context import ContextCache, ContextResolver
from dothi.ngsild.entity import expand_entity
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import parse_q, parse_scope_q
from dothi.store import postgres_filters, sqlite_filters

CTX = ContextResolver(ContextCache(fetch=False)).core
DOC = expand_entity({"id": "urn:ngsi-ld:Road:1", "type": "Road",
                     "name": {"type": "Property", "value": "Lê Duẩn"},
                     "speed": {"type": "Property", "value": 42.5,
                               "observedAt": "2026-11-26T04:00:00Z"},
                     "a": {"type": "Property", "value": {"b": [1, "x"], "c": None}}},
                    CTX, "2026-11-26T04:00:00.000Z")
_FILTER = sqlite_filters.DocFilter()
expand = CTX.expand


def q_property(text: str) -> None:
    try:
        expr = parse_q(text)
        postgres_filters.q_to_sql(expr, expand)
        _FILTER.compile(expr, None, expand)(DOC)
    except DothiError:
        pass  # the client's 400 (or a 403 for a pattern that would not finish)


def scope_q_property(text: str) -> None:
    try:
        expr = parse_scope_q(text)
        postgres_filters.scope_q_to_sql(expr)
        _FILTER.compile(None, expr, expand)(DOC)
    except DothiError:
        pass


def geoq_property(georel: str, geometry: str, coordinates: str) -> None:
    try:
        query = parse_geoquery(georel, geometry, coordinates, None)
    except DothiError:
        return
    assert query is not None
    query.prefilter_bbox()
    query.matches({"type": "Point", "coordinates": [108.22, 16.06]})
    query.matches({"type": "Polygon", "coordinates": [[[108.2, 16.0], [108.3, 16.0],
                                                       [108.3, 16.1], [108.2, 16.0]]]})


# Text made of q's own pieces, so that most examples get past the first character.
Q_PIECES = st.sampled_from([
    "name", "speed", "a.b", "a[b]", "a[b.c]", "==", "!=", ">", ">=", "<", "<=", "~=", "!~=",
    ";", "|", "(", ")", "..", ",", "\"x\"", "'x'", "\"", "1", "-1.5e3", "2026-11-26",
    "2026-11-26T10:00:00Z", "10:00:00Z", "true", "urn:x:1", "(a+)+$", "\\", "ï", " ", "."])
SCOPE_PIECES = st.sampled_from(["/", "#", "+", "Hải Châu", "a", ";", ",", "|", "(", ")",
                                "//", " "])
GEO_PIECES = st.sampled_from(["[", "]", ",", "108.2", "16.06", "-200", "1e400", "NaN",
                              "null", "\"x\"", "{}", " "])
ANY_TEXT = st.text(alphabet=string.printable + "đĐảẢ\x00\u202e", max_size=80)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(ANY_TEXT, st.lists(Q_PIECES, max_size=12).map("".join)))
def test_q_parses_or_says_why(text: str) -> None:
    q_property(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, st.lists(SCOPE_PIECES, max_size=10).map("".join)))
def test_scope_q_parses_or_says_why(text: str) -> None:
    scope_q_property(text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(ANY_TEXT, st.sampled_from([
           "near;maxDistance==100", "near;minDistance==-1", "within", "intersects",
           "contains", "disjoint", "equals", "overlaps", "near;maxDistance==1e400", "near;"])),
       st.sampled_from(["Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                        "MultiPolygon", "GeometryCollection", "Circle"]),
       st.one_of(ANY_TEXT, st.lists(GEO_PIECES, max_size=16).map("".join)))
def test_geoq_parses_or_says_why(georel: str, geometry: str, coordinates: str) -> None:
    geoq_property(georel, geometry, coordinates)
