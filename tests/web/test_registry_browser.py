"""The city's registers in Debian's chromium (Playwright), read as a citizen would on the
demo city: every record listed and drawn on the map, a search without diacritics, a
register chosen, a record opened from the list, from the map and from its address; the
page shows what the registry API holds (names, statuses in the register's own words, the
lifecycle with its decisions, the sandbox's expiry and reports, the building's
certification against each criterion), in Vietnamese and then in English."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def registry(city: str) -> dict[str, Any]:
    """What the API holds: the registers (by type), their criteria and every record."""
    with httpx.Client(base_url=city, timeout=30) as http:
        described = http.get("/registry/registers")
        found = http.get("/registry/records")
    assert described.status_code == 200, described.text
    assert found.status_code == 200, found.text
    return {"registers": {r["type"]: r for r in described.json()["registers"]},
            "criteria": described.json()["criteria"], "records": found.json()["records"]}


@pytest.fixture
def opened(city: str, browser: Any) -> Iterator[Any]:
    """Open ``path`` of the served city; the pages (and their error lists) are closed after
    the test."""
    from dothi.web.browser import open_page

    pages: list[Any] = []

    def open_(path: str = "/registry") -> tuple[Any, list[str]]:
        page, errors = open_page(browser, city, path, "registryReady")
        pages.append(page)
        return page, errors

    yield open_
    for page in pages:
        page.close()


def settled(page: Any) -> None:
    page.wait_for_function("window.registryReady === true")


def api_ids(city: str, **params: str) -> set[str]:
    with httpx.Client(base_url=city, timeout=30) as http:
        r = http.get("/registry/records", params=params)
    assert r.status_code == 200, r.text
    return {rec["registryId"] for rec in r.json()["records"]}


def listed(page: Any) -> set[str]:
    return set(page.locator("[data-testid=record]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.id)"))


def drawn(page: Any) -> int:
    shown = page.locator("[data-testid=map]").get_attribute("data-features")
    assert shown is not None, "the map has not drawn the records"
    return int(shown)


def title(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang) or texts["vi"]


def status_title(register: dict[str, Any], status: str, lang: str = "vi") -> str:
    return title(register["statuses"][status]["title"], lang)


def vi_number(value: float) -> str:
    """As the page writes a number in Vietnamese (at most one decimal, a decimal comma)."""
    return f"{value:.1f}".rstrip("0").rstrip(".").replace(".", ",")


def test_records_are_listed_drawn_searched_and_filtered(
        opened: Any, city: str, registry: dict[str, Any]) -> None:
    page, errors = opened()
    records = registry["records"]
    assert len(records) == 8
    assert listed(page) == {r["registryId"] for r in records}
    assert drawn(page) == len(records)
    for r in records:
        register = registry["registers"][r["type"]]
        card = page.locator(f"[data-testid=record][data-id='{r['registryId']}']").inner_text()
        assert r["name"] in card and title(register["title"], "vi") in card
        assert status_title(register, r["status"]) in card
        assert ("Sắp hết hạn" in card) == (r.get("expiry") == "expiring")
        assert ("Đã hết hạn" in card) == (r.get("expiry") == "expired")
        certified = (r.get("certification") or {}).get("status") == "certified"
        assert ("Đã chứng nhận" in card) == certified

    page.fill("[data-testid=search]", "hoa xuan")
    settled(page)
    wanted = api_ids(city, q="hoa xuan")
    assert wanted and listed(page) == wanted
    assert wanted == {r["registryId"] for r in records if "Hòa Xuân" in r["name"]}
    assert drawn(page) == len(wanted)

    page.fill("[data-testid=search]", "")
    settled(page)
    page.locator("[data-testid=register]").select_option("project")
    settled(page)
    projects = api_ids(city, register="project")
    assert listed(page) == projects
    assert projects == {r["registryId"] for r in records if r["type"] == "UrbanProject"}
    assert drawn(page) == len(projects)

    # Clicking a project's polygon on the map opens it.
    project = next(r for r in records if r["type"] == "UrbanProject" and "Hòa Xuân" in r["name"])
    ring = project["location"]["coordinates"][0]
    centre = [sum(c[0] for c in ring[:-1]) / (len(ring) - 1),
              sum(c[1] for c in ring[:-1]) / (len(ring) - 1)]
    xy = page.evaluate("""centre => {
        const m = window.registry.state.map;
        const p = m.project(centre);
        const box = m.getCanvas().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", centre)
    page.mouse.click(*xy)
    page.wait_for_function(
        "name => document.querySelector('[data-testid=detail-title]')?.textContent === name",
        arg=project["name"])
    settled(page)
    assert page.locator("[data-testid=detail-id]").inner_text() == project["registryId"]
    assert errors == []


def test_a_record_shows_its_lifecycle_expiry_and_certification(
        opened: Any, registry: dict[str, Any]) -> None:
    records = registry["records"]
    project = next(r for r in records if r["type"] == "UrbanProject" and "Hòa Xuân" in r["name"])
    page, errors = opened(f"/registry?record={project['registryId']}")
    detail = page.locator("[data-testid=detail]")
    assert page.locator("[data-testid=detail-title]").inner_text() == project["name"]
    assert page.locator("[data-testid=detail-id]").inner_text() == project["registryId"]
    register = registry["registers"]["UrbanProject"]
    assert page.locator("[data-testid=detail-status]").inner_text() == \
        status_title(register, project["status"])
    fields = detail.locator("[data-testid=fields]").inner_text()
    assert title(register["fields"]["investor"]["title"], "vi") in fields
    assert project["investor"] in fields
    moves = detail.locator("[data-testid=lifecycle] [data-testid=move]")
    assert moves.count() == len(project["statusHistory"])
    decided = [m for m in project["statusHistory"] if m.get("decision")]
    assert decided, "the demo's project was approved by a decision"
    for i, move in enumerate(project["statusHistory"]):
        text = moves.nth(i).inner_text()
        to = status_title(register, move["to"])
        assert to in text
        if move["from"]:
            assert f"{status_title(register, move['from'])} → {to}" in text
        if move.get("decision"):
            assert move["decision"] in text

    sandbox = next(r for r in records if r["type"] == "SandboxZone"
                   and r.get("expiry") == "expiring")
    page.locator(f"[data-testid=record][data-id='{sandbox['registryId']}']").click()
    settled(page)
    assert page.locator("[data-testid=detail-title]").inner_text() == sandbox["name"]
    assert detail.locator("[data-testid=badge-expiring]").inner_text() == "Sắp hết hạn"
    reports = detail.locator("[data-testid=reports]").inner_text()
    assert sandbox["reports"]
    for report in sandbox["reports"]:
        assert report["period"] in reports and report["summary"] in reports
    for participant in sandbox["participants"]:
        assert participant in detail.locator("[data-testid=fields]").inner_text()

    building = next(r for r in records if r["type"] == "SmartBuilding"
                    and (r.get("certification") or {}).get("status") == "certified")
    page.locator(f"[data-testid=record][data-id='{building['registryId']}']").click()
    settled(page)
    assert page.locator("[data-testid=detail-title]").inner_text() == building["name"]
    cert = building["certification"]
    certification = detail.locator("[data-testid=certification]")
    assert certification.locator("[data-testid=cert-score]").inner_text() == \
        f"{vi_number(cert['score'])}/100"
    assert certification.locator("[data-testid=cert-status]").inner_text() == "Đã chứng nhận"
    criteria = registry["criteria"]["building"]
    rows = certification.locator("[data-testid=criterion]")
    assert rows.count() == len(criteria["weights"])
    for name, texts in criteria["titles"].items():
        cells = certification.locator(f"[data-criterion={name}] td").all_inner_texts()
        assert cells[0] == title(texts, "vi")
        assert cells[2] == vi_number(cert["scores"][name]["score"])
        assert cells[3] == cert["scores"][name]["note"]

    page.locator("[data-testid=lang]").click()
    settled(page)
    register = registry["registers"]["SmartBuilding"]
    assert page.locator("[data-testid=detail-status]").inner_text() == \
        status_title(register, building["status"], "en")
    lifecycle = detail.locator("[data-testid=lifecycle]").inner_text()
    for move in building["statusHistory"]:
        assert status_title(register, move["to"], "en") in lifecycle
    assert certification.locator("[data-testid=cert-status]").inner_text() == "Certified"
    for name, texts in criteria["titles"].items():
        assert certification.locator(f"[data-criterion={name}] td").first.inner_text() == \
            title(texts, "en")
    card = page.locator(f"[data-testid=record][data-id='{project['registryId']}']").inner_text()
    assert status_title(registry["registers"]["UrbanProject"], project["status"], "en") in card
    assert errors == []
