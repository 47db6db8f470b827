"""Indicators: the catalogues load with the scale each unit implies; raw numerators and
denominators give the published values; the store's measures (an annual mean from
history, hectares of green space per 100,000 inhabitants, counts) compute on both backends,
are kept as KeyPerformanceIndicator entities with their provenance, and what cannot be
computed says why."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.gis.assessment import Assessor
from dothi.kpi.catalogue import Catalogue, scale_of
from dothi.kpi.compute import Computer, entity_id

RAW = """city,period,code,numerator,denominator
hue,2023,EC: ICT: ICT: 1C,"151,200",180000
hue,2023,EC: ICT: ICT: 3C,912000,652572
hue,2023,EC: P: EM: 1C,12345,411500
hue,2023,EN: EN: AQ: 1C,24.6,
hue,2023,ISO 37120: 5.6,30500,652572
hue,2023,EC: I: WS: 3C,abc,100
hue,2023,XX: 1,1,2
hue,2023,EC: I: ES: 1C,5,0
"""


def test_catalogues_and_scales() -> None:
    catalogue = Catalogue.load()
    u4ssc = [i for i in catalogue.indicators.values() if i.catalogue == "U4SSC"]
    iso = [i for i in catalogue.indicators.values() if i.catalogue == "ISO 37120"]
    assert (len(u4ssc), len(iso)) == (91, 100)
    assert sum(i.core for i in iso) == 46
    scales = {code: scale_of(catalogue.indicator(code)) for code in (
        "EC: ICT: ICT: 1C", "EC: ICT: ICT: 3C", "EN: EN: AQ: 1C", "SC: SH: SA: 5A",
        "ISO 37120: 5.6", "ISO 37120: 5.1")}
    assert scales == {"EC: ICT: ICT: 1C": 100, "EC: ICT: ICT: 3C": 100_000,
                      "EN: EN: AQ: 1C": 1, "SC: SH: SA: 5A": 1, "ISO 37120: 5.6": 100_000,
                      "ISO 37120: 5.1": 100}


def test_raw_values_give_the_published_indicators(tmp_path: Path) -> None:
    raw = tmp_path / "hue.csv"
    raw.write_text(RAW, encoding="utf-8")
    out = tmp_path / "values.csv"
    done = subprocess.run(
        [sys.executable, "-m", "dothi.cli", "kpi", "compute", "--city", "hue", "--period",
         "2023", "--raw", str(raw), "--out", str(out), "--db", str(tmp_path / "k.db")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "5 computed, 3 missing; 5 stored" in done.stderr
    with out.open(encoding="utf-8") as f:
        rows = {r["code"]: r for r in csv.DictReader(f)}
    assert float(rows["EC: ICT: ICT: 1C"]["value"]) == pytest.approx(84.0)
    assert float(rows["EC: ICT: ICT: 3C"]["value"]) == pytest.approx(139_754.69, abs=0.01)
    assert float(rows["EC: P: EM: 1C"]["value"]) == pytest.approx(3.0, abs=0.001)
    assert float(rows["EN: EN: AQ: 1C"]["value"]) == pytest.approx(24.6)
    assert float(rows["ISO 37120: 5.6"]["value"]) == pytest.approx(4673.8, abs=0.1)
    assert "not a number" in rows["EC: I: WS: 3C"]["missing"]
    assert "No indicator 'XX: 1'" in rows["XX: 1"]["missing"]
    assert rows["EC: I: ES: 1C"]["missing"] == "the denominator is 0"


def city_entities() -> list[dict[str, Any]]:
    def box(w: float, s: float, size: float) -> dict[str, Any]:
        return {"type": "Polygon", "coordinates": [[[w, s], [w + size, s],
                                                    [w + size, s + size], [w, s + size],
                                                    [w, s]]]}

    return [
        {"id": "urn:ngsi-ld:AdministrativeArea:a", "type": "AdministrativeArea",
         "population": {"type": "Property", "value": 150_000},
         "location": {"type": "GeoProperty", "value": box(108.20, 16.04, 0.02)}},
        {"id": "urn:ngsi-ld:AdministrativeArea:b", "type": "AdministrativeArea",
         "population": {"type": "Property", "value": 50_000},
         "location": {"type": "GeoProperty", "value": box(108.22, 16.04, 0.02)}},
        # Two green zones overlapping by half: 1.5 times one zone's area.
        *({"id": f"urn:ngsi-ld:PlanningZone:g{n}", "type": "PlanningZone",
           "landUse": {"type": "Property", "value": "green"},
           "location": {"type": "GeoProperty", "value": box(108.205 + n * 0.0005, 16.045,
                                                           0.001)}} for n in range(2)),
        *({"id": f"urn:ngsi-ld:AirQualityObserved:s{n}", "type": "AirQualityObserved",
           "pm25": {"type": "Property", "value": 10.0, "unitCode": "GQ",
                    "observedAt": "2024-12-31T10:00:00Z"},
           "location": {"type": "GeoProperty",
                        "value": {"type": "Point", "coordinates": [108.21, 16.05]}}}
          for n in range(2)),
    ]


def test_computed_from_the_store_and_kept(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=city_entities())
    assert r.status_code == 201, r.text
    # A year of history: station 0 averages 20 µg/m³, station 1 40; the 2024 reading
    # before the year does not count.
    for n, values in enumerate(([10.0, 30.0], [40.0])):
        instances = [{"type": "Property", "value": v, "unitCode": "GQ",
                      "observedAt": f"2025-0{k + 3}-01T00:00:00Z"} for k, v in enumerate(values)]
        r = client.post(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:s{n}"
                        "/attrs", json={"pm25": instances})
        assert r.status_code == 204, r.text
    broker = client.app.state.broker  # type: ignore[attr-defined]
    computer = Computer(broker, Catalogue.load(), Assessor(broker))
    results = {r.code: r for r in computer.compute("urn:ngsi-ld:tenant:default", "danang",
                                                   "2025")}
    assert results["EN: EN: AQ: 1C"].value == pytest.approx(30.0)
    assert results["EN: EN: AQ: 1C"].measures["numerator"]["withHistory"] == 2
    green = results["EN: EN: PSN: 1C"]
    zone_ha = 0.001 * 111_320 * 0.9612 * 0.001 * 110_574 / 1e4  # about 1.18 ha at 16° N
    assert green.numerator == pytest.approx(1.5 * zone_ha, rel=0.01)
    assert green.denominator == 200_000
    assert green.value == pytest.approx(1.5 * zone_ha / 2, rel=0.01)
    assert results["EC: ICT: ICT: 5C"].missing == (
        'no PointOfInterest entities with category=="wifiHotspot" in the store')
    assert results["EC: ICT: T: 2C"].missing == "no TrafficFlowObserved entities in the store"

    assert computer.store("urn:ngsi-ld:tenant:default", list(results.values())) == 3
    kept = client.get(f"/ngsi-ld/v1/entities/{entity_id('danang', 'EN: EN: AQ: 1C', '2025')}",
                      params={"options": "keyValues"}).json()
    assert kept["type"] == "KeyPerformanceIndicator"
    assert (kept["kpiCode"], kept["kpiValue"], kept["unit"], kept["desirableDirection"]) == (
        "EN: EN: AQ: 1C", pytest.approx(30.0), "ug/m3 (annual mean) per pollutant", "lower")
    assert kept["calculationPeriod"]["from"].startswith("2025-01-01T00:00:00+07:00")
    assert kept["provenance"]["numerator"] == pytest.approx(30.0)
    assert kept["provenance"]["source"] == "store"
    # Computing again replaces the values, not adds to them.
    assert computer.store("urn:ngsi-ld:tenant:default", list(results.values())) == 3
    listed = client.get("/ngsi-ld/v1/entities", params={"type": "KeyPerformanceIndicator",
                                                        "count": "true"})
    assert listed.headers["ngsild-results-count"] == "3"


def test_bad_periods_and_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("town,year,code,value\n", encoding="utf-8")
    for args in (["--period", "last year"], ["--period", "2025", "--raw", str(bad)]):
        done = subprocess.run([sys.executable, "-m", "dothi.cli", "kpi", "compute", "--city",
                               "hue", *args, "--db", str(tmp_path / "k.db")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "period" in done.stderr or "no column" in done.stderr


def test_the_documented_commands(tmp_path: Path) -> None:
    """docs/kpi.md's commands, as written, on the demo city and on raw values (the raw
    file's command reads the file it names, in the folder it runs in)."""
    import re
    import shlex

    doc = (Path(__file__).resolve().parents[2] / "docs" / "kpi.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(dothi [^\n]*)\n```", doc)
    assert len(commands) == 5
    subprocess.run([sys.executable, "-m", "dothi.cli", "demo", "--db", "dothi-demo.db",
                    "--no-serve"], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "raw-values.csv").write_text(RAW, encoding="utf-8")
    for command in commands:
        args = shlex.split(command)[1:]
        done = subprocess.run([sys.executable, "-m", "dothi.cli", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
        if args[1] == "quality":
            assert "Database quality" in done.stdout and "datasets scored" in done.stderr
            continue
        if args[1] == "rank":
            assert "Cities ranked, 2026" in done.stdout and "haiphong" in done.stderr
            continue
        if args[1] == "report":
            assert (tmp_path / "report.xlsx").stat().st_size > 5000
            assert "danang 2026: level" in done.stderr
            continue
        with (tmp_path / "values.csv").open(encoding="utf-8") as f:
            values = {r["code"]: r for r in csv.DictReader(f)}
        assert values, command
    assert float(values["EC: ICT: ICT: 1C"]["value"]) == pytest.approx(84.0)
