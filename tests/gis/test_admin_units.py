"""Vietnam's administrative units after the 2025 reform as reference entities, and
boundaries put on them from a file by official code, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

THANH_KHE = "urn:ngsi-ld:AdministrativeArea:vn-ward-20209"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", "admin-units", *args],
                          capture_output=True, text=True, timeout=300)


def count(c: TestClient, q: str) -> int:
    r = c.get("/ngsi-ld/v1/entities", params={"type": "AdministrativeArea", "q": q,
                                              "count": "true", "limit": 0})
    assert r.status_code == 200, r.text
    return int(r.headers["NGSILD-Results-Count"])


def test_units_and_boundaries(tmp_path: Path, database_url: Callable[[str], str]) -> None:
    db = database_url("units")
    done = cli("load", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "Loaded 3355 administrative units" in done.stderr
    boundaries = tmp_path / "thanh-khe.geojson"
    square = [[108.19, 16.06], [108.21, 16.06], [108.21, 16.08], [108.19, 16.08],
              [108.19, 16.06]]
    boundaries.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"MA_XA": 20209, "TEN": "Thanh Khê"},
         "geometry": {"type": "Polygon", "coordinates": [square]}},
        {"type": "Feature", "properties": {"MA_XA": "99999", "TEN": "?"},
         "geometry": {"type": "Polygon", "coordinates": [square]}}]}))
    done = cli("boundaries", str(boundaries), "--code-field", "MA_XA", "--db", db)
    assert done.returncode == 1, done.stderr
    assert "feature 2: no ward with code 99999" in done.stderr
    assert "1 boundaries set from EPSG:4326" in done.stderr
    # Loading again refreshes the reference attributes and keeps the imported boundary.
    assert cli("load", "--province", "48", "--db", db).returncode == 0

    with TestClient(create_app(Settings(database_url=db, context_fetch=False))) as c:
        assert count(c, 'administrativeLevel=="province"') == 34
        assert count(c, 'administrativeLevel=="ward"|administrativeLevel=="commune"|'
                        'administrativeLevel=="specialZone"') == 3321
        assert count(c, 'containedInPlace=="urn:ngsi-ld:AdministrativeArea:vn-province-48"'
                     ) == 94
        province: dict[str, Any] = c.get(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:AdministrativeArea:vn-province-48",
            params={"options": "keyValues"}).json()
        assert (province["name"], province["officialCode"]) == ("Thành phố Đà Nẵng", "48")
        assert province["boundaryStatus"] == "notAvailable"
        assert province["location"]["type"] == "Point"
        ward = c.get(f"/ngsi-ld/v1/entities/{THANH_KHE}",
                     params={"options": "keyValues"}).json()
        assert (ward["name"], ward["administrativeLevel"]) == ("Phường Thanh Khê", "ward")
        assert ward["location"] == {"type": "Polygon", "coordinates": [square]}
        assert ward["boundaryStatus"] == "imported"
        assert ward["boundarySource"] == "thanh-khe.geojson (EPSG:4326 (WGS 84))"
        # The boundary answers "which ward is this point in".
        r = c.get("/ngsi-ld/v1/entities", params={
            "type": "AdministrativeArea", "georel": "contains", "geometry": "Point",
            "coordinates": "[108.2, 16.07]", "options": "keyValues"})
        assert [e["id"] for e in r.json()] == [THANH_KHE]
