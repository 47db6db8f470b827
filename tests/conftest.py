from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'test.db'}", context_fetch=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def streetlight(n: int = 1, **extra: object) -> dict:
    entity = {
        "id": f"urn:ngsi-ld:Streetlight:dn-{n}",
        "type": "Streetlight",
        "powerState": {"type": "Property", "value": "on"},
        "illuminanceLevel": {"type": "Property", "value": 0.8, "unitCode": "C62"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [108.2272, 16.0612]}},
    }
    entity.update(extra)
    return entity
