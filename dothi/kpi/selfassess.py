"""A city's self-assessment against the maturity framework, as a workflow kept in the
store: the city's officials declare the criteria that no indicator decides, each with a
link to its evidence, and submit; an assessor accepts, or returns the assessment with
comments (and may reject criteria whose evidence does not hold); the city corrects and
submits again.

- The ``SmartCityAssessment`` entity of a city and period holds the current state:
  status (``draft``, ``submitted``, ``returned``, ``accepted``), the version, the city's
  answers, the assessor's rejections and comments, and the evaluation (each criterion
  passed or not and why, the level, a score per dimension and the composite score).
- Every change writes a new version, and a frozen copy of it as an
  ``SmartCityAssessmentVersion`` entity (``…:v<N>``), whatever the store's history
  setting: who did what, when, and the state it left.
- The indicator values are the city's ``KeyPerformanceIndicator`` entities of the period,
  read at each change; on submission they are frozen into the assessment, so what the
  assessor reviews does not move under them.
"""

from __future__ import annotations

import re
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, BadRequestData, Conflict, ResourceNotFound
from dothi.kpi.compute import KPI, period_bounds
from dothi.kpi.framework import Framework
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes, expand_entity, prop
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

ASSESSMENT = "SmartCityAssessment"
VERSION = "SmartCityAssessmentVersion"
KEY_VALUES = RenderOptions(fmt="keyValues")
EDITABLE = ("draft", "returned")
STATE = ("city", "period", "framework", "status", "version", "answers", "rejected",
         "comments", "values", "outcomes", "level", "levelName", "scores", "composite")


def assessment_id(city: str, period: str) -> str:
    return f"urn:ngsi-ld:{ASSESSMENT}:{city}:{re.sub(r'[^0-9A-Za-z-]+', '-', period)}"


def check_city_period(city: Any, period: Any) -> tuple[str, str]:
    if not isinstance(city, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", city):
        raise BadRequestData("city is a name of letters, digits, - and _")
    try:
        period_bounds(str(period))
    except ValueError as exc:
        raise BadRequestData(str(exc)) from None
    return city, str(period)


class SelfAssessment:
    def __init__(self, broker: Broker, framework: Framework) -> None:
        self.broker = broker
        self.framework = framework
        self.ctx = broker.resolver.core

    # -- reading ----------------------------------------------------------------------

    def get(self, tenant: str, city: str, period: str) -> dict[str, Any]:
        """The assessment as it stands; a draft evaluated on today's values if the city
        has not started one."""
        doc = self.broker.store.get(tenant, assessment_id(city, period))
        if doc is None:
            return self._state({"city": city, "period": period, "status": "draft",
                                "version": 0, "answers": {}, "rejected": {},
                                "comments": ""}, self.values(tenant, city, period))
        return self._render(doc)

    def values(self, tenant: str, city: str, period: str) -> dict[str, float]:
        """The city's indicator values of the period, by code."""
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(KPI, self.ctx.expand))],
            q=parse_q(f'city=="{city}";period=="{period}"'), expand=self.ctx.expand,
            limit=1000))
        out = {}
        for doc in docs:
            item = render_entity(doc, self.ctx, KEY_VALUES)
            if isinstance(item.get("kpiValue"), int | float):
                out[item["kpiCode"]] = float(item["kpiValue"])
        return out

    def versions(self, tenant: str, city: str, period: str) -> list[dict[str, Any]]:
        """Every version, oldest first."""
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(VERSION, self.ctx.expand))],
            q=parse_q(f'city=="{city}";period=="{period}"'), expand=self.ctx.expand,
            limit=1000))
        return sorted((self._render(d) for d in docs), key=lambda v: v["version"])

    def cities(self, tenant: str, period: str) -> list[dict[str, Any]]:
        """The assessments of every city of the instance for a period."""
        return self._assessments(tenant, f'period=="{period}"')

    def trend(self, tenant: str, city: str) -> list[dict[str, Any]]:
        """The city's assessments of every period, oldest first."""
        return sorted(self._assessments(tenant, f'city=="{city}"'), key=lambda a: a["period"])

    def _assessments(self, tenant: str, q: str) -> list[dict[str, Any]]:
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(ASSESSMENT, self.ctx.expand))],
            q=parse_q(q), expand=self.ctx.expand, limit=1000))
        return [self._render(d) for d in docs]

    # -- the workflow -----------------------------------------------------------------

    def answer(self, tenant: str, city: str, period: str, code: str, met: Any,
               evidence: Any, note: Any, actor: str) -> dict[str, Any]:
        """The city declares a criterion met (with its evidence) or not."""
        try:
            criterion = self.framework.criterion(code)
        except KeyError as exc:
            raise BadRequestData(str(exc.args[0])) from None
        if criterion.kpi is not None:
            raise BadRequestData(f"{code} is decided by indicator {criterion.kpi}'s value; "
                                 "enter it at POST /kpi/values or compute it")
        if not isinstance(met, bool):
            raise BadRequestData("met is true or false")
        if met and (not isinstance(evidence, str)
                    or not evidence.startswith(("https://", "http://"))):
            raise BadRequestData("a criterion met needs evidence: an http(s) link to the "
                                 "document that shows it")
        if note is not None and (not isinstance(note, str) or len(note) > 2000):
            raise BadRequestData("note is a text of at most 2,000 characters")

        def change(state: dict[str, Any]) -> None:
            if state["status"] not in EDITABLE:
                raise Conflict(f"The assessment is {state['status']}: it can be changed "
                               "only as a draft or once returned")
            state["answers"] = {**state["answers"], code: {
                "met": met, "evidence": evidence if met else None, "note": note,
                "by": actor, "at": now_iso()}}

        return self._write(tenant, city, period, "answer", actor, change)

    def submit(self, tenant: str, city: str, period: str, actor: str) -> dict[str, Any]:
        def change(state: dict[str, Any]) -> None:
            if state["status"] not in EDITABLE:
                raise Conflict(f"The assessment is {state['status']}: only a draft or a "
                               "returned assessment is submitted")
            state["status"] = "submitted"

        return self._write(tenant, city, period, "submit", actor, change)

    def review(self, tenant: str, city: str, period: str, decision: Any, comments: Any,
               rejected: Any, actor: str) -> dict[str, Any]:
        """The assessor accepts or returns a submitted assessment; ``rejected`` names
        the criteria whose evidence does not hold, each with the reason."""
        if decision not in ("accept", "return"):
            raise BadRequestData('decision is "accept" or "return"')
        if comments is not None and (not isinstance(comments, str) or len(comments) > 5000):
            raise BadRequestData("comments is a text of at most 5,000 characters")
        rejected = rejected or {}
        if not isinstance(rejected, dict) or not all(
                isinstance(v, str) and v.strip() for v in rejected.values()):
            raise BadRequestData("rejected maps criterion codes to the reason")
        for code in rejected:
            try:
                self.framework.criterion(code)
            except KeyError as exc:
                raise BadRequestData(str(exc.args[0])) from None
        if decision == "return" and not (comments or rejected):
            raise BadRequestData("an assessment is returned with comments saying what to "
                                 "correct")

        def change(state: dict[str, Any]) -> None:
            if state["status"] != "submitted":
                raise Conflict(f"The assessment is {state['status']}: only a submitted "
                               "assessment is reviewed")
            state["status"] = "accepted" if decision == "accept" else "returned"
            state["rejected"] = dict(rejected)
            state["comments"] = comments or ""

        return self._write(tenant, city, period, decision, actor, change)

    # -- state and storage ------------------------------------------------------------

    def _write(self, tenant: str, city: str, period: str, action: str, actor: str,
               change: Any) -> dict[str, Any]:
        eid = assessment_id(city, period)
        written: list[dict[str, Any]] = []
        values = self.values(tenant, city, period)

        def fn(old: dict | None) -> dict:
            state: dict[str, Any] = self._render(old) if old is not None else {
                "city": city, "period": period, "status": "draft", "version": 0,
                "answers": {}, "rejected": {}, "comments": "", "values": values}
            change(state)
            # What was submitted is reviewed on the values it was submitted with.
            frozen = state["status"] in ("submitted", "accepted") and action != "submit"
            state = self._state(state, state["values"] if frozen else values)
            state["version"] += 1
            written.append(state)
            stamp = now_iso()
            body = self._body(eid, ASSESSMENT, state)
            if old is None:
                return expand_entity(body, self.ctx, stamp)
            doc, _ = merge.append(old, expand_attributes(
                {k: v for k, v in body.items() if k not in ("id", "type")}, self.ctx, stamp),
                stamp, overwrite=True)
            return doc

        self.broker.apply_one(tenant, eid, fn)
        state = written[-1]
        record = self._body(f"{eid}:v{state['version']}", VERSION, state)
        record.update(action=prop(action), actor=prop(actor), at=prop(
            {"@type": "DateTime", "@value": now_iso()}),
            refAssessment={"type": "Relationship", "object": eid})
        try:
            self.broker.create(tenant, record, self.ctx)
        except AlreadyExists:  # two writers raced for one version number
            raise Conflict(f"version {state['version']} was written twice; read the "
                           "assessment again") from None
        return state

    def _state(self, state: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
        evaluation = self.framework.evaluate(values, state["answers"], state["rejected"])
        names = {lv.level: lv.name for lv in self.framework.levels}
        return {**state, "framework": self.framework.id, "values": values,
                "outcomes": evaluation.outcomes, "level": evaluation.level,
                "levelName": names.get(evaluation.level,
                                       {"vi": "Chưa đạt cấp độ 1", "en": "Below level 1"}),
                "scores": evaluation.scores, "composite": evaluation.composite}

    @staticmethod
    def _body(eid: str, etype: str, state: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"id": eid, "type": etype}
        for name in STATE:
            if name in state:
                body[name] = prop(state[name])
        return body

    def _render(self, doc: dict) -> dict[str, Any]:
        item = render_entity(doc, self.ctx, KEY_VALUES)
        missing = [name for name in ("city", "period", "status", "version") if name not in item]
        if missing:
            raise ResourceNotFound(f"{doc['id']} is not an assessment (no {missing})")
        state = {name: item.get(name) for name in STATE}
        state.update(answers=state["answers"] or {}, rejected=state["rejected"] or {},
                     values=state["values"] or {}, comments=state["comments"] or "")
        for extra in ("action", "actor", "at"):
            if extra in item:
                state[extra] = item[extra]
        return state
