"""The programme's tasks, each a ``ProgrammeTask`` entity with the Prime Minister's "6 rõ"
(clear person, task, time, responsibility, authority and product), its lead and
coordinating agencies, time frame, funding, status, progress and evidence; a task made by
a province's action plan or scheme is a child of the national task it serves
(``refParent``).

A task is flagged (``flag``) as it stands on a day, in Asia/Ho_Chi_Minh:

- ``done`` or ``cancelled`` by its status;
- ``overdue`` once its deadline has passed;
- ``atRisk`` when its progress trails the time elapsed between its start and its
  deadline by more than ``AT_RISK_MARGIN`` points, or when it is due within
  ``DUE_SOON_DAYS`` days and less than ``DUE_SOON_PROGRESS`` % done;
- ``onTrack`` otherwise.

``check`` writes the flags that changed, and only those, so that a subscription watching
``flag`` is notified once per change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.kpi.compute import TZ
from dothi.ngsild.timeutil import now_iso
from dothi.program.fields import bilingual, parse_date, text
from dothi.program.records import Change, Records

TASK = "ProgrammeTask"
DECISION_950 = Path(__file__).with_name("decision-950.yaml")
STATUSES = ("notStarted", "inProgress", "done", "cancelled")
FLAGS = ("overdue", "atRisk", "onTrack", "done", "cancelled", "unclear")
AT_RISK_MARGIN = 25.0
DUE_SOON_DAYS = 30
DUE_SOON_PROGRESS = 75.0
NATIONAL = "national"
# The six "rõ", by the field that holds each.
SIX_CLEAR = {"responsiblePerson": {"vi": "rõ người", "en": "clear person"},
             "description": {"vi": "rõ việc", "en": "clear task"},
             "deadline": {"vi": "rõ thời gian", "en": "clear time"},
             "responsibility": {"vi": "rõ trách nhiệm", "en": "clear responsibility"},
             "authority": {"vi": "rõ thẩm quyền", "en": "clear authority"},
             "expectedProduct": {"vi": "rõ sản phẩm", "en": "clear product"}}
TEXTS = ("description", "responsiblePerson", "responsibility", "authority",
         "expectedProduct", "leadAgency", "fundingSource")
FIELDS = {"code", "name", "group", "groupName", "unit", "coordinatingAgencies", "startDate",
          "deadline", "status", "progress", "refParent", "refActionPlan", *TEXTS}
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
UNIT = re.compile(r"[A-Za-z0-9_-]{1,32}")


def task_id(code: str) -> str:
    return f"urn:ngsi-ld:{TASK}:{code}"


def today() -> date:
    return datetime.now(TZ).date()


def check_unit(unit: Any) -> str:
    if not isinstance(unit, str) or not UNIT.fullmatch(unit):
        raise BadRequestData("unit names a reporting unit (a province's code such as 48, "
                             "a ministry's short name, or national): letters, digits, - "
                             "and _")
    return unit


def check_task(body: dict[str, Any], unit: str | None = None) -> dict[str, Any]:
    """A task as given (a new one, or one replacing what the same code holds), checked:
    every one of the six "rõ" present, dates in order, progress 0-100. Raises
    BadRequestData saying what is wrong; returns the record to keep."""
    unknown = set(body) - FIELDS
    if unknown:
        raise BadRequestData(f"Unknown task fields: {', '.join(sorted(unknown))}; a task "
                             f"has {', '.join(sorted(FIELDS))}")
    code = body.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise BadRequestData("code is 1 to 80 letters, digits, '.', '-' and '_'")
    missing = [f"{name} ({clear['vi']}, {clear['en']})" for name, clear in SIX_CLEAR.items()
               if not body.get(name)]
    if missing:
        raise BadRequestData(f"Task {code} is not clear on: {'; '.join(missing)}. "
                             "A task states its person, task, time, responsibility, "
                             "authority and product (6 rõ).")
    record: dict[str, Any] = {"code": code, "name": bilingual(body.get("name"), "name"),
                              "unit": check_unit(unit or body.get("unit") or NATIONAL)}
    for name in TEXTS:
        if name in body or name == "leadAgency":  # only fundingSource may be left out
            record[name] = text(body.get(name), name)
    agencies = body.get("coordinatingAgencies", [])
    if not isinstance(agencies, list) or not all(isinstance(a, str) and a.strip()
                                                 for a in agencies):
        raise BadRequestData("coordinatingAgencies is a list of agencies' names")
    record["coordinatingAgencies"] = [a.strip() for a in agencies]
    deadline = parse_date(body["deadline"], "deadline")
    record["deadline"] = deadline.isoformat()
    if body.get("startDate") is not None:
        start = parse_date(body["startDate"], "startDate")
        if start > deadline:
            raise BadRequestData(f"Task {code} starts ({start}) after its deadline "
                                 f"({deadline})")
        record["startDate"] = start.isoformat()
    status = body.get("status", "notStarted")
    if status not in STATUSES:
        raise BadRequestData(f"status is one of {', '.join(STATUSES)}")
    record["status"] = status
    record["progress"] = _progress(body.get("progress", 100 if status == "done" else 0))
    for name in ("group", "groupName", "refParent", "refActionPlan"):
        if body.get(name) is not None:
            record[name] = body[name]
    if "refParent" in record and (not isinstance(record["refParent"], str)
                                  or not record["refParent"].startswith(f"urn:ngsi-ld:{TASK}:")):
        raise BadRequestData(f"refParent is the id of the {TASK} this task serves")
    return record


def _progress(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= 100:
        raise BadRequestData("progress is a number from 0 to 100 (per cent done)")
    return float(value)


def flag(task: dict[str, Any], on: date) -> str:
    """The task's flag on the day ``on`` (see the module's description)."""
    if task.get("status") in ("done", "cancelled"):
        return str(task["status"])
    try:
        deadline = date.fromisoformat(task["deadline"])
    except (KeyError, TypeError, ValueError):  # written past the API, with no clear time
        return "unclear"
    if on > deadline:
        return "overdue"
    progress = float(task.get("progress") or 0)
    if (deadline - on).days <= DUE_SOON_DAYS and progress < DUE_SOON_PROGRESS:
        return "atRisk"
    start = date.fromisoformat(task["startDate"]) if task.get("startDate") else None
    if start is not None and start < deadline and on > start:
        elapsed = 100.0 * (on - start).days / (deadline - start).days
        if progress < elapsed - AT_RISK_MARGIN:
            return "atRisk"
    return "onTrack"


@dataclass
class Checked:
    tasks: int
    changed: dict[str, str]  # task id -> its new flag


class Tasks:
    def __init__(self, broker: Broker) -> None:
        self.records = Records(broker, TASK)

    def get(self, tenant: str, code: str) -> dict[str, Any]:
        found = self.records.get(tenant, task_id(code))
        if found is None:
            raise ResourceNotFound(f"No task {code}")
        return found

    def find(self, tenant: str, unit: str | None = None,
             parent: str | None = None) -> list[dict[str, Any]]:
        q = []
        if unit is not None:
            q.append(f'unit=="{check_unit(unit)}"')
        if parent is not None:
            q.append(f'refParent=="{task_id(parent)}"')
        found = self.records.find(tenant, ";".join(q) or None)
        return sorted(found, key=lambda t: _natural(t["code"]))

    def put(self, tenant: str, record: dict[str, Any], on: date | None = None,
            keep_progress: bool = False) -> dict[str, Any]:
        """Create the task, or replace what it states; with ``keep_progress`` a task that
        exists keeps its status, progress and evidence (a plan submitted again)."""
        return self.records.save(tenant, task_id(record["code"]),
                                 self._restating(record, on or today(), keep_progress))

    def put_many(self, tenant: str, records: list[dict[str, Any]], on: date | None = None,
                 keep_progress: bool = False) -> None:
        """``put`` of many tasks, a few hundred to a transaction."""
        errors = self.records.save_many(tenant, {
            task_id(r["code"]): self._restating(r, on or today(), keep_progress)
            for r in records})
        if errors:
            raise errors[0]

    @staticmethod
    def _restating(record: dict[str, Any], day: date, keep_progress: bool) -> Change:
        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            new = dict(record)
            if old is not None:
                if keep_progress:
                    new.update({k: old[k] for k in ("status", "progress") if k in old})
                if "evidence" in old:
                    new["evidence"] = old["evidence"]
            new["flag"] = flag(new, day)
            return new

        return change

    def progress(self, tenant: str, code: str, body: dict[str, Any], by: str,
                 on: date | None = None) -> dict[str, Any]:
        """The owner reports progress: a new progress, status and evidence link."""
        updates: dict[str, Any] = {}
        if "progress" in body:
            updates["progress"] = _progress(body["progress"])
        if "status" in body:
            if body["status"] not in STATUSES:
                raise BadRequestData(f"status is one of {', '.join(STATUSES)}")
            updates["status"] = body["status"]
        evidence = body.get("evidence")
        if evidence is not None and (not isinstance(evidence, str) or not evidence.startswith(
                ("https://", "http://"))):
            raise BadRequestData("evidence is an http(s) link to what shows the progress")
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 2000):
            raise BadRequestData("note is a text of at most 2,000 characters")
        if not updates and evidence is None:
            raise BadRequestData("give progress, status or evidence")
        if updates.get("status") == "done" and not evidence:
            raise BadRequestData("a task is done with evidence: a link to its product")

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise ResourceNotFound(f"No task {code}")
            new = {**old, **updates}
            if new.get("status") == "done":
                new["progress"] = 100.0
            if evidence is not None:
                new["evidence"] = [*(old.get("evidence") or []), {
                    "url": evidence, "note": note, "by": by, "at": now_iso()}]
            new["flag"] = flag(new, on or today())
            return new

        return self.records.save(tenant, task_id(code), change)

    def check(self, tenant: str, on: date | None = None) -> Checked:
        """Flag every task as it stands on the day; only changed flags are written."""
        day = on or today()
        tasks = self.records.find(tenant)
        flags = {t["id"]: (t.get("flag"), flag(t, day)) for t in tasks}
        changed = {tid: new for tid, (was, new) in flags.items() if was != new}

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:  # deleted since it was read
                raise ResourceNotFound("The task is gone")
            # Flagged as it is inside the write's transaction, not as it was read: another
            # process's check may have flagged it meanwhile, and then nothing changes.
            new = flag(old, day)
            return old if old.get("flag") == new else {**old, "flag": new,
                                                        "flaggedAt": now_iso()}

        self.records.save_many(tenant, dict.fromkeys(changed, change))
        return Checked(len(tasks), changed)

    def load(self, tenant: str, path: Path = DECISION_950,
             on: date | None = None) -> list[dict[str, Any]]:
        """The tasks of a file in the Decision 950 appendix's structure, all checked
        before any is written; a task already loaded keeps its progress."""
        records = read_tasks(path)
        self.put_many(tenant, records, on, keep_progress=True)
        return [self.get(tenant, r["code"]) for r in records]


def read_tasks(path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadRequestData(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise BadRequestData(f"{path}: a list of groups, each with its tasks")
    records, seen = [], set()
    for group in data["groups"]:
        for task in group.get("tasks") or []:
            try:
                record = check_task({**task, "group": str(group["code"]),
                                     "groupName": bilingual(group["name"], "groupName")})
            except (BadRequestData, KeyError, TypeError) as exc:
                detail = getattr(exc, "detail", repr(exc))
                raise BadRequestData(f"{path}, group {group.get('code')}: {detail}") from None
            if record["code"] in seen:
                raise BadRequestData(f"{path}: task {record['code']} is listed twice")
            seen.add(record["code"])
            records.append(record)
    return records


def _natural(code: str) -> list[Any]:
    """DT950-1.10 after DT950-1.9."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", code)]
