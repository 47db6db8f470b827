"""A planner in Debian's chromium (Playwright) on the demo city: chooses the two
illustrative variants of central Hải Châu's zoning plan, draws the area on the map corner
by corner, and reads the figures side by side; the page shows what the API computes for
the same polygon, in Vietnamese and then in English."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import needs_chromium

pytestmark = needs_chromium

WITHIN_MS = 15_000
VARIANTS = ["urn:ngsi-ld:GisLayer:danang-phan-khu-hai-chau-a",
            "urn:ngsi-ld:GisLayer:danang-phan-khu-hai-chau-b"]
CORNERS = [(108.2110, 16.0540), (108.2230, 16.0540), (108.2230, 16.0700), (108.2110, 16.0700)]


def test_a_planner_compares_two_variants(city: str, browser: Any) -> None:
    from dothi.web.browser import draw_area, open_page

    page, errors = open_page(browser, city, "/planning/studio", "planningReady")
    page.locator("[data-testid=variant-a]").select_option(VARIANTS[0])
    page.locator("[data-testid=variant-b]").select_option(VARIANTS[1])
    assert page.locator("[data-testid=assess]").is_disabled()
    draw_area(page, CORNERS, finish=False)
    assert "4 đỉnh" in page.locator("[data-testid=status]").inner_text()
    page.locator("[data-testid=finish]").click()
    page.locator("[data-testid=assess]").click()
    table = page.locator("[data-testid=figures]")
    table.wait_for(timeout=WITHIN_MS)

    corners = page.evaluate("window.planning.state.corners")
    for (lon, lat), (x, y) in zip(CORNERS, corners, strict=True):
        assert abs(lon - x) < 0.0002 and abs(lat - y) < 0.0002
    area = {"type": "Polygon", "coordinates": [[*corners, corners[0]]]}
    with httpx.Client(base_url=city, timeout=10) as http:
        expected = http.post("/planning/compare",
                             json={"area": area, "variants": VARIANTS}).json()["variants"]
    assert page.evaluate("window.planning.state.result") == expected
    a, b = expected
    assert a["greenSpace"]["perResident"] < b["greenSpace"]["perResident"]
    assert a["grossFloorArea"]["m2"] > b["grossFloorArea"]["m2"]
    heads = table.locator("thead th").all_inner_texts()
    assert heads[1].startswith("Phương án A") and heads[2].startswith("Phương án B")
    green = table.locator("[data-testid=green-per] td").all_inner_texts()
    assert green[1:] == [f"{a['greenSpace']['perResident']:.1f}".replace(".", ","),
                         f"{b['greenSpace']['perResident']:.1f}".replace(".", ",")]
    schools = table.locator("[data-testid=near-school] td").all_inner_texts()
    assert schools[1] == f"{round(a['access']['school']['share'] * 100)}%"

    page.locator("[data-testid=lang]").click()
    assert table.locator("thead th").first.inner_text() == "Figure"
    assert "Variant A" in table.locator("thead th").nth(1).inner_text()
    floor = table.locator("[data-testid=floor] td").all_inner_texts()
    assert floor[1] == f"{a['grossFloorArea']['m2']:,}"
    assert errors == []
