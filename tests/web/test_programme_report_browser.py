"""A province's report to the national programme, written, submitted, returned, corrected
and accepted through /program/report in Debian's chromium (Playwright), on an instance
where people sign in: the reporter of Đà Nẵng (48) signs in through the form, submits an
incomplete report and sees the server's refusal (the report stays a draft), completes it
and submits it (read only then), cannot write Huế's (46); a coordinator returns it with a
comment, the reporter corrects it and submits again, the coordinator accepts it. What the
page shows is checked against what the API holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, hash_password
from tests.conftest import needs_chromium
from tests.server import running_server

pytestmark = needs_chromium
WITHIN_MS = 15_000
PASSWORD = "báo-cáo-an-toàn"
OFFICIAL = {"Authorization": "Bearer programme-officer"}
KEY, DA_NANG, HUE = "annual-2026", "48", "46"
COVERAGE, WIFI, PM25 = "EC: ICT: ICT: 4C", "EC: ICT: ICT: 5C", "EN: EN: AQ: 1C"
OVERVIEW = ("Năm 2026, thành phố đã vận hành trung tâm giám sát điều hành đô thị thông minh "
            "và nền tảng dữ liệu dùng chung.")
DIFFICULTIES = "Thiếu nhân lực công nghệ thông tin chuyên sâu."
PROPOSALS = "Đề nghị Bộ hướng dẫn bộ chỉ số."
COMMENT = "Số liệu bụi mịn PM2.5 chưa khớp với trạm quan trắc; đề nghị kiểm tra lại."


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, (str(response.request.url), response.text)
    return response.json()


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An instance with sign-in (anonymous is the public), the reporter of Đà Nẵng and a
    coordinator, the annual request of 2026 to Huế and Đà Nẵng and one task of Đà Nẵng."""
    folder = tmp_path_factory.mktemp("report")
    accounts = Accounts(folder / "accounts.yaml", Policy.load())
    accounts.add(Account("users", "hoa", "reporter", hash_password(PASSWORD, 1000),
                         "Trần Thị Hoa", agency=DA_NANG))
    accounts.add(Account("users", "tuan", "city-admin", hash_password(PASSWORD, 1000),
                         "Lê Văn Tuấn"))
    env = {"DOTHI_AUTH_ANONYMOUS": "public", "DOTHI_AUTH_ACCOUNTS": str(folder / "accounts.yaml"),
           "DOTHI_AUTH_KEY_FILE": str(folder / "auth.key"),
           "DOTHI_OFFICIAL_KEYS": "programme-officer"}
    with running_server(folder / "national.db", env=env) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            today = date.fromisoformat(ok(http.get("/program/overview"))["on"])
            ok(http.post("/program/requests", headers=OFFICIAL, json={
                "key": KEY, "template": "annual", "period": "2026",
                "dueDate": (today + timedelta(days=30)).isoformat(), "units": [HUE, DA_NANG]}))
            ok(http.put(f"/program/tasks/{DA_NANG}-2026-1", headers=OFFICIAL, json={
                "unit": DA_NANG, "name": {"vi": "Trung tâm IOC", "en": "The IOC"},
                "description": "Vận hành trung tâm IOC", "responsiblePerson": "Giám đốc Sở",
                "responsibility": "Sở Khoa học và Công nghệ", "authority": "UBND thành phố",
                "expectedProduct": "Trung tâm IOC vận hành",
                "leadAgency": "Sở Khoa học và Công nghệ",
                "startDate": (today - timedelta(days=60)).isoformat(),
                "deadline": (today + timedelta(days=300)).isoformat(), "progress": 40}))
        yield url


def the_report(url: str, unit: str = DA_NANG) -> httpx.Response:
    return httpx.get(f"{url}/program/reports/{KEY}/{unit}", timeout=10)


def sign_in(browser: Any, url: str, path: str, who: str) -> tuple[Any, list[str]]:
    """A new browser (its own cookies) on ``path``, signed in as ``who`` through the
    page's sign-in link and the built-in form."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}{path}")
    page.wait_for_function("window.reportReady === true", timeout=WITHIN_MS)
    assert page.locator("[data-testid=signin]").is_visible()
    assert page.locator("[data-testid=text][data-key=overview]").is_disabled()
    page.locator("[data-testid=signin-link]").click()
    page.wait_for_url(f"{url}/auth/login**")
    page.fill("#username", who)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/program/report**")
    page.wait_for_function("window.reportReady === true", timeout=WITHIN_MS)
    assert page.locator("[data-testid=who]").inner_text().split(" · ")[1] == who
    return page, errors


def act(page: Any, testid: str) -> None:
    """Click a button of the page and wait until what it started is done."""
    page.locator(f"[data-testid={testid}]").click()
    page.wait_for_function("window.reportReady === true", timeout=WITHIN_MS)


def reopen(page: Any, url: str, unit: str = DA_NANG) -> None:
    page.goto(f"{url}/program/report?request={KEY}&unit={unit}&lang=vi")
    page.wait_for_function("window.reportReady === true", timeout=WITHIN_MS)


def status_of(page: Any) -> str:
    found: str = page.locator("[data-testid=status]").get_attribute("data-status")
    return found


def text(page: Any, key: str) -> Any:
    return page.locator(f"[data-testid=text][data-key='{key}']")


def value(page: Any, code: str) -> Any:
    return page.locator(f"[data-testid=value][data-code='{code}']")


def test_a_province_reports_and_a_coordinator_reviews(national: str, browser: Any) -> None:
    url = national
    # No unit in the address: a reporter's own province once signed in.
    page, errors = sign_in(browser, url, f"/program/report?request={KEY}&lang=vi", "hoa")
    assert page.locator("[data-testid=unit]").input_value() == DA_NANG
    assert status_of(page) == "none"
    assert page.locator("[data-testid=due]").get_attribute("data-passed") == "false"
    assert page.locator("[data-testid=signin]").is_hidden()
    assert page.locator("[data-testid=back]").get_attribute("href").startswith(
        f"/program/dashboard?request={KEY}")
    # Required parts are marked; the overview's count follows what is typed.
    assert "bắt buộc" in page.locator("[data-section=overview] legend").inner_text()
    assert "40" in page.locator("[data-section=overview] legend").inner_text()
    assert page.locator("[data-testid=indicator][data-code='EN: EN: AQ: 1C'].required").count() == 1
    assert page.locator("[data-testid=indicator].required").count() == 2

    # Partly filled: the page's own check lists what is missing, the server refuses.
    text(page, "overview").fill("Đã vận hành IOC.")
    assert page.locator("[data-testid=count][data-key=overview]").inner_text() == "16 / 40 ký tự"
    text(page, "difficulties").fill(DIFFICULTIES)
    value(page, COVERAGE).fill("97")
    missing = page.locator("[data-testid=missing]").inner_text()
    assert "Tình hình triển khai trong năm" in missing and PM25 in missing
    act(page, "submit")
    problem = page.locator("[data-testid=problem]")
    assert problem.is_visible()
    refusal = problem.inner_text()
    assert "400" in refusal and "not complete" in refusal
    assert "section overview" in refusal and PM25 in refusal
    assert status_of(page) == "draft"
    draft = ok(the_report(url))
    assert draft["status"] == "draft" and draft["version"] == 1
    assert draft["indicators"][COVERAGE]["value"] == 97
    assert PM25 not in draft["indicators"]

    # Completed: submitted, exactly as typed, in the reporter's name; then read only.
    text(page, "overview").fill(OVERVIEW)
    text(page, "proposals").fill(PROPOSALS)
    value(page, PM25).fill("22.5")
    value(page, WIFI).fill("120")
    assert page.locator("[data-testid=checklist]").get_attribute("data-complete") == "true"
    act(page, "submit")
    assert status_of(page) == "submitted"
    assert problem.is_hidden()
    sent = ok(the_report(url))
    assert sent["status"] == "submitted"
    assert sent["sections"] == {"overview": OVERVIEW, "difficulties": DIFFICULTIES,
                                "proposals": PROPOSALS}
    assert {c: i["value"] for c, i in sent["indicators"].items()} == {
        COVERAGE: 97, PM25: 22.5, WIFI: 120}
    assert sent["log"][-1]["by"] == "user:hoa" and sent["log"][-1]["action"] == "submit"
    assert text(page, "overview").is_disabled() and value(page, PM25).is_disabled()
    assert page.locator("[data-testid=submit]").is_hidden()
    assert page.locator("[data-testid=locked]").is_visible()
    assert page.locator("[data-testid=version]").inner_text().endswith(str(sent["version"]))
    assert page.locator("[data-testid=log-entry]").count() == len(sent["log"])
    # The platform filled in the province's tasks; the reporter may not review.
    assert page.locator(f"[data-testid=task][data-code='{DA_NANG}-2026-1']").is_visible()
    assert page.locator("[data-testid=review]").is_hidden()

    # Huế's report is not the reporter's to write: the server's 403 is shown.
    reopen(page, url, HUE)
    assert page.locator("[data-testid=other-unit]").is_visible()
    text(page, "overview").fill(OVERVIEW)
    act(page, "save")
    assert problem.is_visible() and "403" in problem.inner_text()
    assert the_report(url, HUE).status_code == 404

    # A coordinator returns it with a comment (not without one).
    coordinator, coordinator_errors = sign_in(
        browser, url, f"/program/report?request={KEY}&unit={DA_NANG}&lang=vi", "tuan")
    assert status_of(coordinator) == "submitted"
    review = coordinator.locator("[data-testid=review]")
    assert review.is_visible()
    act(coordinator, "return")
    assert coordinator.locator("[data-testid=problem]").is_visible()
    assert ok(the_report(url))["status"] == "submitted"
    coordinator.locator("[data-testid=review-comments]").fill(COMMENT)
    act(coordinator, "return")
    assert status_of(coordinator) == "returned"
    assert review.is_hidden()
    returned = ok(the_report(url))
    assert returned["status"] == "returned" and returned["comments"] == COMMENT
    assert returned["log"][-1]["by"] == "user:tuan"

    # The reporter sees the comment, corrects the value and submits again.
    reopen(page, url)
    assert status_of(page) == "returned"
    assert page.locator("[data-testid=comments-text]").inner_text() == COMMENT
    assert value(page, PM25).input_value() == "22.5"
    value(page, PM25).fill("21.8")
    act(page, "submit")
    assert status_of(page) == "submitted"
    again = ok(the_report(url))
    assert again["status"] == "submitted" and again["indicators"][PM25]["value"] == 21.8
    assert [e["action"] for e in again["log"]][-3:] == ["return", "edit", "submit"]

    # The coordinator accepts it.
    reopen(coordinator, url)
    act(coordinator, "accept")
    assert status_of(coordinator) == "accepted"
    accepted = ok(the_report(url))
    assert accepted["status"] == "accepted"
    assert accepted["log"][-1] == {**accepted["log"][-1], "action": "accept", "by": "user:tuan"}
    assert text(coordinator, "overview").is_disabled()

    # In English.
    coordinator.locator("[data-testid=lang]").click()
    assert coordinator.locator("h1").inner_text() == "A unit's report — Smart city programme"
    assert coordinator.locator("[data-testid=status]").inner_text() == "Accepted"
    assert coordinator.locator("[data-testid=save]").inner_text() == "Save draft"
    assert "required" in coordinator.locator("[data-section=overview] legend").inner_text()
    assert coordinator.locator("[data-testid=log] th").first.inner_text() == "Version"
    assert coordinator.locator("[data-testid=lang]").inner_text() == "VI"
    assert errors == [] and coordinator_errors == []
    page.close()
    coordinator.close()
