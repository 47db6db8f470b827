"""The programme's desk: its tasks, action plans and reports together, the check that
flags overdue and at-risk tasks and overdue reports, and the weekly digest.

The digest of an ISO week is a ``ProgrammeDigest`` entity, written once, by the first
check of that week: whoever subscribes to the type (an e-mail gateway, the Ministry's
office system) is sent each week's digest by the broker's own notifications."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, ResourceNotFound
from dothi.kpi.compute import Computer
from dothi.ngsild.timeutil import now_iso
from dothi.program.pilots import Pilots
from dothi.program.plans import Plans
from dothi.program.records import Records
from dothi.program.reports import Reporting
from dothi.program.schemes import Schemes
from dothi.program.tasks import Tasks, today
from dothi.program.templates import load_templates
from dothi.program.units import unit_name
from dothi.store.base import DEFAULT_TENANT

DIGEST = "ProgrammeDigest"
SOON_DAYS = 14


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def digest_id(week: str) -> str:
    return f"urn:ngsi-ld:{DIGEST}:{week}"


class Programme:
    def __init__(self, broker: Broker, computer: Computer,
                 templates: Path | None = None) -> None:
        self.broker = broker
        self.tasks = Tasks(broker)
        self.plans = Plans(broker)
        self.reporting = Reporting(broker, load_templates(templates, computer.catalogue),
                                   computer)
        self.schemes = Schemes(broker)
        self.pilots = Pilots(broker, computer.catalogue)
        self.digests = Records(broker, DIGEST)

    def check(self, tenant: str, on: date | None = None) -> dict[str, Any]:
        """Flag the tasks and the requests as they stand on the day, and write the
        week's digest if it is not written yet (and the tenant runs a programme at all:
        a city's instance with no tasks, requests or schemes gets no empty digests)."""
        day = on or today()
        checked = self.tasks.check(tenant, day)
        overdue = self.reporting.check(tenant, day)
        week = week_of(day)
        written = False
        # Once a week: the digest is looked for, then whether a programme runs at all.
        if self.digests.get(tenant, digest_id(week)) is None and (
                checked.tasks > 0 or self.reporting.all_requests(tenant)
                or self.schemes.find(tenant)):
            digest = self.digest(tenant, day)

            def change(old: dict[str, Any] | None) -> dict[str, Any]:
                if old is not None:  # another worker wrote it first
                    raise AlreadyExists(f"The digest of {week} is written")
                return digest

            try:
                self.digests.save(tenant, digest_id(week), change)
                written = True
            except AlreadyExists:
                pass
        return {"on": day.isoformat(), "tasks": checked.tasks, "flagged": checked.changed,
                "overdueReports": overdue, "digest": week if written else None}

    def check_all(self) -> None:
        tenants = {DEFAULT_TENANT, *self.broker.store.tenants()}
        for tenant in sorted(t for t in tenants if "~" not in t):
            self.check(tenant)

    def digest(self, tenant: str, on: date | None = None) -> dict[str, Any]:
        """What the week's coordinators should look at: overdue and at-risk tasks, tasks
        and reports due within two weeks, the units overdue on each request, and the
        provincial schemes with a step overdue; with the same as text in Vietnamese and
        English."""
        day = on or today()
        soon = (day + timedelta(days=SOON_DAYS)).isoformat()
        tasks = self.tasks.find(tenant)

        def brief(t: dict[str, Any]) -> dict[str, Any]:
            return {"code": t["code"], "name": t["name"], "unit": t["unit"],
                    "deadline": t["deadline"], "progress": t.get("progress", 0),
                    "leadAgency": t.get("leadAgency")}

        live = [t for t in tasks if t.get("status") not in ("done", "cancelled")]
        overdue = [brief(t) for t in live if t["deadline"] < day.isoformat()]
        at_risk = [brief(t) for t in live if t.get("flag") == "atRisk"
                   and t["deadline"] >= day.isoformat()]
        due_soon = [brief(t) for t in live if day.isoformat() <= t["deadline"] <= soon]
        requests = []
        for request in self.reporting.all_requests(tenant):
            rows = self.reporting.rows(
                request, self.reporting.reports_of(tenant, request["key"]), day)
            requests.append({
                "key": request["key"], "title": request["title"],
                "dueDate": request["dueDate"],
                "submitted": sum(1 for r in rows if r["submittedAt"]), "asked": len(rows),
                "overdueUnits": [r["unit"] for r in rows if r["overdue"]],
                "dueSoon": day.isoformat() <= request["dueDate"] <= soon})
        schemes = [{"unit": s["unit"], "key": s["key"], "title": s["title"],
                    "status": s["status"], "due": s["due"]}
                   for s in self.schemes.due(tenant, on=day)]
        digest: dict[str, Any] = {
            "week": week_of(day), "on": day.isoformat(), "overdueTasks": overdue,
            "atRiskTasks": at_risk, "dueSoonTasks": due_soon, "requests": requests,
            "schemes": schemes, "madeAt": now_iso()}
        digest["text"] = {lang: _text(digest, lang) for lang in ("vi", "en")}
        return digest

    def latest_digest(self, tenant: str) -> dict[str, Any]:
        found = sorted(self.digests.find(tenant), key=lambda d: d["week"])
        if not found:
            raise ResourceNotFound("No digest has been written yet")
        return found[-1]


def _text(d: dict[str, Any], lang: str) -> str:
    vi = lang == "vi"
    lines = [f"{'Bản tin tuần' if vi else 'Weekly digest'} {d['week']} "
             f"({'ngày' if vi else 'as of'} {d['on']})", ""]

    def tasks(title: str, items: list[dict[str, Any]]) -> None:
        lines.append(f"{title}: {len(items)}")
        for t in items:
            lines.append(f"- {t['code']} {t['name'][lang]} — {unit_name(t['unit'])}, "
                         f"{'hạn' if vi else 'due'} {t['deadline']}, "
                         f"{t['progress']:.0f}%")
        lines.append("")

    tasks("Nhiệm vụ quá hạn" if vi else "Overdue tasks", d["overdueTasks"])
    tasks("Nhiệm vụ có nguy cơ chậm" if vi else "Tasks at risk", d["atRiskTasks"])
    tasks(f"Nhiệm vụ đến hạn trong {SOON_DAYS} ngày" if vi
          else f"Tasks due within {SOON_DAYS} days", d["dueSoonTasks"])
    lines.append("Báo cáo" if vi else "Reports")
    for r in d["requests"]:
        late = ", ".join(unit_name(u) for u in r["overdueUnits"])
        lines.append(f"- {r['title'][lang]} ({'hạn' if vi else 'due'} {r['dueDate']}): "
                     f"{r['submitted']}/{r['asked']} {'đã nộp' if vi else 'submitted'}"
                     + (f"; {'quá hạn' if vi else 'overdue'}: {late}" if late else ""))
    if d["schemes"]:
        lines += ["", "Đề án, kế hoạch cần xử lý" if vi else "Schemes and plans overdue"]
        for s in d["schemes"]:
            lines.append(f"- {unit_name(s['unit'])}: {s['title'][lang]} — "
                         + "; ".join(why["text"][lang] for why in s["due"]))
    return "\n".join(lines)
