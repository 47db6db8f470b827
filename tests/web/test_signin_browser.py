"""An operator signs in, in a real browser (Debian chromium), on an instance where the
public may not see the operations centre: the dashboard sends them to the sign-in form,
then opens; what they do there carries their session's anti-forgery token and is done in
their name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, hash_password
from tests.conftest import needs_chromium
from tests.server import running_server

pytestmark = needs_chromium
WITHIN_MS = 15_000
PASSWORD = "vận-hành-an-toàn"


def test_an_operator_signs_in_and_acts_in_their_name(tmp_path: Path, city_db: Path,
                                                     browser: Any) -> None:
    accounts = tmp_path / "accounts.yaml"
    Accounts(accounts, Policy.load()).add(
        Account("users", "lan", "operator", hash_password(PASSWORD, 1000), "Nguyễn Thị Lan"))
    env = {"DOTHI_AUTH_ANONYMOUS": "public", "DOTHI_AUTH_ACCOUNTS": str(accounts),
           "DOTHI_AUTH_KEY_FILE": str(tmp_path / "auth.key")}
    with running_server(city_db, env=env) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="vi-VN")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/ioc/dashboard?lang=vi")
        assert page.url.startswith(f"{url}/auth/login")
        page.fill("#username", "lan")
        page.fill("#password", "sai mật khẩu")
        page.click("button[type=submit]")
        assert "Sai tên đăng nhập" in page.locator(".error").inner_text()
        page.fill("#username", "lan")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_function("window.dashboardReady === true", timeout=WITHIN_MS)
        assert page.url == f"{url}/ioc/dashboard?lang=vi"
        who = page.locator("[data-testid=who]")
        assert who.inner_text().startswith("Điều hành viên IOC · lan")

        page.locator("[data-testid=new-incident]").click()
        form = page.locator("[data-testid=detail]")
        form.locator("[data-testid=new-title]").fill("Cây đổ chắn đường Lê Duẩn")
        form.locator("[data-testid=new-category]").select_option("traffic")
        form.locator("[data-testid=new-severity]").select_option("high")
        box = page.locator("#map canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        form.locator("[data-testid=new-create]").click()
        item = page.locator("[data-testid=incident]", has_text="Cây đổ chắn đường Lê Duẩn")
        item.wait_for(timeout=WITHIN_MS)
        eid = item.get_attribute("data-id")
        assert errors == []
        # Signing out ends the session: the dashboard asks again.
        page.locator("[data-testid=sign-out]").click()
        page.wait_for_url(f"{url}/")
        page.goto(f"{url}/ioc/dashboard")
        assert page.url.startswith(f"{url}/auth/login")

        with httpx.Client(base_url=url, timeout=10) as http:
            # Not for the public's eyes; in the operator's name.
            assert http.get(f"/ioc/incidents/{eid}").status_code == 401
            issued = http.post("/auth/token", data={
                "grant_type": "password", "username": "lan", "password": PASSWORD}).json()
            made = http.get(f"/ioc/incidents/{eid}", headers={
                "Authorization": f"Bearer {issued['access_token']}"}).json()
        assert made["openedBy"] == "user:lan"
