"""Action plans (kế hoạch hành động): what a ministry or a province will do, year by year,
for the national tasks. A plan is an ``ActionPlan`` entity of a unit and a period, and
each of its items becomes a ``ProgrammeTask`` of the unit, a child of the national task
it serves, with the "6 rõ" of a task of its own. Submitting the plan again is a new
version: its items replace what they state, while the progress already reported on them
is kept; an item dropped from the plan is cancelled, not deleted, so its history stays."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.ngsild.timeutil import now_iso
from dothi.program.records import Records
from dothi.program.tasks import Tasks, check_task, check_unit, task_id
from dothi.program.units import unit_name

PLAN = "ActionPlan"
PERIOD = re.compile(r"\d{4}(-\d{4})?")


def plan_id(unit: str, period: str) -> str:
    return f"urn:ngsi-ld:{PLAN}:{unit}:{period}"


class Plans:
    def __init__(self, broker: Broker) -> None:
        self.records = Records(broker, PLAN)
        self.tasks = Tasks(broker)

    def get(self, tenant: str, unit: str, period: str) -> dict[str, Any]:
        found = self.records.get(tenant, plan_id(check_unit(unit), period))
        if found is None:
            raise ResourceNotFound(f"No action plan of {unit} for {period}")
        return found

    def find(self, tenant: str) -> list[dict[str, Any]]:
        return sorted(self.records.find(tenant), key=lambda p: (p["unit"], p["period"]))

    def submit(self, tenant: str, unit: str, period: str, body: dict[str, Any], by: str,
               on: date | None = None) -> dict[str, Any]:
        """``{"title", "items": [task, ...]}``: each item a task (``check_task``) whose
        ``refParent`` names the national task it serves, which must exist. Every item
        is checked before anything is written."""
        check_unit(unit)
        if not isinstance(period, str) or not PERIOD.fullmatch(period):
            raise BadRequestData("period is a year (2026) or years (2026-2030)")
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise BadRequestData("items lists the plan's tasks")
        records, problems = [], []
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict):
                problems.append(f"item {n}: a task is a JSON object")
                continue
            code = item.get("code")
            try:
                record = check_task({**item, "code": f"{unit}-{period}-{code}",
                                     "refActionPlan": plan_id(unit, period)}, unit=unit)
            except BadRequestData as exc:
                problems.append(f"item {n}: {exc.detail}")
                continue
            parent = record.get("refParent")
            if parent is None:
                problems.append(f"item {n}: refParent names the national task it serves")
            elif self.tasks.records.get(tenant, parent) is None:
                problems.append(f"item {n}: no national task {parent}")
            records.append(record)
        codes = [r["code"] for r in records]
        if len(set(codes)) != len(codes):
            problems.append("two items have the same code")
        if problems:
            raise BadRequestData("The plan is not accepted: " + "; ".join(problems))
        title = body.get("title") or f"Kế hoạch hành động {period} — {unit_name(unit)}"
        if not isinstance(title, str) or len(title) > 500:
            raise BadRequestData("title is a text of at most 500 characters")

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            version = (old or {}).get("version", 0) + 1
            return {"unit": unit, "unitName": unit_name(unit), "period": period,
                    "title": title, "version": version, "tasks": codes,
                    "submittedAt": now_iso(), "submittedBy": by,
                    # Every item some version had and this one has not.
                    "dropped": sorted({*(old or {}).get("tasks", []),
                                       *(old or {}).get("dropped", [])} - set(codes))}

        plan = self.records.save(tenant, plan_id(unit, period), change)
        self.tasks.put_many(tenant, records, on, keep_progress=True)
        for code in plan["dropped"]:
            existing = self.tasks.records.get(tenant, task_id(code))
            if existing is not None and existing.get("status") != "cancelled":
                self.tasks.put(tenant, {**_task_fields(existing), "status": "cancelled"}, on)
        return plan


def _task_fields(task: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task.items()
            if k not in ("id", "type", "flag", "flaggedAt", "evidence")}
