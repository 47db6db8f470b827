"""Periodic reports of the national programme.

- A ``ReportRequest`` asks units (provinces, ministries) for a report by a due date: the
  annual report of each year (``calendar``) or an ad-hoc request. Its ``overdueUnits``
  lists the units that have not submitted once the due date has passed; ``check``
  rewrites it only when it changes, so that a subscription to it is notified then.
- A ``ProgrammeReport`` is one unit's answer: a draft (``draft``), then ``submitted``,
  ``returned`` for correction with the coordinator's comments, submitted again, and
  ``accepted``. A submission is validated against the request's template (required
  texts, required indicators, values that are numbers), and is late when it comes after
  the end of the due day in Asia/Ho_Chi_Minh. The indicator values submitted are also
  kept as the unit's ``KeyPerformanceIndicator`` entities of the period, so that the
  indicator pages and the ranking see them.
- ``consolidate`` puts the units' reports of a request side by side: the national
  report."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from dothi.kpi.compute import TZ, Computer, Result, period_bounds
from dothi.ngsild.timeutil import now_iso
from dothi.program.fields import parse_date
from dothi.program.records import Records
from dothi.program.tasks import Tasks, check_unit, today
from dothi.program.templates import Template
from dothi.program.units import provinces, unit_name

REQUEST = "ReportRequest"
REPORT = "ProgrammeReport"
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
EDITABLE = ("draft", "returned")
STATUS_TITLES = {
    "accepted": {"vi": "Đã chấp nhận", "en": "Accepted"},
    "submitted": {"vi": "Đã nộp", "en": "Submitted"},
    "returned": {"vi": "Trả lại để chỉnh sửa", "en": "Returned for correction"},
    "draft": {"vi": "Đang soạn", "en": "Draft"},
    "missing": {"vi": "Chưa nộp", "en": "Not submitted"},
}


def request_id(key: str) -> str:
    return f"urn:ngsi-ld:{REQUEST}:{key}"


def report_id(key: str, unit: str) -> str:
    return f"urn:ngsi-ld:{REPORT}:{key}:{unit}"


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise BadRequestData("A request's key is 1 to 64 letters, digits, - and _")
    return key


def due_end(due: str) -> datetime:
    """The last moment of the due day, in Vietnam's time."""
    return datetime.combine(date.fromisoformat(due) + timedelta(days=1), time(),
                            tzinfo=TZ) - timedelta(microseconds=1)


class Reporting:
    def __init__(self, broker: Broker, templates: dict[str, Template],
                 computer: Computer) -> None:
        self.templates = templates
        self.requests = Records(broker, REQUEST)
        self.reports = Records(broker, REPORT)
        self.tasks = Tasks(broker)
        self.computer = computer

    # -- requests and the calendar -------------------------------------------------------

    def template(self, key: Any) -> Template:
        if key not in self.templates:
            raise BadRequestData(f"No report template {key!r}; the templates are "
                                 f"{', '.join(sorted(self.templates))}")
        return self.templates[key]

    def issue(self, tenant: str, body: dict[str, Any], by: str) -> dict[str, Any]:
        """A request for reports: ``{"key", "title", "template", "period", "dueDate",
        "units", "kind"}``; units default to the 34 provinces."""
        key = check_key(body.get("key"))
        template = self.template(body.get("template"))
        period = str(body.get("period") or "")
        try:
            period_bounds(period)
        except ValueError as exc:
            raise BadRequestData(str(exc)) from None
        due = parse_date(body.get("dueDate"), "dueDate").isoformat()
        units = body.get("units") or sorted(provinces())
        if not isinstance(units, list):
            raise BadRequestData("units is a list of reporting units' codes")
        units = [check_unit(u) for u in units]
        if len(set(units)) != len(units):
            raise BadRequestData("units names a unit twice")
        kind = body.get("kind", "adhoc")
        if kind not in ("annual", "adhoc"):
            raise BadRequestData('kind is "annual" or "adhoc"')
        title = body.get("title") or template.title
        if isinstance(title, str):
            title = {"vi": title, "en": title}
        if not isinstance(title, dict) or not isinstance(title.get("vi"), str):
            raise BadRequestData('title is a text or {"vi": "…", "en": "…"}')

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is not None:
                raise AlreadyExists(f"The request {key} exists")
            return {"key": key, "title": title, "template": template.key, "period": period,
                    "kind": kind, "dueDate": due, "units": units, "issuedBy": by,
                    "issuedAt": now_iso(), "overdueUnits": []}

        return self.requests.save(tenant, request_id(key), change)

    def calendar(self, tenant: str, year: int, units: list[str] | None, by: str,
                 template: str = "annual") -> dict[str, Any]:
        """The annual report of ``year``, due on the template's day of that year."""
        chosen = self.template(template)
        if chosen.due is None:
            raise BadRequestData(f"The template {template} has no annual due date")
        return self.issue(tenant, {"key": f"{template}-{year}", "template": template,
                                   "period": str(year), "kind": "annual",
                                   "dueDate": f"{year}-{chosen.due}", "units": units,
                                   "title": {k: f"{v} {year}" for k, v in
                                             chosen.title.items()}}, by)

    def request(self, tenant: str, key: str) -> dict[str, Any]:
        found = self.requests.get(tenant, request_id(check_key(key)))
        if found is None:
            raise ResourceNotFound(f"No report request {key}")
        described = self.template(found["template"]).describe()
        catalogue = self.computer.catalogue
        for section in described["sections"]:
            if section["kind"] == "indicators":
                section["indicatorDetails"] = [
                    {"code": c, "name": catalogue.indicator(c).name,
                     "nameVi": catalogue.indicator(c).name_vi or None,
                     "unit": catalogue.indicator(c).unit} for c in section["indicators"]]
        return {**found, "templateSections": described}

    def all_requests(self, tenant: str) -> list[dict[str, Any]]:
        return sorted(self.requests.find(tenant), key=lambda r: (r["dueDate"], r["key"]))

    # -- a unit's report -----------------------------------------------------------------

    def report(self, tenant: str, key: str, unit: str) -> dict[str, Any]:
        found = self.reports.get(tenant, report_id(check_key(key), check_unit(unit)))
        if found is None:
            raise ResourceNotFound(f"No report of {unit} for {key}")
        return found

    def draft(self, tenant: str, key: str, unit: str, body: dict[str, Any],
              by: str) -> dict[str, Any]:
        """Write the unit's draft: ``{"sections": {key: text}, "indicators": {code:
        value or {"value", "provenance"}}}``; what is not given is kept, and an
        indicator given as null is taken out."""
        request = self.request(tenant, key)
        self._recipient(request, unit)
        template = self.template(request["template"])
        sections = body.get("sections", {})
        texts = {s.key for s in template.sections if s.kind == "text"}
        if not isinstance(sections, dict) or not all(
                k in texts and isinstance(v, str) and len(v) <= 20000
                for k, v in sections.items()):
            raise BadRequestData(f"sections maps the template's text sections "
                                 f"({', '.join(sorted(texts))}) to texts of at most "
                                 "20,000 characters")
        indicators = self._indicators(template, body.get("indicators", {}))

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            state = old or {"request": key, "refRequest": request_id(key), "unit": unit,
                            "unitName": unit_name(unit), "period": request["period"],
                            "status": "draft", "version": 0, "sections": {},
                            "indicators": {}, "log": []}
            if state["status"] not in EDITABLE:
                raise Conflict(f"The report is {state['status']}: it is changed only as "
                               "a draft or once returned")
            state["sections"] = {**state.get("sections", {}), **sections}
            merged = {**state.get("indicators", {}), **indicators}
            state["indicators"] = {k: v for k, v in merged.items() if v is not None}
            return _logged(state, "edit", by)

        return self.reports.save(tenant, report_id(key, unit), change)

    def submit(self, tenant: str, key: str, unit: str, by: str) -> dict[str, Any]:
        request = self.request(tenant, key)
        self._recipient(request, unit)
        template = self.template(request["template"])
        when = datetime.now(TZ)
        tasks = [{"code": t["code"], "name": t["name"], "deadline": t["deadline"],
                  "status": t.get("status"), "progress": t.get("progress"),
                  "flag": t.get("flag")} for t in self.tasks.find(tenant, unit=unit)]

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise Conflict(f"{unit} has no draft for {key}: write it first")
            if old["status"] not in EDITABLE:
                raise Conflict(f"The report is {old['status']}: only a draft or a returned "
                               "report is submitted")
            problems = validate(template, old)
            if problems:
                raise BadRequestData("The report is not complete: " + "; ".join(problems))
            state = {**old, "status": "submitted", "tasks": tasks,
                     "submittedAt": when.isoformat(timespec="seconds")}
            if "firstSubmittedAt" not in state:
                state["firstSubmittedAt"] = state["submittedAt"]
            late = (datetime.fromisoformat(state["firstSubmittedAt"])
                    - due_end(request["dueDate"]))
            state["late"] = late.total_seconds() > 0
            state["lateDays"] = math.ceil(late.total_seconds() / 86400) if state["late"] else 0
            return _logged(state, "submit", by)

        saved = self.reports.save(tenant, report_id(key, unit), change)
        self._keep_values(tenant, key, unit, request["period"], saved["indicators"])
        return saved

    def review(self, tenant: str, key: str, unit: str, decision: Any, comments: Any,
               by: str) -> dict[str, Any]:
        if decision not in ("accept", "return"):
            raise BadRequestData('decision is "accept" or "return"')
        if comments is not None and (not isinstance(comments, str) or len(comments) > 5000):
            raise BadRequestData("comments is a text of at most 5,000 characters")
        if decision == "return" and not (comments or "").strip():
            raise BadRequestData("a report is returned with comments saying what to correct")

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise ResourceNotFound(f"No report of {unit} for {key}")
            if old["status"] != "submitted":
                raise Conflict(f"The report is {old['status']}: only a submitted report is "
                               "reviewed")
            state = {**old, "status": "accepted" if decision == "accept" else "returned",
                     "comments": comments or ""}
            return _logged(state, decision, by)

        return self.reports.save(tenant, report_id(check_key(key), check_unit(unit)), change)

    # -- where each unit stands ----------------------------------------------------------

    def status(self, tenant: str, key: str, on: date | None = None) -> list[dict[str, Any]]:
        """``rows`` of the request of that key."""
        return self.rows(self.request(tenant, key), self.reports_of(tenant, key), on)

    def reports_of(self, tenant: str, key: str) -> dict[str, dict[str, Any]]:
        """The units' reports for a request, by unit."""
        return {r["unit"]: r for r in self.reports.find(tenant, f'request=="{check_key(key)}"')}

    @staticmethod
    def rows(request: dict[str, Any], reports: dict[str, dict[str, Any]],
             on: date | None = None) -> list[dict[str, Any]]:
        """One row per unit asked: its report's status, when it was submitted, whether
        late, and whether overdue (not submitted and the due day has passed)."""
        day = on or today()
        past_due = day > date.fromisoformat(request["dueDate"])
        rows = []
        for unit in request["units"]:
            report = reports.get(unit, {})
            status = report.get("status", "missing")
            sent = "firstSubmittedAt" in report
            rows.append({"unit": unit, "name": unit_name(unit), "status": status,
                         "statusTitle": STATUS_TITLES[status],
                         "submittedAt": report.get("submittedAt"),
                         "late": bool(report.get("late")),
                         "lateDays": report.get("lateDays", 0),
                         "overdue": past_due and not sent,
                         "daysOverdue": (day - date.fromisoformat(request["dueDate"])).days
                         if past_due and not sent else 0,
                         "version": report.get("version", 0)})
        return rows

    def check(self, tenant: str, on: date | None = None) -> dict[str, list[str]]:
        """Write each request's overdue units where they changed; returns them by
        request key."""
        changed = {}
        for request in self.requests.find(tenant):
            rows = self.rows(request, self.reports_of(tenant, request["key"]), on)
            overdue = [r["unit"] for r in rows if r["overdue"]]
            if overdue == request.get("overdueUnits"):
                continue

            def change(old: dict[str, Any] | None, overdue: list[str] = overdue
                       ) -> dict[str, Any]:
                if old is None:
                    raise ResourceNotFound("The request went away")
                if old.get("overdueUnits") == overdue:  # another process's check wrote it
                    return old
                return {**old, "overdueUnits": overdue, "flaggedAt": now_iso()}

            self.requests.save(tenant, request["id"], change)
            changed[request["key"]] = overdue
        return changed

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _recipient(request: dict[str, Any], unit: str) -> None:
        if check_unit(unit) not in request["units"]:
            raise BadRequestData(f"The request {request['key']} does not ask {unit} for a "
                                 "report")

    def _indicators(self, template: Template, given: Any) -> dict[str, Any]:
        if not isinstance(given, dict):
            raise BadRequestData("indicators maps indicator codes to values")
        out: dict[str, Any] = {}
        for code, item in given.items():
            if code not in template.indicators:
                raise BadRequestData(f"{code!r} is not an indicator of this report; it asks "
                                     f"for {', '.join(template.indicators)}")
            value = item.get("value") if isinstance(item, dict) else item
            if value is None:  # a value once given, taken back
                out[code] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise BadRequestData(f"{code}: the value is a number")
            indicator = self.computer.catalogue.indicator(code)
            entry: dict[str, Any] = {"value": float(value), "unit": indicator.unit,
                                     "name": indicator.name}
            if isinstance(item, dict) and item.get("provenance") is not None:
                entry["provenance"] = item["provenance"]
            out[code] = entry
        return out

    def _keep_values(self, tenant: str, key: str, unit: str, period: str,
                     indicators: dict[str, Any]) -> None:
        results = [Result(code, unit, period, value=item["value"],
                          source=f"reported by {unit} in {request_id(key)}",
                          measures={"reported": item.get("provenance")})
                   for code, item in indicators.items()]
        self.computer.store(tenant, results)


def validate(template: Template, report: dict[str, Any]) -> list[str]:
    """What the report lacks for its template, in words; empty when complete."""
    problems = []
    sections = report.get("sections") or {}
    values = report.get("indicators") or {}
    for section in template.sections:
        if section.kind == "text" and section.required:
            text = (sections.get(section.key) or "").strip()
            if len(text) < section.min_length:
                problems.append(f"section {section.key} ({section.title['vi']}) needs at "
                                f"least {section.min_length} characters")
        if section.kind == "indicators":
            missing = [c for c in section.required_indicators if c not in values]
            if missing:
                problems.append(f"indicators without a value: {', '.join(missing)}")
    return problems


def _logged(state: dict[str, Any], action: str, by: str) -> dict[str, Any]:
    version = int(state.get("version", 0)) + 1
    return {**state, "version": version,
            "log": [*state.get("log", []), {"version": version, "action": action,
                                             "by": by, "at": now_iso()}]}
