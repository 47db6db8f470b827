"""The history retention policy: old instances deleted, older ones downsampled per period,
in short write transactions, through the store and through `dothi history prune`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.ngsild.temporal import iso_to_ms
from dothi.ngsild.timeutil import format_iso
from dothi.settings import Settings
from dothi.store.base import Store, open_store

E = "/ngsi-ld/v1/entities"
T = "/ngsi-ld/v1/temporal/entities"
SENSOR = "urn:ngsi-ld:AirQualityObserved:hc-1"
DATASET = "urn:ngsi-ld:Dataset:sensor-b"


def at(clock: str) -> str:
    return f"2026-01-05T{clock}:00.000Z"


def ms(clock: str) -> int:
    return iso_to_ms(at(clock))


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """A second store on the API's database, as `dothi history prune` opens it."""
    opened = open_store(settings.database_url)
    yield opened
    opened.close()


def write_readings(client: TestClient, readings: list[tuple[str, float]]) -> None:
    """The sensor's pm25 readings through the entity API, one write per reading."""
    clock, value = readings[0]
    r = client.post(E, json={"id": SENSOR, "type": "AirQualityObserved", "pm25": {
        "type": "Property", "value": value, "unitCode": "GQ", "observedAt": at(clock)}})
    assert r.status_code == 201, r.text
    for clock, value in readings[1:]:
        r = client.patch(f"{E}/{SENSOR}/attrs", json={"pm25": {
            "type": "Property", "value": value, "unitCode": "GQ", "observedAt": at(clock)}})
        assert r.status_code == 204, r.text


def add_instances(client: TestClient, attrs: dict[str, list[dict]]) -> None:
    """Instances through the temporal API (the entity's history, not its state)."""
    r = client.post(T, json={"id": SENSOR, "type": "AirQualityObserved", **attrs})
    assert r.status_code in (201, 204), r.text


def history(client: TestClient, attr: str = "pm25") -> list[dict]:
    r = client.get(f"{T}/{SENSOR}", params={"attrs": attr})
    assert r.status_code == 200, r.text
    return r.json().get(attr, [])


def test_retention_deletes_old_instances_only(client: TestClient, store: Store) -> None:
    write_readings(client, [("10:00", 1.0), ("10:01", 2.0), ("10:02", 3.0), ("10:03", 4.0)])
    before = history(client)
    current = client.get(f"{E}/{SENSOR}").json()
    assert store.prune_history(ms("10:02"), None, None) == (2, 0)
    after = history(client)
    assert after == before[2:]  # the recent instances untouched, instanceIds and all
    assert client.get(f"{E}/{SENSOR}").json() == current
    assert store.prune_history(ms("10:02"), None, None) == (0, 0)


def test_downsampling_averages_numbers_per_period_and_dataset(
        client: TestClient, store: Store) -> None:
    add_instances(client, {"pm25": [
        {"type": "Property", "value": v, "unitCode": "GQ", "observedAt": at(c), **extra}
        for c, v, extra in [
            ("10:00", 1, {}), ("10:20", 2, {}), ("10:40", 6, {}),
            ("10:05", 100, {"datasetId": DATASET}), ("10:06", 200.0, {"datasetId": DATASET}),
            ("11:10", 10, {}), ("11:50", 20, {}),
            ("12:30", 7, {}),  # alone in its period: nothing to average
            ("13:05", 8, {}), ("13:10", 9, {}),  # the period the cutoff falls in
            ("14:00", 5, {}),
        ]]})
    untouched = {(i["observedAt"], i["instanceId"]) for i in history(client)
                 if i["observedAt"] >= at("12:00")}
    # 13:30 rounds down to 13:00: only whole periods are downsampled.
    assert store.prune_history(None, ms("13:30"), 3_600_000) == (4, 3)
    got = history(client)
    assert {(i["observedAt"], i["instanceId"]) for i in got
            if i["observedAt"] >= at("12:00")} == untouched
    averages = {(i.get("datasetId"), i["observedAt"]): i for i in got
                if "downsampledFrom" in i}
    assert {k: (i["value"], i["downsampledFrom"]["value"]) for k, i in averages.items()} == {
        (None, at("10:00")): (3.0, 3),
        (DATASET, at("10:00")): (150.0, 2),
        (None, at("11:00")): (15.0, 2),
    }
    assert all(i["unitCode"] == "GQ" and i["type"] == "Property" for i in got)
    assert [i["value"] for i in got if i["observedAt"] >= at("12:00")] == [7, 8, 9, 5]
    # The averages are what aggregation over those periods sees.
    r = client.get(f"{T}/{SENSOR}", params={
        "attrs": "pm25", "format": "aggregatedValues", "aggrMethods": "totalCount,avg",
        "aggrPeriodDuration": "PT1H", "timerel": "between", "timeAt": at("11:00"),
        "endTimeAt": at("12:00")})
    assert r.json()["pm25"]["avg"][0][0] == 15.0


def test_downsampling_keeps_the_last_non_numeric_instance(
        client: TestClient, store: Store) -> None:
    client.post(E, json={"id": SENSOR, "type": "AirQualityObserved",
                         "status": {"type": "Property", "value": "ok", "observedAt": at("10:00")},
                         "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:1",
                                       "observedAt": at("10:00")}})
    for clock, status, device in [("10:30", "faulty", 2), ("10:45", "ok", 3),
                                  ("11:15", "faulty", 4)]:
        r = client.patch(f"{E}/{SENSOR}/attrs", json={
            "status": {"type": "Property", "value": status, "observedAt": at(clock)},
            "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{device}",
                          "observedAt": at(clock)}})
        assert r.status_code == 204, r.text
    current = client.get(f"{E}/{SENSOR}").json()
    last_of_each_hour = [i for i in history(client, "status")
                         if i["observedAt"] in (at("10:45"), at("11:15"))]
    assert store.prune_history(None, ms("12:00"), 3_600_000) == (4, 0)
    assert history(client, "status") == last_of_each_hour
    assert [(i["object"], i["observedAt"]) for i in history(client, "refDevice")] == [
        ("urn:ngsi-ld:Device:3", at("10:45")), ("urn:ngsi-ld:Device:4", at("11:15"))]
    assert client.get(f"{E}/{SENSOR}").json() == current


def test_a_second_prune_changes_nothing_and_late_instances_are_weighted(
        client: TestClient, store: Store) -> None:
    add_instances(client, {"pm25": [{"type": "Property", "value": v, "observedAt": at(c)}
                                    for c, v in [("10:00", 10), ("10:10", 20), ("10:20", 30)]]})
    assert store.prune_history(None, ms("11:00"), 3_600_000) == (2, 1)
    settled = history(client)
    assert store.prune_history(None, ms("11:00"), 3_600_000) == (0, 0)
    assert history(client) == settled
    # A late reading for a period already averaged: the average stands for three.
    r = client.post(f"{T}/{SENSOR}/attrs", json={"pm25": {
        "type": "Property", "value": 60, "observedAt": at("10:50")}})
    assert r.status_code == 204, r.text
    assert store.prune_history(None, ms("11:00"), 3_600_000) == (1, 1)
    (average,) = history(client)
    assert average["value"] == 30.0 and average["downsampledFrom"]["value"] == 4


def test_expired_history_of_a_deleted_entity_goes_with_it(
        client: TestClient, store: Store) -> None:
    write_readings(client, [("10:00", 1.0)])
    other = "urn:ngsi-ld:AirQualityObserved:gone"
    client.post(E, json={"id": other, "type": "AirQualityObserved", "pm25": {
        "type": "Property", "value": 2.0, "observedAt": at("10:00")}})
    assert client.delete(f"{E}/{other}").status_code == 204
    empty = "urn:ngsi-ld:AirQualityObserved:empty"
    assert client.post(T, json={"id": empty, "type": "AirQualityObserved"}).status_code == 201
    assert store.prune_history(ms("11:00"), None, None) == (2, 0)
    assert client.get(f"{T}/{other}").status_code == 404
    # The entity that still exists keeps its (now empty) history, and a temporal entity
    # the prune took nothing from stays.
    assert client.get(f"{T}/{SENSOR}").status_code == 200
    assert client.get(f"{T}/{empty}").status_code == 200


def _city_history(client: TestClient) -> None:
    """Three sensors with two hours of readings every two minutes and a status string."""
    for n in range(3):
        readings = [{"type": "Property", "value": n * 100 + minute,
                     "observedAt": format_iso(datetime(2026, 1, 5, 9, tzinfo=UTC)
                                              + timedelta(minutes=minute))}
                    for minute in range(0, 120, 2)]
        statuses = [{"type": "Property", "value": s, "observedAt": at(c)}
                    for c, s in [("09:10", "ok"), ("09:20", "faulty"), ("10:30", "ok")]]
        assert client.post(T, json={"id": f"urn:ngsi-ld:AirQualityObserved:{n}",
                                    "type": "AirQualityObserved", "pm25": readings,
                                    "status": statuses}).status_code == 201


def _prune_city(url: str, chunk_rows: int) -> tuple[tuple[int, int], list[dict],
                                                     list[tuple[int, int]]]:
    """(counts, every sensor's history after, progress calls) of one prune of the city."""
    settings = Settings(database_url=url, context_fetch=False)
    calls: list[tuple[int, int]] = []
    with TestClient(create_app(settings)) as client:
        _city_history(client)
        store = open_store(settings.database_url)
        store.prune_chunk_rows = chunk_rows  # type: ignore[attr-defined]
        counts = store.prune_history(ms("09:30"), ms("11:10"), 1_800_000,
                                     lambda done, total: calls.append((done, total)))
        store.close()
        r = client.get(T, params={"type": "AirQualityObserved", "timerel": "after",
                                  "timeAt": "2000-01-01T00:00:00Z"})
        assert r.status_code == 200, r.text
        return counts, r.json(), calls


@pytest.mark.parametrize("chunk", [1, 7, 20])
def test_small_chunks_prune_the_same_as_one(database_url: Callable[[str], str],
                                            chunk: int) -> None:
    whole, whole_body, whole_calls = _prune_city(database_url("whole"), 1_000_000)
    chunked, chunked_body, chunked_calls = _prune_city(database_url("chunked"), chunk)
    # Each sensor: 15 readings and 2 statuses expire, three half hours of 15 readings
    # each become one average, the 10:30 status is alone in its half hour.
    assert whole == chunked == (3 * (15 + 2 + 3 * 14), 3 * 3)
    assert whole_body == chunked_body
    assert whole_calls == [(3, 3)]
    assert len(chunked_calls) > 3 and chunked_calls[-1] == (3, 3)
    assert [d for d, _ in chunked_calls] == sorted(d for d, _ in chunked_calls)


def test_store_refuses_half_a_downsampling_policy(store: Store) -> None:
    for args in [(None, ms("10:00"), None), (None, None, 60_000), (None, ms("10:00"), 0)]:
        with pytest.raises(ValueError):
            store.prune_history(*args)


# -- the command line --------------------------------------------------------------------


def dothi(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOTHI_")}
    return subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**clean, **env})


def _recent_and_old(client: TestClient) -> tuple[str, str]:
    """One reading a year ago and one now: (old observedAt, recent observedAt)."""
    now = datetime.now(UTC)
    old, recent = format_iso(now - timedelta(days=365)), format_iso(now)
    add_instances(client, {"pm25": [
        {"type": "Property", "value": v, "observedAt": t}
        for t, v in [(old, 1), (old, 3), (recent, 9)]]})
    return old, recent


def test_cli_prunes_by_the_settings(settings: Settings, client: TestClient) -> None:
    old, recent = _recent_and_old(client)
    db = settings.database_url
    result = dothi("history", "prune", "--db", db, DOTHI_HISTORY_DOWNSAMPLE_AFTER="P30D",
                   DOTHI_HISTORY_DOWNSAMPLE_PERIOD="P1D")
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 instances, wrote 1 period averages" in result.stderr
    got = history(client)
    assert [(i["value"], i["observedAt"][10:]) for i in got] == [
        (2.0, "T00:00:00.000Z"), (9, recent[10:])]
    # The options override the settings.
    result = dothi("history", "prune", "--db", db, "--older-than", "P90D",
                   DOTHI_HISTORY_RETENTION="P1000D")
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 instances, wrote 0 period averages" in result.stderr
    assert [i["value"] for i in history(client)] == [9]


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--older-than", "P90"], {}, "--older-than"),
    (["--older-than", "P3M"], {}, "--older-than"),
    (["--older-than", "PT0S"], {}, "--older-than"),
    ([], {"DOTHI_HISTORY_RETENTION": "90 days"}, "DOTHI_HISTORY_RETENTION"),
    (["--downsample-after", "P7D", "--period", "hourly"], {}, "--period"),
    (["--older-than", "P7D", "--downsample-after", "P30D"], {}, "shorter"),
    (["--period", "PT1H", "--older-than", "P90D"], {}, "--period needs"),
    ([], {}, "no policy"),
])
def test_cli_refuses_bad_policies_and_changes_nothing(
        settings: Settings, client: TestClient, args: list[str], env: dict[str, str],
        message: str) -> None:
    _recent_and_old(client)
    before = history(client)
    db = settings.database_url
    result = dothi("history", "prune", "--db", db, *args, **env)
    assert result.returncode == 2, result.stderr
    assert "Cannot prune" in result.stderr and message in result.stderr
    assert history(client) == before
