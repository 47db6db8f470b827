"""The temporal API: history kept from entity writes, the temporal endpoints, the three
representations, aggregation, lastN and truncation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from tests.conftest import streetlight

E = "/ngsi-ld/v1/entities"
T = "/ngsi-ld/v1/temporal/entities"
SENSOR = "urn:ngsi-ld:AirQualityObserved:hc-1"


def reading(minute: int, pm25: float, **extra: object) -> dict:
    return {"pm25": {"type": "Property", "value": pm25,
                     "observedAt": f"2026-11-01T10:{minute:02d}:00Z", **extra}}


def sensor_history(client: TestClient, values: list[float]) -> None:
    """One reading per minute from 10:00, written through the entity API."""
    r = client.post(E, json={"id": SENSOR, "type": "AirQualityObserved", **reading(0, values[0])})
    assert r.status_code == 201
    for minute, value in enumerate(values[1:], start=1):
        r = client.patch(f"{E}/{SENSOR}/attrs", json=reading(minute, value))
        assert r.status_code == 204, r.text


def test_entity_writes_are_kept_as_history(client: TestClient) -> None:
    sensor_history(client, [10.0, 20.0, 30.0])
    r = client.get(f"{T}/{SENSOR}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == SENSOR and body["type"] == "AirQualityObserved"
    values = [i["value"] for i in body["pm25"]]
    assert values == [10.0, 20.0, 30.0]
    assert [i["observedAt"] for i in body["pm25"]] == [
        "2026-11-01T10:00:00.000Z", "2026-11-01T10:01:00.000Z", "2026-11-01T10:02:00.000Z"]
    ids = {i["instanceId"] for i in body["pm25"]}
    assert len(ids) == 3 and all(i.startswith("urn:") for i in ids)
    # The current state is unchanged by reading history.
    assert client.get(f"{E}/{SENSOR}").json()["pm25"]["value"] == 30.0


def test_unchanged_attributes_are_not_repeated(client: TestClient) -> None:
    client.post(E, json=streetlight(1))
    client.patch(f"{E}/urn:ngsi-ld:Streetlight:dn-1/attrs",
                 json={"powerState": {"type": "Property", "value": "off"}})
    body = client.get(f"{T}/urn:ngsi-ld:Streetlight:dn-1").json()
    assert [i["value"] for i in body["powerState"]] == ["on", "off"]
    assert len(body["illuminanceLevel"]) == 1


def test_timerel_selects_by_observed_time(client: TestClient) -> None:
    sensor_history(client, [1.0, 2.0, 3.0, 4.0, 5.0])
    base = f"{T}/{SENSOR}?attrs=pm25"
    before = client.get(f"{base}&timerel=before&timeAt=2026-11-01T10:02:00Z").json()
    assert [i["value"] for i in before["pm25"]] == [1.0, 2.0]
    after = client.get(f"{base}&timerel=after&timeAt=2026-11-01T10:02:00Z").json()
    assert [i["value"] for i in after["pm25"]] == [4.0, 5.0]
    between = client.get(f"{base}&timerel=between&timeAt=2026-11-01T10:01:00Z"
                         "&endTimeAt=2026-11-01T10:03:00Z").json()
    assert [i["value"] for i in between["pm25"]] == [2.0, 3.0]
    last = client.get(f"{base}&lastN=2").json()
    assert [i["value"] for i in last["pm25"]] == [4.0, 5.0]


def test_temporal_values_representation(client: TestClient) -> None:
    sensor_history(client, [1.0, 2.0])
    body = client.get(f"{T}/{SENSOR}?options=temporalValues&attrs=pm25").json()
    assert body["pm25"] == {"type": "Property", "values": [
        [1.0, "2026-11-01T10:00:00.000Z"], [2.0, "2026-11-01T10:01:00.000Z"]]}


def test_aggregated_values_per_period(client: TestClient) -> None:
    sensor_history(client, [1.0, 3.0, 5.0, 7.0])
    r = client.get(f"{T}/{SENSOR}", params={
        "format": "aggregatedValues", "aggrMethods": "totalCount,sum,avg,min,max,stddev,sumsq,"
        "distinctCount", "aggrPeriodDuration": "PT2M", "timerel": "between",
        "timeAt": "2026-11-01T10:00:00Z", "endTimeAt": "2026-11-01T10:04:00Z"})
    assert r.status_code == 200, r.text
    agg = r.json()["pm25"]
    assert agg["type"] == "Property"
    assert agg["totalCount"] == [[2, "2026-11-01T10:00:00.000Z", "2026-11-01T10:02:00.000Z"],
                                 [2, "2026-11-01T10:02:00.000Z", "2026-11-01T10:04:00.000Z"]]
    assert [v for v, _, _ in agg["avg"]] == [2.0, 6.0]
    assert [v for v, _, _ in agg["sum"]] == [4.0, 12.0]
    assert [v for v, _, _ in agg["min"]] == [1.0, 5.0]
    assert [v for v, _, _ in agg["max"]] == [3.0, 7.0]
    assert [v for v, _, _ in agg["stddev"]] == [1.0, 1.0]
    assert [v for v, _, _ in agg["sumsq"]] == [10.0, 74.0]
    assert [v for v, _, _ in agg["distinctCount"]] == [2, 2]


def test_query_by_type_with_pagination_and_count(client: TestClient) -> None:
    for n in range(3):
        client.post(E, json=streetlight(n))
    r = client.get(T, params={"type": "Streetlight", "timerel": "after",
                              "timeAt": "2000-01-01T00:00:00Z", "timeproperty": "modifiedAt",
                              "limit": 2, "count": "true"})
    assert r.status_code == 200, r.text
    assert r.headers["NGSILD-Results-Count"] == "3"
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Streetlight:dn-0",
                                           "urn:ngsi-ld:Streetlight:dn-1"]
    assert 'rel="next"' in r.headers["Link"]


def test_query_with_q_uses_current_state(client: TestClient) -> None:
    client.post(E, json=streetlight(1))
    client.post(E, json=streetlight(2, powerState={"type": "Property", "value": "off"}))
    r = client.post("/ngsi-ld/v1/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"type": "Streetlight"}], "q": 'powerState=="off"',
        "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z",
                      "timeproperty": "createdAt"}})
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Streetlight:dn-2"]


def test_temporal_api_writes(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:FloodMonitoring:1", "type": "FloodMonitoring",
            "waterLevel": [
                {"type": "Property", "value": 0.4, "observedAt": "2026-10-01T00:00:00Z"},
                {"type": "Property", "value": 0.9, "observedAt": "2026-10-01T01:00:00Z"}]}
    assert client.post(T, json=body).status_code == 201
    assert client.post(T, json=body).status_code == 204  # adds the instances again
    eid = body["id"]
    assert len(client.get(f"{T}/{eid}").json()["waterLevel"]) == 4
    # History written this way is not the current state.
    assert client.get(f"{E}/{eid}").status_code == 404
    r = client.post(f"{T}/{eid}/attrs", json={"rainfall": {
        "type": "Property", "value": 12, "observedAt": "2026-10-01T00:30:00Z"}})
    assert r.status_code == 204
    levels = client.get(f"{T}/{eid}").json()["waterLevel"]
    first = levels[0]["instanceId"]
    r = client.patch(f"{T}/{eid}/attrs/waterLevel/{first}",
                     json={"waterLevel": {"type": "Property", "value": 0.5}})
    assert r.status_code == 204, r.text
    after = client.get(f"{T}/{eid}").json()["waterLevel"]
    assert after[0]["value"] == 0.5 and after[0]["instanceId"] == first
    assert after[0]["observedAt"] == "2026-10-01T00:00:00.000Z"
    assert client.delete(f"{T}/{eid}/attrs/waterLevel/{first}").status_code == 204
    assert client.delete(f"{T}/{eid}/attrs/waterLevel/{first}").status_code == 404
    assert len(client.get(f"{T}/{eid}").json()["waterLevel"]) == 3
    assert client.delete(f"{T}/{eid}/attrs/rainfall").status_code == 204
    assert "rainfall" not in client.get(f"{T}/{eid}").json()
    assert client.delete(f"{T}/{eid}").status_code == 204
    assert client.get(f"{T}/{eid}").status_code == 404


def test_history_outlives_the_entity(client: TestClient) -> None:
    client.post(E, json=streetlight(1))
    client.delete(f"{E}/urn:ngsi-ld:Streetlight:dn-1")
    assert client.get(f"{T}/urn:ngsi-ld:Streetlight:dn-1").status_code == 200


@pytest.mark.parametrize("params", [
    {"timerel": "during", "timeAt": "2026-01-01T00:00:00Z"},
    {"timerel": "before"},
    {"timerel": "between", "timeAt": "2026-01-01T00:00:00Z"},
    {"timerel": "between", "timeAt": "2026-01-02T00:00:00Z", "endTimeAt": "2026-01-01T00:00:00Z"},
    {"timerel": "before", "timeAt": "yesterday"},
    {"lastN": "0"},
    {"timeproperty": "deletedAt", "lastN": "1"},
    {"format": "aggregatedValues", "lastN": "1"},
    {"format": "aggregatedValues", "aggrMethods": "median", "lastN": "1"},
    {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P1M",
     "lastN": "1"},
    {"format": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "soon",
     "lastN": "1"},
    {"aggrMethods": "avg", "lastN": "1"},
])
def test_bad_temporal_parameters(client: TestClient, params: dict) -> None:
    sensor_history(client, [1.0])
    r = client.get(f"{T}/{SENSOR}", params=params)
    assert r.status_code == 400, (params, r.text)
    assert r.json()["type"].endswith("BadRequestData")


def test_query_needs_timerel_or_last_n(client: TestClient) -> None:
    r = client.get(T, params={"type": "Streetlight"})
    assert r.status_code == 400


def test_missing_things_are_404(client: TestClient) -> None:
    sensor_history(client, [1.0])
    assert client.get(f"{T}/urn:ngsi-ld:X:none").status_code == 404
    assert client.delete(f"{T}/urn:ngsi-ld:X:none").status_code == 404
    assert client.delete(f"{T}/{SENSOR}/attrs/nothing").status_code == 404
    r = client.delete(f"{T}/{SENSOR}/attrs/pm25/urn:ngsi-ld:attribute-instance:999999")
    assert r.status_code == 404
    assert client.post(f"{T}/urn:ngsi-ld:X:none/attrs", json=reading(1, 1.0)).status_code == 404
    assert client.get(f"{T}/not-a-uri").status_code == 400


@pytest.fixture
def small_cap(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("cap"), context_fetch=False,
                        temporal_max_instances=3)
    with TestClient(create_app(settings)) as c:
        yield c


def test_truncated_answers_say_their_range(small_cap: TestClient) -> None:
    sensor_history(small_cap, [1.0, 2.0, 3.0, 4.0, 5.0])
    r = small_cap.get(f"{T}/{SENSOR}?attrs=pm25")
    assert r.status_code == 206
    assert [i["value"] for i in r.json()["pm25"]] == [1.0, 2.0, 3.0]
    assert r.headers["Content-Range"] == (
        "date-time 2026-11-01T10:00:00.000Z-2026-11-01T10:02:00.000Z/*")
    assert small_cap.get(f"{T}/{SENSOR}?attrs=pm25&lastN=2").status_code == 200


def test_history_can_be_turned_off(database_url: Callable[[str], str]) -> None:
    settings = Settings(database_url=database_url("off"), context_fetch=False,
                        history=False)
    with TestClient(create_app(settings)) as c:
        c.post(E, json=streetlight(1))
        assert c.get(f"{T}/urn:ngsi-ld:Streetlight:dn-1").status_code == 404


def test_attrs_keeps_only_entities_with_history_of_them(client: TestClient) -> None:
    sensor_history(client, [10.0, 20.0])
    client.post(E, json=streetlight(1))
    found = client.get(T, params={"attrs": "pm25", "timerel": "after",
                                  "timeAt": "2000-01-01T00:00:00Z"}).json()
    assert [e["id"] for e in found] == [SENSOR]
    both = client.get(T, params={"attrs": "pm25,powerState", "timerel": "after",
                                 "timeAt": "2000-01-01T00:00:00Z"}).json()
    assert sorted(e["id"] for e in both) == [SENSOR, "urn:ngsi-ld:Streetlight:dn-1"]
    assert client.get(T, params={"attrs": "nothing", "timerel": "after",
                                 "timeAt": "2000-01-01T00:00:00Z"}).json() == []
