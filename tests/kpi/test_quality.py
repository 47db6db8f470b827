"""The database quality score on both store backends: a dataset with missing mandatory
attributes, values outside their schema and their plausible range, a place outside the
city, a late update and a duplicate scores lower on exactly those dimensions; scores are
kept as entities whose history is the trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from dothi.kpi.quality import QualityRater

T = "urn:ngsi-ld:tenant:default"


def station(n: int, lon: float = 108.21, **extra: Any) -> dict[str, Any]:
    entity = {"id": f"urn:ngsi-ld:AirQualityObserved:s{n}", "type": "AirQualityObserved",
              "dateObserved": {"type": "Property", "value": "2026-11-25T08:00:00Z"},
              "pm25": {"type": "Property", "value": 20.0 + n},
              "name": {"type": "Property", "value": f"Trạm {n}"},
              "dataProvider": {"type": "Property", "value": "environment"},
              "location": {"type": "GeoProperty",
                           "value": {"type": "Point", "coordinates": [lon + n * 0.001, 16.05]}}}
    entity.update(extra)
    return entity


def test_each_dimension_sees_its_own_faults(client: TestClient) -> None:
    area = {"id": "urn:ngsi-ld:AdministrativeArea:city", "type": "AdministrativeArea",
            "name": {"type": "Property", "value": "City"},
            "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
                [108.1, 16.0], [108.3, 16.0], [108.3, 16.1], [108.1, 16.1], [108.1, 16.0]]]}}}
    entities = [
        area,
        station(0), station(1), station(2),
        station(3, pm25={"type": "Property", "value": 5000.0}),  # out of range
        station(4, lon=109.5),  # far outside the city
        {**station(5), "pm25": {"type": "Property", "value": "high"}},  # not a number
        {k: v for k, v in station(6).items() if k != "dateObserved"},  # incomplete
        {**station(7), "location": station(0)["location"],
         "name": station(0)["name"]},  # station 0 again
        {**station(8), "dataProvider": {"type": "Property", "value": "university"}},
    ]
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=entities)
    assert r.status_code == 201, r.text
    rater = QualityRater(client.app.state.broker)  # type: ignore[attr-defined]
    results = rater.rate(T, now=datetime.now(UTC) + timedelta(minutes=10))
    by = {(q.entity_type, q.agency): q for q in results}
    env = by[("AirQualityObserved", "environment")]
    assert env.entities == 8
    assert env.shares["completeness"] == 7 / 8
    assert env.shares["validity"] == 7 / 8  # "high" is no number
    assert env.shares["consistency"] == 6 / 8  # 5000 µg/m³; 109.5° E
    assert env.shares["uniqueness"] == 7 / 8
    assert env.shares["timeliness"] == 1.0  # written minutes ago, due hourly
    assert env.score == round(100 * (7 / 8 * 3 + 6 / 8 + 1) / 5, 1)
    problems = " ".join(env.problems)
    for expected in ("s6: no dateObserved", "s3: pm25 5000.0 outside 0..1000",
                     "s4: outside the city", "s7: the same place and name"):
        assert expected in problems, expected
    uni = by[("AirQualityObserved", "university")]
    assert (uni.entities, uni.score) == (1, 100.0)
    assert results[0].score >= results[-1].score  # best first

    # Two hours later nothing was updated: late.
    later = rater.rate(T, now=datetime.now(UTC) + timedelta(hours=2))
    assert {(q.entity_type, q.agency): q for q in later}[
        ("AirQualityObserved", "environment")].shares["timeliness"] == 0.0

    assert rater.store(T, results) == len(results)
    assert rater.store(T, later) == len(later)
    kept = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:DataQualityAssessment:"
                      "AirQualityObserved:environment", params={"options": "keyValues"}).json()
    assert kept["score"] == {q.agency: q for q in later
                             if q.entity_type == "AirQualityObserved"}["environment"].score
    trend = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:DataQualityAssessment:"
                       "AirQualityObserved:environment",
                       params={"attrs": "score", "options": "temporalValues"}).json()
    assert len(trend["score"]["values"]) == 2
    # The scores are not themselves scored.
    assert "DataQualityAssessment" not in {q.entity_type for q in rater.rate(T)}
