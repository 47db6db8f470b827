"""The command line as the README shows it: load with a progress bar, contexts add,
db upgrade, demo loading; every `dothi` command the README names exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def dothi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = set(re.findall(r"^dothi ((?:[a-z][a-z-]* )?[a-z][a-z-]*)", readme, flags=re.M))
    assert {"serve", "load", "contexts add", "db upgrade", "demo", "migrate-store",
            "simulate"} <= {
        c.strip() for c in commands}
    for command in commands:
        result = dothi(*command.split(), "--help")
        assert result.returncode == 0, (command, result.stderr)


def test_load_contexts_and_upgrade(tmp_path: Path, database_url: Callable[[str], str]) -> None:
    db = database_url("city")
    assert dothi("db", "upgrade", "--db", db).returncode == 0
    ctx_url = "https://example.org/danang/context.jsonld"
    ctx_file = tmp_path / "ctx.jsonld"
    ctx_file.write_text(json.dumps({"@context": {
        "FloodSensor": "https://example.org/danang/FloodSensor",
        "waterLevel": "https://example.org/danang/waterLevel"}}))
    added = dothi("contexts", "add", ctx_url, str(ctx_file), "--db", db)
    assert added.returncode == 0, added.stderr
    entities = [
        {"id": f"urn:ngsi-ld:FloodSensor:{i}", "type": "FloodSensor",
         "waterLevel": {"type": "Property", "value": i / 10, "unitCode": "MTR"},
         "@context": [ctx_url]}
        for i in range(25)
    ]
    bad = {"id": "urn:ngsi-ld:FloodSensor:bad", "type": "FloodSensor",
           "waterLevel": {"type": "Property"}, "@context": [ctx_url]}
    data = tmp_path / "sensors.json"
    data.write_text(json.dumps(entities + [bad]))
    loaded = dothi("load", str(data), "--db", db)
    assert loaded.returncode == 1  # one entity refused, and said so
    assert "Loaded 25 entities, 1 failed" in loaded.stderr
    assert "FloodSensor:bad" in loaded.stderr
    # The stored context is used offline (fetching is off in the test settings).
    settings = Settings(database_url=db, context_fetch=False)
    link = f'<{ctx_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    with TestClient(create_app(settings)) as client:
        r = client.get("/ngsi-ld/v1/entities", params={"type": "FloodSensor",
                                                       "q": "waterLevel>=2", "count": "true"},
                       headers={"Link": link})
        assert r.status_code == 200, r.text
        assert r.headers["NGSILD-Results-Count"] == "5"
        assert r.json()[0]["waterLevel"]["unitCode"] == "MTR"
    listed = dothi("contexts", "list", "--db", db)
    assert ctx_url in listed.stdout


def test_demo_loads_city(database_url: Callable[[str], str]) -> None:
    db = database_url("demo")
    result = dothi("demo", "--db", db, "--no-serve")
    assert result.returncode == 0, result.stderr
    settings = Settings(database_url=db, context_fetch=False)
    with TestClient(create_app(settings)) as client:
        types = client.get("/ngsi-ld/v1/types").json()["typeList"]
        for expected in ("Streetlight", "AirQualityObserved", "FloodMonitoring",
                         "TrafficFlowObserved", "WasteContainer", "PointOfInterest"):
            assert expected in types
        page = client.get("/").text
        assert "Streetlight" in page
        lights = client.get("/ngsi-ld/v1/entities", params={
            "type": "Streetlight", "count": "true", "limit": "0"})
        assert int(lights.headers["NGSILD-Results-Count"]) >= 100
