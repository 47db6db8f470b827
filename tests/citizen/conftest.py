"""The demo city's wards behind a server with officials' keys and an app's key, for the
citizens' tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.demo import build_demo_city
from dothi.settings import Settings


@pytest.fixture
def city(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys="official-key-1, official-key-2",
                        open311_api_keys="hue-s-app", citizen_hourly_limit=4)
    with TestClient(create_app(settings)) as client:
        areas = [e for e in build_demo_city() if e["type"] == "AdministrativeArea"]
        r = client.post("/ngsi-ld/v1/entityOperations/create", json=areas,
                        headers={"Content-Type": "application/ld+json"})
        assert r.status_code == 201, r.text
        yield client
