"""Provincial smart-city schemes (đề án) and plans (kế hoạch), Decree 269/2025/NĐ-CP
Articles 5-7 and 42, each a ``SmartCityScheme`` entity that goes

    draft -> consultation -> council -> approved -> published

A draft's content changes only in draft, and each change is a new version; public
consultation and the provincial coordination council's opinions may send it back to draft
(``revise``, a new version, the earlier comments and opinions kept in the log). Approval
waits for the council (its deadline, or every expected member's opinion) and must say why
it overrules a member who disagrees. Publication turns the scheme's tasks into
``ProgrammeTask`` entities, each a child of the national task it serves; a published
scheme is reviewed periodically. Days are counted in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, Conflict, ResourceNotFound, only_members
from dothi.ngsild.timeutil import now_iso
from dothi.program import scheme_checks as check
from dothi.program.fields import parse_date
from dothi.program.records import Records
from dothi.program.tasks import flag, today

SCHEME = "SmartCityScheme"
TASK = "ProgrammeTask"
STATUSES = ("draft", "consultation", "council", "approved", "published")
Record = dict[str, Any]


def scheme_id(unit: str, key: str) -> str:
    return f"urn:ngsi-ld:{SCHEME}:{unit}:{key}"


def task_id(unit: str, key: str, code: str) -> str:
    return f"urn:ngsi-ld:{TASK}:{unit}-{key}-{code}"


def _need(record: Record, *statuses: str, doing: str) -> None:
    if record["status"] not in statuses:
        raise Conflict(f"Scheme {record['unit']}/{record['key']} is {record['status']}; "
                       f"to {doing} it must be {' or '.join(statuses)}")


def _log(record: Record, action: str, by: str, **extra: Any) -> None:
    record["log"] = [*(record.get("log") or []), {
        "version": record["version"], "action": action, "by": by, "at": now_iso(), **extra}]


def _one_year_after(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year + 1, day=28)


def _created(task: Record) -> Callable[[Record | None], Record]:
    """The change that creates a task, and leaves one that exists as it is."""
    return lambda old: task if old is None else old


def overdue(record: Record, on: date) -> list[dict[str, Any]]:
    """What of the scheme is overdue on the day ``on``, and why, in both languages."""
    status, found = record["status"], []
    consultation, council = record.get("consultation") or {}, record.get("council") or {}
    if status == "consultation" and on > date.fromisoformat(consultation["closes"]):
        found.append({"reason": "consultationClosed", "since": consultation["closes"],
                      "text": {"vi": "Đã hết hạn lấy ý kiến nhân dân; cần chuyển Hội đồng "
                                     "điều phối hoặc chỉnh sửa dự thảo",
                               "en": "Public consultation has closed; move the draft to the "
                                     "coordination council or revise it"}})
    if status == "council" and on > date.fromisoformat(council["deadline"]):
        found.append({"reason": "councilDeadlinePassed", "since": council["deadline"],
                      "text": {"vi": "Đã hết hạn xin ý kiến Hội đồng điều phối; cần trình "
                                     "phê duyệt hoặc chỉnh sửa dự thảo",
                               "en": "The coordination council's deadline has passed; put "
                                     "the draft up for approval or revise it"}})
    review = record.get("nextReview")
    if status == "published" and review and on > date.fromisoformat(review):
        found.append({"reason": "reviewOverdue", "since": review,
                      "text": {"vi": "Đã đến hạn rà soát định kỳ",
                               "en": "The periodic review is overdue"}})
    return found


class Schemes:
    """The schemes and plans of every unit in a broker; ``on`` (a day) stands for today."""

    def __init__(self, broker: Broker) -> None:
        self.records = Records(broker, SCHEME)
        self.tasks = Records(broker, TASK)

    # -- reading ---------------------------------------------------------------------

    def get(self, tenant: str, unit: str, key: str) -> Record:
        check.unit_key(unit, key)
        found = self.records.get(tenant, scheme_id(unit, key))
        if found is None:
            raise ResourceNotFound(f"No scheme {unit}/{key}")
        return found

    def find(self, tenant: str, unit: str | None = None,
             status: str | None = None) -> list[Record]:
        q = []
        if unit is not None:
            q.append(f'unit=="{check.unit(unit)}"')
        if status is not None:
            if status not in STATUSES:
                raise BadRequestData(f"status is one of {', '.join(STATUSES)}")
            q.append(f'status=="{status}"')
        found = self.records.find(tenant, ";".join(q) or None)
        return sorted(found, key=lambda r: (r["unit"], r["key"]))

    def due(self, tenant: str, unit: str | None = None, status: str | None = None,
            on: date | None = None) -> list[Record]:
        """The schemes with something overdue, each with ``due``: what and since when."""
        day = on or today()
        listed = [{**r, "due": overdue(r, day)} for r in self.find(tenant, unit, status)]
        return [r for r in listed if r["due"]]

    # -- the draft ---------------------------------------------------------------------

    def put(self, tenant: str, unit: str, key: str, body: dict[str, Any],
            by: str) -> tuple[Record, bool]:
        """Create the draft or replace its content: (the scheme, whether it is new). A
        change is a new version; the same content again changes nothing."""
        check.unit_key(unit, key)
        new = check.content(body)
        created: list[bool] = []

        def change(old: Record | None) -> Record:
            if old is None:
                created.append(True)
                record = {"unit": unit, "key": key, "status": "draft", "version": 1, **new}
                _log(record, "drafted", by)
                return record
            _need(old, "draft", doing="change its content")
            if all(old.get(name) == new.get(name) for name in check.CONTENT):
                return old
            record = {k: v for k, v in old.items() if k not in check.CONTENT}
            record.update(new, version=int(old["version"]) + 1)
            _log(record, "drafted", by)
            return record

        return self.records.save(tenant, scheme_id(unit, key), change), bool(created)

    def _step(self, tenant: str, unit: str, key: str,
              step: Callable[[Record], Record]) -> Record:
        """One change of an existing scheme, in one transaction; ``step`` raises to
        refuse."""
        check.unit_key(unit, key)

        def change(old: Record | None) -> Record:
            if old is None:
                raise ResourceNotFound(f"No scheme {unit}/{key}")
            return step(old)

        return self.records.save(tenant, scheme_id(unit, key), change)

    # -- public consultation -----------------------------------------------------------

    def consult(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                on: date | None = None) -> Record:
        only_members(body, {"closes"})
        day = on or today()
        closes = check.later(body.get("closes"), "closes", day)

        def step(record: Record) -> Record:
            _need(record, "draft", doing="open it for public consultation")
            record.update(status="consultation", consultation={
                "opens": day.isoformat(), "closes": closes.isoformat(), "comments": []})
            _log(record, "consultationOpened", by)
            return record

        return self._step(tenant, unit, key, step)

    def comment(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                on: date | None = None) -> Record:
        """A comment of the public: kept with no more of who wrote it than ``by``."""
        only_members(body, {"text"})
        entry = {"by": by, "at": now_iso(), "text": check.text(body.get("text"), "text", 5000)}
        day = on or today()

        def step(record: Record) -> Record:
            _need(record, "consultation", doing="comment on it")
            consultation = record["consultation"]
            if day > date.fromisoformat(consultation["closes"]):
                raise Conflict(f"The consultation closed on {consultation['closes']}")
            record["consultation"] = {**consultation, "comments": [
                *(consultation.get("comments") or []), entry]}
            return record

        self._step(tenant, unit, key, step)
        return entry

    # -- the provincial coordination council ---------------------------------------------

    def to_council(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                   on: date | None = None) -> Record:
        """Ask the council for its opinions, once the consultation has closed (or closing
        it today, with ``closeNow``)."""
        only_members(body, {"deadline", "members", "closeNow"})
        day = on or today()
        deadline = check.later(body.get("deadline"), "deadline", day)
        members = check.members(body.get("members"))
        close_now = body.get("closeNow", False)
        if not isinstance(close_now, bool):
            raise BadRequestData("closeNow is true or false")

        def step(record: Record) -> Record:
            _need(record, "consultation", doing="send it to the coordination council")
            consultation = dict(record["consultation"])
            if day <= date.fromisoformat(consultation["closes"]):
                if not close_now:
                    raise Conflict(f"The consultation is open until {consultation['closes']}; "
                                   "wait for it to close, or give closeNow: true")
                consultation.update(closes=day.isoformat(), closedEarly=True)
            council: Record = {"deadline": deadline.isoformat(), "opinions": []}
            if members:
                council["members"] = members
            record.update(status="council", consultation=consultation, council=council)
            _log(record, "sentToCouncil", by)
            return record

        return self._step(tenant, unit, key, step)

    def opinion(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                on: date | None = None) -> Record:
        """A council member's opinion, as the council's secretariat records it; one given
        after the deadline is kept, marked late."""
        entry = check.opinion(body)
        day = on or today()
        kept: list[Record] = []

        def step(record: Record) -> Record:
            _need(record, "council", doing="record a council member's opinion")
            council = record["council"]
            late = day > date.fromisoformat(council["deadline"])
            given = {**entry, "by": by, "at": now_iso(), **({"late": True} if late else {})}
            kept.append(given)
            record["council"] = {**council, "opinions": [*(council.get("opinions") or []),
                                                         given]}
            return record

        self._step(tenant, unit, key, step)
        return kept[-1]

    def revise(self, tenant: str, unit: str, key: str, body: dict[str, Any],
               by: str) -> Record:
        """Back to draft, as a new version: the comments and opinions the version had
        move to the log, with the reason."""
        only_members(body, {"reason"})
        reason = check.text(body["reason"], "reason", 5000) if "reason" in body else None

        def step(record: Record) -> Record:
            _need(record, "consultation", "council", doing="revise it")
            earlier = {name: record.pop(name) for name in ("consultation", "council")
                       if name in record}
            _log(record, "revised", by, **earlier, **({"reason": reason} if reason else {}))
            record.update(status="draft", version=int(record["version"]) + 1)
            return record

        return self._step(tenant, unit, key, step)

    # -- approval, publication, review -------------------------------------------------

    def approve(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                on: date | None = None) -> Record:
        only_members(body, {"decisionNumber", "date", "overrule"})
        day = on or today()
        number = check.document_number(body.get("decisionNumber"))
        signed = parse_date(body.get("date"), "date")
        if signed > day:
            raise BadRequestData(f"date is the day the decision was signed, not after today "
                                 f"({day})")
        overrule = check.text(body["overrule"], "overrule", 5000) \
            if body.get("overrule") is not None else None

        def step(record: Record) -> Record:
            _need(record, "council", doing="approve it")
            council = record["council"]
            deadline = date.fromisoformat(council["deadline"])
            opinions = council.get("opinions") or []
            answered = {o["member"] for o in opinions} | {o["agency"] for o in opinions}
            members = council.get("members") or []
            waiting = [m for m in members if m not in answered]
            if day <= deadline and (waiting or not members):
                who = f"; still to answer: {', '.join(waiting)}" if waiting else ""
                raise Conflict(f"The coordination council has until {deadline} to give its "
                               f"opinions{who}")
            # A member's latest opinion is its position: one may withdraw a disagreement.
            latest = {o["member"]: o for o in opinions}
            against = sorted(m for m, o in latest.items() if o["position"] == "disagree")
            if against and overrule is None:
                raise Conflict(f"{', '.join(against)} disagreed: the approval must give its "
                               "reason to overrule them (overrule)")
            approval: Record = {"decisionNumber": number, "date": signed.isoformat(),
                                "by": by, "at": now_iso()}
            if against:
                approval.update(overrule=overrule, overruled=against)
            record.update(status="approved", approval=approval)
            _log(record, "approved", by)
            return record

        return self._step(tenant, unit, key, step)

    def publish(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
                on: date | None = None) -> Record:
        """Publish the approved scheme and create its tasks.

        The tasks are written before the scheme, each in its own transaction, and a task
        already made by this scheme is left as it is: a publication cut short (the store
        gone) is simply asked again and completes, whereas a scheme marked published
        first would refuse the retry and keep its tasks missing."""
        only_members(body, {"url", "nextReview"})
        day = on or today()
        url = check.link(body.get("url"), "url")
        review = check.later(body["nextReview"], "nextReview", day) \
            if body.get("nextReview") is not None else _one_year_after(day)
        record = self.get(tenant, unit, key)
        _need(record, "approved", doing="publish it")
        sid = scheme_id(unit, key)
        tasks = {task_id(unit, key, t["code"]): self._task(unit, key, t, day)
                 for t in record.get("tasks") or []}
        for tid in tasks:
            held = self.tasks.get(tenant, tid)
            if held is not None and held.get("refScheme") != sid:
                raise Conflict(f"{tid} exists and is not this scheme's task")
        for tid, task in tasks.items():
            self.tasks.save(tenant, tid, _created(task))

        def step(current: Record) -> Record:
            _need(current, "approved", doing="publish it")
            current.update(status="published", taskIds=list(tasks),
                           publication={"url": url, "at": now_iso(), "by": by},
                           nextReview=review.isoformat())
            _log(current, "published", by)
            return current

        return self._step(tenant, unit, key, step)

    @staticmethod
    def _task(unit: str, key: str, task: Record, day: date) -> Record:
        """A scheme's task as a ProgrammeTask: the same names as the national tasks, its
        code the one its id ends with, flagged as of the day."""
        out = {"code": f"{unit}-{key}-{task['code']}", "name": task["name"],
               "description": task["name"]["vi"], "unit": unit,
               "leadAgency": task["leadAgency"], "deadline": task["deadline"],
               "expectedProduct": task["expectedProduct"], "status": "notStarted",
               "progress": 0, "refParent": task["refNational"],
               "refScheme": scheme_id(unit, key)}
        out.update({name: task[name] for name in check.TASK_OPTIONAL if name in task})
        out["flag"] = flag(out, day)
        return out

    def review(self, tenant: str, unit: str, key: str, body: dict[str, Any], by: str,
               on: date | None = None) -> Record:
        """A periodic review of a published scheme: what it found, and the next one."""
        only_members(body, {"findings", "nextReview"})
        day = on or today()
        entry = {"at": now_iso(), "by": by,
                 "findings": check.text(body.get("findings"), "findings", 5000),
                 "nextReview": check.later(body.get("nextReview"), "nextReview",
                                           day).isoformat()}

        def step(record: Record) -> Record:
            _need(record, "published", doing="review it")
            record.update(reviews=[*(record.get("reviews") or []), entry],
                          nextReview=entry["nextReview"])
            _log(record, "reviewed", by)
            return record

        self._step(tenant, unit, key, step)
        return entry
