"""The issue's "done": a national instance and two provincial instances, each a real
``dothi serve`` on loopback. The Ministry loads the programme's tasks and asks both
provinces for their annual report; Đà Nẵng's officials enter their indicator values on
their own instance and send the report up with ``dothi program send``; Huế sends
nothing. The national instance shows Đà Nẵng's report and values consolidated, flags Huế
once the due day has passed, and exports the national report."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from docx import Document
from typer.testing import CliRunner

from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, key_hash
from dothi.cli import app as cli
from dothi.program.tasks import today
from tests.server import running_server

MINISTRY, DANANG, HUE = "dothi_bxd-coordinator", "dothi_reporter-48", "dothi_reporter-46"
OFFICIAL = "da-nang-official"


def dothi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "DOTHI_CONTEXT_FETCH": "false"})


def test_provinces_report_up_and_the_ministry_consolidates(tmp_path: Path) -> None:
    national_db, danang_db, hue_db = (tmp_path / f"{n}.db" for n in ("national", "48", "46"))
    accounts = Accounts(tmp_path / "accounts.yaml", Policy.load())
    for name, role, key, agency in (("bxd", "city-admin", MINISTRY, None),
                                    ("da-nang", "reporter", DANANG, "48"),
                                    ("hue", "reporter", HUE, "46")):
        accounts.add(Account("keys", name, role, key_hash(key), agency=agency))
    loaded = CliRunner().invoke(cli, ["program", "load-tasks", "--db", str(national_db)])
    assert loaded.exit_code == 0, loaded.output
    national_env = {"DOTHI_AUTH_ACCOUNTS": str(tmp_path / "accounts.yaml"),
                    "DOTHI_AUTH_KEY_FILE": str(tmp_path / "auth.key")}
    due = today().isoformat()
    tomorrow = (today() + timedelta(days=1)).isoformat()
    sections = tmp_path / "bao-cao.yaml"
    sections.write_text(
        "overview: Năm 2026 Đà Nẵng vận hành nền tảng dữ liệu đô thị và trung tâm IOC.\n"
        "difficulties: Thiếu nhân lực phân tích dữ liệu.\n", encoding="utf-8")

    with running_server(national_db, env=national_env) as national_url, \
            running_server(danang_db, env={"DOTHI_OFFICIAL_KEYS": OFFICIAL}) as danang_url, \
            running_server(hue_db) as hue_url, \
            httpx.Client(base_url=national_url, timeout=30,
                         headers={"Authorization": f"Bearer {MINISTRY}"}) as ministry, \
            httpx.Client(base_url=danang_url, timeout=30,
                         headers={"Authorization": f"Bearer {OFFICIAL}"}) as danang:
        assert httpx.get(f"{hue_url}/-/health").status_code == 200
        r = ministry.post("/program/requests", json={
            "key": "annual-2026", "template": "annual", "period": "2026", "dueDate": due,
            "units": ["48", "46"], "kind": "annual"})
        assert r.status_code == 201, r.text

        # Đà Nẵng's values, entered with their evidence on its own instance.
        for code, numerator, denominator in (("EC: ICT: ICT: 4C", 97, 100),
                                             ("EN: EN: AQ: 1C", 22.5, None),
                                             ("EC: ICT: ICT: 5C", 120, None)):
            r = danang.post("/kpi/values", json={
                "city": "danang", "period": "2026", "code": code, "numerator": numerator,
                "denominator": denominator,
                "evidence": "https://danang.gov.vn.invalid/so-lieu-2026.pdf"})
            assert r.status_code == 201, r.text

        common = ("--request", "annual-2026", "--national", national_url,
                  "--sections", str(sections))
        # Huế's key cannot send Đà Nẵng's report.
        refused = dothi("program", "send", *common, "--unit", "48", "--city", "danang",
                        "--api-key", HUE, "--db", str(hue_db))
        assert refused.returncode == 1 and "403" in refused.stderr, refused.stderr
        sent = dothi("program", "send", *common, "--unit", "48", "--city", "danang",
                     "--api-key", DANANG, "--db", str(danang_db))
        assert sent.returncode == 0, sent.stderr
        assert "48: annual-2026 submitted (version 2), 3 indicator values, on time" \
            in sent.stderr

        # The national instance holds Đà Nẵng's values, with where they came from.
        values = httpx.get(f"{national_url}/kpi/values", params={"city": "48"}).json()
        pm = next(i for i in values["indicators"] if i["code"] == "EN: EN: AQ: 1C")
        assert pm["values"]["2026"]["value"] == 22.5
        provenance = pm["values"]["2026"]["provenance"]
        assert provenance["source"] == \
            "reported by 48 in urn:ngsi-ld:ReportRequest:annual-2026"
        assert provenance["reported"]["evidence"] == \
            "https://danang.gov.vn.invalid/so-lieu-2026.pdf"

        # Today is the due day: nobody is overdue. Tomorrow, Huế is.
        now = {r["unit"]: r for r in ministry.get(
            "/program/requests/annual-2026/status").json()}
        assert (now["48"]["status"], now["48"]["late"], now["46"]["overdue"]) == (
            "submitted", False, False)
        checked = dothi("program", "check", "--on", tomorrow, "--db", str(national_db))
        assert checked.returncode == 0, checked.stderr
        assert "annual-2026: overdue 46" in checked.stderr
        request = ministry.get("/program/requests/annual-2026").json()
        assert request["overdueUnits"] == ["46"]
        national = ministry.get("/program/requests/annual-2026/national",
                                params={"on": tomorrow}).json()
        assert national["counts"] == {"asked": 2, "onTime": 1, "late": 0, "overdue": 1,
                                      "missing": 1, "accepted": 0}
        assert national["indicators"][0]["values"] == {"48": 97}
        overview = ministry.get("/program/overview", params={
            "request": "annual-2026", "on": tomorrow}).json()
        by_code = {u["code"]: u for u in overview["units"]}
        assert by_code["46"]["report"]["overdue"] is True
        assert by_code["48"]["report"]["status"] == "submitted"
        assert by_code["01"]["report"] is None  # not asked

        ministry.post("/program/reports/annual-2026/48/review", json={"decision": "accept"})

    out = tmp_path / "bao-cao-quoc-gia.docx"
    exported = dothi("program", "export", "--request", "annual-2026", "--out", str(out),
                     "--on", tomorrow, "--db", str(national_db))
    assert exported.returncode == 0, exported.stderr
    assert "2 asked, 1 on time, 0 late, 1 overdue" in exported.stderr
    doc = Document(io.BytesIO(out.read_bytes()))
    status = {row.cells[0].text: row.cells[1].text for row in doc.tables[0].rows[1:]}
    assert status == {"Thành phố Đà Nẵng (48)": "Đã chấp nhận",
                      "Thành phố Huế (46)": "Quá hạn, chưa nộp"}
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Đà Nẵng vận hành nền tảng dữ liệu đô thị" in text
