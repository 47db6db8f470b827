"""The programme's tests in process, on both backends, with one official key (a city
administrator of the national instance: it may coordinate, and report for any unit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

OFFICIAL_KEY = "ministry"
OFFICIAL = {"Authorization": f"Bearer {OFFICIAL_KEY}"}


@pytest.fixture
def http(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys=OFFICIAL_KEY)
    with TestClient(create_app(settings)) as client:
        yield client
