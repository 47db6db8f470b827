"""What the browser tests share: the demo city served by a real ``dothi serve``, and
Debian's chromium driven by Playwright, one of each per test module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import running_server


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("city") / "city.db"
    subprocess.run([sys.executable, "-m", "dothi.cli", "demo", "--db", str(db), "--no-serve"],
                   check=True, capture_output=True)
    return db


@pytest.fixture(scope="module")
def city(city_db: Path) -> Iterator[str]:
    with running_server(city_db) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from dothi.web.browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
