"""The shortcuts of subscription matching never change its outcome: a screen rules out only
entities the full match rejects, and q decided from an entity's numbers agrees with the
store's SQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from dothi.broker.subscriptions import Subscriptions, _Facts, _screen
from dothi.ngsild import subscription as model
from dothi.ngsild.context import ContextCache, ContextResolver
from dothi.ngsild.entity import expand_entity
from dothi.store.sqlite import SQLiteStore
from dothi.store.sqlite_filters import DocFilter

QS = [None, "level>2", "level>=2", "level<2", "level<=2", "level==2", "level>2;other<1",
      "level>2|other<1", 'level>2|name=="x"', 'level>2;name=="x"', "level!=2",
      "level==1..3", "level.sub>2", "level[a]>2", "level<1|level>3"]
SQUARE = [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]
GEOS = [None, {"georel": "within", "geometry": "Polygon", "coordinates": SQUARE},
        {"georel": "intersects", "geometry": "Polygon", "coordinates": SQUARE},
        {"georel": "near;maxDistance==50000", "geometry": "Point", "coordinates": [1, 1]},
        {"georel": "disjoint", "geometry": "Polygon", "coordinates": SQUARE}]
LEVELS = [
    {"type": "Property", "value": 2.5},
    {"type": "Property", "value": 2},
    {"type": "Property", "value": 1, "sub": {"type": "Property", "value": 3}},
    {"type": "Property", "value": True},
    {"type": "Property", "value": "3"},
    {"type": "Property", "value": [1, 3]},
    {"type": "Property", "value": {"a": 3}},
    {"type": "Property", "value": {"@type": "Number", "@value": 3}},
    {"type": "ListProperty", "valueList": [0.5, 2.5]},
    {"type": "JsonProperty", "json": {"a": [3]}},
    {"type": "Relationship", "object": "urn:ngsi-ld:X:1"},
    [{"type": "Property", "value": 1}, {"type": "Property", "value": 3,
                                         "datasetId": "urn:ngsi-ld:Dataset:b"}],
    None,
]
PLACES: list[list] = [[1, 1], [2.5, 1], [[0.5, 3], [1.5, -1]], [[3, 3], [4, 4]]]


@pytest.fixture(scope="module")
def subscriptions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subscriptions]:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("screens")) / "s.db")
    yield Subscriptions(store, ContextResolver(ContextCache(fetch=False)))
    store.close()


def _entity(level: object, place: list, other: float) -> dict:
    body: dict = {"id": "urn:ngsi-ld:T:1", "type": "T", "name": {"type": "Property",
                                                                 "value": "x"},
                  "other": {"type": "Property", "value": other},
                  "location": {"type": "GeoProperty", "value": {
                      "type": "Point" if isinstance(place[0], (int, float)) else "LineString",
                      "coordinates": place}}}
    if level is not None:
        body["level"] = level
    return body


@pytest.mark.parametrize("q,geo", list(itertools.product(QS, GEOS)))
def test_shortcuts_agree_with_the_full_match(subscriptions: Subscriptions, q: str | None,
                                             geo: dict | None) -> None:
    ctx = subscriptions.resolver.active(None)
    doc = {"id": "urn:ngsi-ld:Subscription:s", "type": "Subscription",
           "entities": [{"type": "T"}], "notification": {"endpoint": {"uri": "http://x/"}}}
    if q is not None:
        doc["q"] = q
    if geo is not None:
        doc["geoQ"] = geo
    fast = subscriptions._compile("t", "entity", doc)
    exact = model.compile_subscription("t", "entity", doc, ctx, DocFilter().compile)
    screen = _screen(fast)
    for level, place, other in itertools.product(LEVELS, PLACES, (0.5, 1.5)):
        entity = expand_entity(_entity(level, place, other), ctx, "2026-11-25T00:00:00.000Z")
        expected = exact.selects(entity)
        assert fast.selects(entity) == expected, (level, place, other)
        if expected and screen is not None:
            assert screen(_Facts(entity)), (level, place, other)
