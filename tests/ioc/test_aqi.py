"""VN_AQI against the worked examples of Decision 1459/QĐ-TCMT (section 2.3: NowCast, an
hourly and a daily index; section 2.2.2: the O3 8-hour means), its tables' edges, and the
keeper that writes each station's hourly index from the store, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from dothi.ioc.aqi import AqiKeeper, Method, daily_index, hourly_index, nowcast, round_index

METHOD = Method.shipped()


def test_nowcast_worked_example() -> None:
    # PM2.5 hourly means 09:00 ... 20:00; the NowCast at 20:00 is 20.3 µg/m³ (w = 0.61).
    hours = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
    assert round(nowcast(hours[::-1]), 1) == 20.3  # type: ignore[arg-type]


def test_nowcast_needs_two_of_the_three_newest_hours() -> None:
    assert nowcast([None, None, 30.0, 30.0]) is None
    assert nowcast([None, 30.0, 30.0]) == 30.0
    # A missing hour weighs nothing; w is at least 1/2.
    assert nowcast([10.0, None, 100.0]) == pytest.approx((10 + 0.25 * 100) / 1.25)
    assert nowcast([0.0, 0.0, 0.0]) == 0.0


def test_hourly_worked_example() -> None:
    found = hourly_index(METHOD, {"o3": [136.1], "no2": [118.7], "pm25": [20.3, 20.3, 20.3]})
    assert found is not None
    assert {k: round(v, 2) for k, v in found.sub_indices.items()} == {
        "o3": 42.53, "no2": 59.35, "pm25": 40.6}
    # The guidance prints 60 for NO2 and so for the index: (100-50)/(200-100) x
    # (118.7-100) + 50 is 59.35, which rounds to 59. Its other figures (43, 41) agree.
    assert (found.aqi, found.dominant, found.level.name) == (59, "no2", "moderate")


def test_daily_worked_example() -> None:
    # The day's highest O3 8-hour mean 89.3 and 1-hour mean 114.6, highest NO2 1-hour mean
    # 130.8, PM2.5 24-hour mean 55.7: sub-indices 45, 36, 65 and 110; the index is 110.
    rest = (8 * 89.3 - 114.6) / 7
    o3 = [rest] * 7 + [114.6] + [5.0] * 16
    no2 = [130.8] + [40.0] * 23
    found = daily_index(METHOD, {"o3": o3, "no2": no2, "pm25": [55.7] * 24})
    assert found is not None
    assert [round_index(found.sub_indices[k]) for k in ("o3", "no2", "pm25")] == [45, 65, 110]
    assert (found.aqi, found.dominant, found.level.name) == (110, "pm25", "poor")
    assert round_index(METHOD.sub_index("o3_1h", 114.6)) == 36  # type: ignore[arg-type]


def test_o3_eight_hour_means_of_the_guidance() -> None:
    # Section 2.2.2 a: 1-hour means from 18:00 the day before to 00:00; the day's highest
    # 8-hour mean is 74.4 (at 17:00).
    before = [15.7, 14.2, 17.7, 18.9, 19.3, 15.7, 19.7]  # 18:00 ... 00:00
    day = [22.6, 27.1, 29.0, 31.9, 25.3, 34.7, 35.2, 41.6, 45.7, 49.2, 55.8, 69.6, 78.3,
           91.5, 97.7, 81.2, 71.8, 43.5, 34.3, 21.5, 20.5, 19.4, 20.4, 21.3]  # 01:00 ... 00:00
    found = daily_index(METHOD, {"o3": day, "pm25": [10.0] * 24}, o3_before=before)
    assert found is not None
    highest = sum(day[9:17]) / 8  # 10:00 ... 17:00
    assert round(highest, 1) == 74.4
    # The 8-hour sub-index (37.2) is above the 1-hour one (97.7 µg/m³: 30.5).
    assert found.sub_indices["o3"] == pytest.approx(METHOD.sub_index("o3_8h", highest))


def test_table_edges() -> None:
    assert METHOD.sub_index("pm25", 25) == 50
    assert METHOD.sub_index("pm25", 500) == 500 == METHOD.sub_index("pm25", 900)
    assert METHOD.sub_index("co", 10_000) == 50
    assert METHOD.sub_index("o3_8h", 400) == 300
    assert METHOD.sub_index("o3_8h", 401) is None  # then only the 1-hour value counts
    assert METHOD.sub_index("pm10", -1) is None
    assert [METHOD.level(a).name for a in (0, 50, 51, 150, 151, 201, 301, 500)] == [
        "good", "good", "moderate", "poor", "bad", "veryBad", "hazardous", "hazardous"]
    assert round_index(0.5) == 1 and round_index(109.5) == 110 and round_index(2.49) == 2
    # Without PM2.5 or PM10 there is no index.
    assert hourly_index(METHOD, {"no2": [300.0]}) is None


def station(levels: list[tuple[int, float]], now: datetime) -> tuple[dict, dict]:
    """A station and its PM2.5 / CO history: (hours ago, PM2.5 µg/m³) pairs."""
    entity = {"id": "urn:ngsi-ld:AirQualityObserved:s1", "type": "AirQualityObserved",
              "pm25": {"type": "Property", "value": levels[-1][1], "unitCode": "GQ",
                       "observedAt": now.isoformat().replace("+00:00", "Z")},
              "co": {"type": "Property", "value": 12.0, "unitCode": "GP",
                     "observedAt": now.isoformat().replace("+00:00", "Z")}}
    history = {"pm25": [
        {"type": "Property", "value": v, "unitCode": "GQ",
         "observedAt": (now - timedelta(hours=h)).isoformat().replace("+00:00", "Z")}
        for h, v in levels[:-1]]}
    return entity, history


def test_keeper_writes_the_hourly_index(client: TestClient) -> None:
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    # Steady 60 µg/m³ for 11 hours, then 90 this hour: NowCast w = 60/90 = 2/3.
    levels = [(h, 60.0) for h in range(11, 0, -1)] + [(0, 90.0)]
    entity, history = station(levels, now)
    assert client.post("/ngsi-ld/v1/entities", json=entity).status_code == 201
    r = client.post(f"/ngsi-ld/v1/temporal/entities/{entity['id']}/attrs", json=history)
    assert r.status_code == 204, r.text

    keeper = AqiKeeper(client.app.state.broker)  # type: ignore[attr-defined]
    assert keeper.run() == 1
    w = 2 / 3
    expected_nowcast = (90 + sum(w ** i * 60 for i in range(1, 12))) / sum(
        w ** i for i in range(12))
    expected = round_index(METHOD.sub_index("pm25", expected_nowcast))  # type: ignore[arg-type]
    got = client.get(f"/ngsi-ld/v1/entities/{entity['id']}").json()
    assert got["airQualityIndex"]["value"] == expected
    # CO 12 mg/m³ = 12,000 µg/m³ is sub-index 55: PM2.5 dominates.
    assert got["airQualityIndex"]["dominantPollutant"]["value"] == "pm25"
    assert "1459" in got["airQualityIndex"]["method"]["value"]
    assert got["airQualityLevel"]["value"] == METHOD.level(expected).name
    assert keeper.run() == 0  # nothing new, nothing written

    # /ioc/aqi shows the calculation: every parameter's sub-index and the band.
    [shown] = client.get("/ioc/aqi").json()
    assert (shown["id"], shown["aqi"], shown["dominantPollutant"]) == (
        entity["id"], expected, "pm25")
    assert shown["subIndices"] == {"pm25": expected, "co": 55}
    assert shown["level"]["name"] == METHOD.level(expected).name and shown["level"]["vi"]

    # The summary tile shows the worst index.
    assert client.get("/ioc/summary").json()["aqiMax"] == expected


def test_keeper_skips_stations_it_cannot_judge(client: TestClient) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=[
        {"id": "urn:ngsi-ld:AirQualityObserved:gas-only", "type": "AirQualityObserved",
         "no2": {"type": "Property", "value": 80, "unitCode": "GQ", "observedAt": now}},
        {"id": "urn:ngsi-ld:AirQualityObserved:ppb", "type": "AirQualityObserved",
         "pm25": {"type": "Property", "value": 80, "unitCode": "61", "observedAt": now}}])
    assert r.status_code == 201, r.text
    assert AqiKeeper(client.app.state.broker).run() == 0  # type: ignore[attr-defined]
    for eid in ("gas-only", "ppb"):
        doc = client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:{eid}").json()
        assert "airQualityIndex" not in doc


def test_an_hour_of_bad_air_opens_an_incident(client: TestClient) -> None:
    """From PM2.5 readings to an incident: the keeper's index is above 150 (bad) for an
    hour of readings, and the shipped air-aqi-bad rule opens one incident."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    def readings(hours_ago: list[float]) -> list[dict]:
        return [{"type": "Property", "value": 120.0, "unitCode": "GQ", "observedAt":
                 (now - timedelta(hours=h)).isoformat().replace("+00:00", "Z")}
                for h in hours_ago]

    eid = "urn:ngsi-ld:AirQualityObserved:s2"
    r = client.post("/ngsi-ld/v1/entities", json={
        "id": eid, "type": "AirQualityObserved",
        "name": {"type": "Property", "value": "Trạm Hòa Khánh"},
        "pm25": readings([2.0])[0]})
    assert r.status_code == 201, r.text
    # The NowCast needs two of the three newest hours.
    r = client.post(f"/ngsi-ld/v1/temporal/entities/{eid}/attrs",
                    json={"pm25": readings([3.0])})
    assert r.status_code == 204, r.text
    keeper = AqiKeeper(client.app.state.broker)  # type: ignore[attr-defined]
    engine = client.app.state.ioc.engine  # type: ignore[attr-defined]

    def incidents() -> list[dict]:
        engine.queue.join()  # every change judged (an event, not a sleep)
        return [i for i in client.get("/ioc/incidents").json()
                if i["alertSource"] == "rule:air-aqi-bad"]

    # 120 µg/m³ is sub-index 150 + 50 x 40/70 = 178.6: bad.
    assert keeper.run() == 1
    assert incidents() == []  # bad for no time yet
    client.post(f"/ngsi-ld/v1/temporal/entities/{eid}/attrs", json={"pm25": readings([1.5])})
    client.patch(f"/ngsi-ld/v1/entities/{eid}/attrs", json={"pm25": readings([1.0])[0]})
    assert keeper.run() == 1  # newer readings, the same index: written again
    [opened] = incidents()
    assert opened["name"] == "Chất lượng không khí xấu tại Trạm Hòa Khánh: VN_AQI 179"
    assert (opened["category"], opened["severity"]) == ("airQuality", "medium")
