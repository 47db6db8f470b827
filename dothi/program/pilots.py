"""Choosing wards and communes for smart-city pilots (Decision 950, Decree 269/2025): a
call for pilots (``PilotSelection``) names its criteria (indicator values and readiness)
and its budget; its candidates are ranked on the indicator values stored for them, the
budget is laid over the ranking, and the decision is recorded with the ranking it was
taken on, frozen, so that the record shows what the decision saw even after the values
change."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, Conflict, ResourceNotFound, only_members
from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import KPI, period_bounds
from dothi.ngsild.qlang import parse_q, quote
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.program.fields import optional_text, text
from dothi.program.records import Records
from dothi.program.units import wards
from dothi.store.base import EntityQuery, Selector, query_all

ETYPE = "PilotSelection"
# Every reading of an open call's ranking queries its candidates' values: bounded, so
# that one call cannot make each reading expensive.
MAX_CANDIDATES = 300
MAX_CRITERIA = 50
DIGITS = 6  # scores equal to this many decimals share a rank
KEY_VALUES = RenderOptions(fmt="keyValues")

METHOD = {
    "vi": "Mỗi tiêu chí được chuẩn hoá min–max giữa các ứng viên (0 là kém nhất, 1 là tốt "
          "nhất; tiêu chí \"càng thấp càng tốt\" thì đảo chiều; nếu mọi ứng viên bằng nhau "
          "thì đều được 1). Ứng viên thiếu số liệu của một tiêu chí được 0 ở tiêu chí đó và "
          "được ghi rõ thiếu gì. Điểm là trung bình có trọng số của các tiêu chí và mức sẵn "
          "sàng (mức sẵn sàng/100, theo trọng số sẵn sàng). Điểm bằng nhau (đến 6 chữ số "
          "thập phân) thì đồng hạng; trong cùng hạng, ứng viên chi phí thấp hơn xếp trước. "
          "Sau đó xét ngân sách theo thứ tự xếp hạng: ứng viên được cấp kinh phí nếu tổng "
          "chi phí cộng dồn vẫn trong ngân sách; nếu không thì ghi là vượt ngân sách, bỏ qua "
          "và tiếp tục xét các ứng viên sau (có thể chi phí thấp hơn).",
    "en": "Each criterion is normalised min–max across the candidates (0 the worst, 1 the "
          "best; reversed where lower is better; if all candidates are equal, each gets 1). "
          "A candidate without a value for a criterion gets 0 on it and is listed with what "
          "it lacks. The score is the weighted mean of the criteria and readiness "
          "(readiness/100, with the readiness weight). Equal scores (to 6 decimals) share a "
          "rank; within a rank the cheaper candidate comes first. Then the budget, in "
          "ranking order: a candidate is funded if the running total of costs stays within "
          "the budget; otherwise it is marked over budget and skipped, and the next "
          "(possibly cheaper) candidates are still considered.",
}


def selection_id(key: str) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key):
        raise BadRequestData("A call's key is 1 to 64 letters, digits, - and _")
    return f"urn:ngsi-ld:{ETYPE}:{key}"


# -- checking what people send ----------------------------------------------------------


def _number(value: Any, what: str, *, low: float = 0.0, high: float | None = None,
            above: bool = False) -> float | int:
    # bool is an int to Python, and true is no weight.
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or value < low or (above and value == low) or \
            (high is not None and value > high):
        bound = f"> {low:g}" if above else f"≥ {low:g}"
        raise BadRequestData(f"{what} must be a number {bound}" +
                             (f" and ≤ {high:g}" if high is not None else ""))
    return value


def _list(value: Any, what: str, least: int, most: int) -> list[Any]:
    if not isinstance(value, list) or not least <= len(value) <= most:
        raise BadRequestData(f"{what} must be a list of {least} to {most} items")
    return value


def _object(value: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData(f"{what} must be an object")
    only_members(value, allowed, f" in {what}")
    return value


def check_call(body: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """The call's record from a request's body, every member checked."""
    only_members(body, {"title", "period", "budget", "criteria", "readinessWeight",
                        "candidates"})
    title = _object(body.get("title"), "title", {"vi", "en"})
    period = body.get("period")
    if not isinstance(period, str):  # 2026 as a number would miss the stored "2026"
        raise BadRequestData("period must be a text, as the indicators' values carry it")
    try:
        period_bounds(period)
    except ValueError as exc:
        raise BadRequestData(str(exc)) from None
    criteria = []
    for n, item in enumerate(_list(body.get("criteria"), "criteria", 1, MAX_CRITERIA)):
        where = f"criteria[{n}]"
        item = _object(item, where, {"kpi", "weight", "direction"})
        # A list is no key of a dict: checked as a text first, not a server error.
        if not isinstance(item.get("kpi"), str) or item["kpi"] not in catalogue.indicators:
            raise BadRequestData(f"{where}.kpi: no indicator {item.get('kpi')!r} in the "
                                 "catalogues (U4SSC, ISO 37120)")
        if item.get("direction") not in ("higher", "lower"):
            raise BadRequestData(f"{where}.direction must be higher or lower (which is "
                                 "better)")
        criteria.append({"kpi": item["kpi"], "direction": item["direction"],
                         "weight": _number(item.get("weight"), f"{where}.weight")})
    if len({c["kpi"] for c in criteria}) < len(criteria):
        raise BadRequestData("criteria name an indicator twice")
    readiness_weight = _number(body.get("readinessWeight"), "readinessWeight")
    if sum(c["weight"] for c in criteria) + readiness_weight <= 0:
        raise BadRequestData("the weights (criteria and readinessWeight) add up to 0")
    known = wards()
    candidates = []
    for n, item in enumerate(_list(body.get("candidates"), "candidates", 2, MAX_CANDIDATES)):
        where = f"candidates[{n}]"
        item = _object(item, where, {"area", "readiness", "cost", "note"})
        area = item.get("area")
        if not isinstance(area, str) or area not in known:
            raise BadRequestData(f"{where}.area: {area!r} is not the code of a ward or "
                                 "commune (after the 2025 reform, e.g. 20194)")
        candidate = {"area": area, **known[area],
                     "readiness": _number(item.get("readiness"), f"{where}.readiness",
                                          high=100),
                     "cost": _number(item.get("cost"), f"{where}.cost", above=True)}
        note = optional_text(item.get("note"), f"{where}.note", 2000)
        candidates.append(candidate if note is None else {**candidate, "note": note})
    if len({c["area"] for c in candidates}) < len(candidates):
        raise BadRequestData("candidates name an area twice")
    return {"title": {"vi": text(title.get("vi"), "title.vi", 300),
                      "en": text(title.get("en"), "title.en", 300)},
            "period": period,
            "budget": _number(body.get("budget"), "budget", above=True),
            "criteria": criteria, "readinessWeight": readiness_weight,
            "candidates": candidates}


def check_decision(body: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    only_members(body, {"selected", "decisionNumber", "date", "note"})
    areas = {c["area"] for c in call["candidates"]}
    selected = _list(body.get("selected"), "selected", 1, len(areas))
    for area in selected:
        if not isinstance(area, str) or area not in areas:
            raise BadRequestData(f"selected: {area!r} is not a candidate of this call")
    if len(set(selected)) < len(selected):
        raise BadRequestData("selected names an area twice")
    day = body.get("date")
    try:
        if not isinstance(day, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d", day):
            raise ValueError
        date.fromisoformat(day)
    except ValueError:
        raise BadRequestData("date must be the decision's date, YYYY-MM-DD") from None
    decision = {"selected": selected,
                "decisionNumber": text(body.get("decisionNumber"), "decisionNumber", 100),
                "date": day}
    note = optional_text(body.get("note"), "note", 4000)
    return decision if note is None else {**decision, "note": note}


# -- ranking ------------------------------------------------------------------------------


def rank(call: dict[str, Any], values: dict[str, dict[str, tuple[float, str]]]
         ) -> dict[str, Any]:
    """The candidates ranked (see METHOD); ``values`` are area -> indicator code ->
    (value, the entity it comes from)."""
    criteria, candidates = call["criteria"], call["candidates"]
    total = sum(c["weight"] for c in criteria) + call["readinessWeight"]
    parts: dict[str, list[dict[str, Any]]] = {c["area"]: [] for c in candidates}
    for criterion in criteria:
        found = {a: values.get(a, {}).get(criterion["kpi"]) for a in parts}
        present = [v[0] for v in found.values() if v is not None]
        low, high = (min(present), max(present)) if present else (0.0, 0.0)
        for area, got in found.items():
            part = {"kpi": criterion["kpi"], "direction": criterion["direction"],
                    "weight": criterion["weight"], "raw": None, "normalised": 0.0}
            if got is not None:
                span = (got[0] - low) / (high - low) if high > low else 1.0
                part.update(raw=got[0], entity=got[1], normalised=round(
                    1.0 - span if criterion["direction"] == "lower" and high > low
                    else span, DIGITS))
            parts[area].append(part)
    rows = []
    for c in candidates:
        # From the rounded normalised values shown, so that a reader can redo the sum.
        weighted = sum(p["weight"] * p["normalised"] for p in parts[c["area"]]) + \
            call["readinessWeight"] * c["readiness"] / 100
        rows.append({"area": c["area"], "name": c["name"], "province": c["province"],
                     "score": round(weighted / total, DIGITS), "readiness": c["readiness"],
                     "cost": c["cost"], "criteria": parts[c["area"]],
                     "missing": [p["kpi"] for p in parts[c["area"]] if p["raw"] is None]})
    rows.sort(key=lambda r: (-r["score"], r["cost"], r["area"]))
    scores = Counter(r["score"] for r in rows)
    committed: float | int = 0
    for n, row in enumerate(rows):
        # Competition ranking (1, 2, 2, 4): a tie takes the rank of its first.
        row["rank"] = rows[n - 1]["rank"] if n and rows[n - 1]["score"] == row["score"] \
            else n + 1
        row["tie"] = scores[row["score"]] > 1
        fits = committed + row["cost"] <= call["budget"]
        row["budgetStatus"] = "funded" if fits else "overBudget"
        committed += row["cost"] if fits else 0
    return {"method": METHOD, "computedAt": now_iso(), "period": call["period"],
            "budget": call["budget"], "committed": committed,
            "remaining": call["budget"] - committed, "candidates": rows}


# -- the calls in the store ---------------------------------------------------------------


class Pilots:
    def __init__(self, broker: Broker, catalogue: Catalogue) -> None:
        self.broker = broker
        self.catalogue = catalogue
        self.records = Records(broker, ETYPE)

    def calls(self, tenant: str) -> list[dict[str, Any]]:
        return sorted(({"id": r["id"], "key": r["id"].rsplit(":", 1)[1], "title": r["title"],
                        "period": r["period"], "status": r["status"]}
                       for r in self.records.find(tenant)), key=lambda r: r["id"])

    def get(self, tenant: str, key: str) -> dict[str, Any]:
        """The call with its ranking: computed now while it is open, the one the decision
        was taken on once it is decided."""
        call = self._call(tenant, key)
        view = {"key": key, **call}
        if call["status"] == "decided":
            decision = dict(call["decision"])
            view["ranking"] = {**decision.pop("ranking"), "frozen": True}
            view["decision"] = decision
        else:
            view["ranking"] = {**self.ranking(tenant, call), "frozen": False}
        return view

    def put(self, tenant: str, key: str, body: dict[str, Any], who: str
            ) -> tuple[dict[str, Any], bool]:
        """Open a call or replace an open one; (the call as ``get`` shows it, created)."""
        eid = selection_id(key)
        record = check_call(body, self.catalogue)
        created: list[bool] = []

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is not None and old.get("status") == "decided":
                raise Conflict(f"The call {key} is decided; open a new call instead")
            created.append(old is None)
            return {**record, "status": "open",
                    "revision": 1 if old is None else int(old.get("revision", 0)) + 1,
                    "createdBy": who if old is None else old.get("createdBy"),
                    "revisedBy": who, "revisedAt": now_iso()}

        self.records.save(tenant, eid, change)
        return self.get(tenant, key), created[-1]

    def decide(self, tenant: str, key: str, body: dict[str, Any], who: str
               ) -> dict[str, Any]:
        call = self._call(tenant, key)
        if call["status"] == "decided":
            raise Conflict(f"The call {key} is already decided "
                           f"({call['decision']['decisionNumber']})")
        decision = check_decision(body, call)
        ranking = self.ranking(tenant, call)
        funded = {r["area"] for r in ranking["candidates"] if r["budgetStatus"] == "funded"}
        outside = [a for a in decision["selected"] if a not in funded]
        if outside and "note" not in decision:
            raise BadRequestData(f"{', '.join(outside)} not funded by the ranking: a note "
                                 "must say why they are selected")
        cost = {c["area"]: c["cost"] for c in call["candidates"]}
        decision.update(outsideFunded=outside, decidedBy=who, decidedAt=now_iso(),
                        selectedCost=sum(cost[a] for a in decision["selected"]),
                        ranking=ranking)

        def change(old: dict[str, Any] | None) -> dict[str, Any]:
            # The ranking was computed outside the transaction: refuse if the call was
            # decided or replaced meanwhile, so that it is never frozen with another call.
            if old is None or old.get("status") == "decided" or \
                    old.get("revision") != call.get("revision"):
                raise Conflict(f"The call {key} changed while it was being decided; "
                               "read it again")
            return {**old, "status": "decided", "decision": decision}

        self.records.save(tenant, selection_id(key), change)
        return self.get(tenant, key)

    def ranking(self, tenant: str, call: dict[str, Any]) -> dict[str, Any]:
        return rank(call, self._values(tenant, call))

    def _call(self, tenant: str, key: str) -> dict[str, Any]:
        found = self.records.get(tenant, selection_id(key))
        if found is None or found.get("type") != ETYPE:
            raise ResourceNotFound(f"No call for pilots {key}")
        return found

    def _values(self, tenant: str, call: dict[str, Any]
                ) -> dict[str, dict[str, tuple[float, str]]]:
        """The candidates' indicator values of the call's period, from the
        KeyPerformanceIndicator entities whose city is the area's code."""
        ctx = self.broker.resolver.core
        codes = {c["kpi"] for c in call["criteria"]}
        areas = ",".join(quote(c["area"]) for c in call["candidates"])
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(KPI, ctx.expand))],
            q=parse_q(f"city=={areas};period=={quote(call['period'])}"),
            expand=ctx.expand, limit=1000))
        out: dict[str, dict[str, tuple[float, str]]] = {}
        # By id, the first wins: one value per area and indicator even if another route
        # stored a second entity for them, and the same one at every reading.
        for item in sorted((render_entity(d, ctx, KEY_VALUES) for d in docs),
                           key=lambda i: i["id"]):
            value = item.get("kpiValue")
            if item.get("kpiCode") in codes and not isinstance(value, bool) and \
                    isinstance(value, int | float) and math.isfinite(value):
                out.setdefault(item["city"], {}).setdefault(
                    item["kpiCode"], (float(value), item["id"]))
        return out
