"""The city's registers (``registers.yaml``): urban plans, development projects, smart
buildings, smart urban areas and controlled-testing zones. Each record is an NGSI-LD entity
(``urn:ngsi-ld:{type}:{identifier}``) whose history is its lifecycle, so the NGSI-LD and
temporal APIs, subscriptions and the open-data catalogue see it like any other.

- **Identifiers** (``identifiers.py``) are handed out by a counter entity per province,
  register and year, incremented in its own transaction: two servers registering at once
  get two numbers. A record that then fails to be written leaves a gap; a number is never
  given twice.
- **Lifecycle**: a record starts at its register's first status and moves only along the
  register's ``next`` lists; each move keeps who, when, why and the decision.
- **Documents**: title and link, appended.
- **Certification** (smart buildings and areas): an application with evidence, an
  assessor's scores against ``certification.yaml``'s criteria, and the result, published
  on the record with its validity.
- **Sandboxes** have a time window; ``check_windows`` flags those ending within
  ``EXPIRY_NOTICE`` (``expiry`` = "expiring") and those past their end ("expired"), so a
  subscription on ``expiry`` tells whoever must act."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes, expand_entity, first_value, prop
from dothi.ngsild.geo import geometry_bbox, validate_geometry
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.temporal import parse_duration_ms
from dothi.ngsild.timeutil import format_iso, now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.registry.identifiers import Identifier, parse
from dothi.store.base import DEFAULT_TENANT, UNCHANGED, EntityQuery, Selector, query_all
from dothi.text import bilingual, fold

REGISTERS = Path(__file__).with_name("registers.yaml")
CERTIFICATION = Path(__file__).with_name("certification.yaml")
COUNTER = "RegistryCounter"
KINDS = {"text", "number", "date", "url", "list", "choice", "ref"}
MAX_TEXT = 2000
EXPIRY_NOTICE = timedelta(days=30)
KEY_VALUES = RenderOptions(fmt="keyValues")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    required: bool
    title: dict[str, str]
    values: tuple[str, ...] = ()
    register: str | None = None


@dataclass(frozen=True)
class Register:
    key: str
    type: str
    code: str
    title: dict[str, str]
    fields: dict[str, Field]
    statuses: dict[str, dict[str, Any]]
    certified: bool = False
    window: bool = False

    @property
    def first(self) -> str:
        return next(iter(self.statuses))

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "code": self.code, "title": self.title,
                "fields": {f.name: {"kind": f.kind, "required": f.required, "title": f.title,
                                    **({"values": list(f.values)} if f.values else {}),
                                    **({"register": f.register} if f.register else {})}
                           for f in self.fields.values()},
                "statuses": {k: {"title": v["title"], "next": list(v["next"])}
                             for k, v in self.statuses.items()},
                "certified": self.certified, "window": self.window}


@dataclass(frozen=True)
class Criteria:
    passing: float
    valid_ms: int
    weights: dict[str, float]
    titles: dict[str, dict[str, str]]


@dataclass
class Registers:
    registers: dict[str, Register]
    criteria: dict[str, Criteria] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None, certification: Path | None = None) -> Registers:
        source = path or REGISTERS
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        out: dict[str, Register] = {}
        for key, spec in raw.items():
            where = f"{source}: {key}"
            try:
                fields = {name: Field(name, f["kind"], bool(f.get("required")),
                                      bilingual(f["title"], f"{where}.fields.{name}.title"),
                                      tuple(f.get("values") or ()), f.get("register"))
                          for name, f in (spec.get("fields") or {}).items()}
                register = Register(
                    key, spec["type"], spec["code"], bilingual(spec["title"], f"{where}.title"),
                    fields, {k: {"title": bilingual(v["title"], f"{where}.statuses.{k}.title"),
                                 "next": tuple(v["next"])}
                             for k, v in spec["statuses"].items()},
                    bool(spec.get("certified")), bool(spec.get("window")))
            except (KeyError, TypeError) as exc:
                raise ValueError(f"{where}: {exc!r} is missing or misplaced") from None
            if not re.fullmatch(r"[A-Z]{2}", register.code):
                raise ValueError(f"{where}: code is two capital letters")
            for f in fields.values():
                if f.kind not in KINDS:
                    raise ValueError(f"{where}.{f.name}: kind is one of {sorted(KINDS)}")
            for status, spec_ in register.statuses.items():
                unknown = set(spec_["next"]) - set(register.statuses)
                if unknown:
                    raise ValueError(f"{where}.{status}: unknown next {sorted(unknown)}")
            out[key] = register
        codes = [r.code for r in out.values()]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{source}: two registers share a code")
        for r in out.values():
            for f in r.fields.values():
                if f.kind == "ref" and f.register not in out:
                    raise ValueError(f"{source}: {r.key}.{f.name} refers to no register")
        rules = yaml.safe_load((certification or CERTIFICATION).read_text(encoding="utf-8"))
        criteria = {key: Criteria(float(c["pass"]), parse_duration_ms(c["valid"]),
                                  {k: float(v["weight"]) for k, v in c["criteria"].items()},
                                  {k: bilingual(v["title"], f"{key}.criteria.{k}.title")
                                   for k, v in c["criteria"].items()})
                    for key, c in (rules or {}).items() if key in out}
        return cls(out, criteria)

    def by_code(self, code: str) -> Register:
        found = next((r for r in self.registers.values() if r.code == code), None)
        if found is None:
            raise ResourceNotFound(f"No register with the code {code!r}")
        return found


class Registry:
    def __init__(self, broker: Broker, registers: Registers, province: str) -> None:
        if not re.fullmatch(r"\d{2}", province):
            raise ValueError(f"province {province!r}: the two-digit code of the province")
        self.broker = broker
        self.registers = registers
        self.province = province
        self.ctx = broker.resolver.core

    def register(self, key: str) -> Register:
        found = self.registers.registers.get(key)
        if found is None:
            raise ResourceNotFound(f"No register {key!r}; registers: "
                                   f"{', '.join(self.registers.registers)}")
        return found

    # -- records ---------------------------------------------------------------------------

    def create(self, tenant: str, key: str, body: Any, *, by: str | None = None,
               today: date | None = None) -> dict[str, Any]:
        register = self.register(key)
        if not isinstance(body, dict):
            raise BadRequestData("A record is a JSON object")
        attrs = self._checked(tenant, register, body, creating=True)
        year = (today or datetime.now(UTC).date()).year
        identifier = Identifier(self.province, register.code, year,
                                self._next_number(tenant, register, year))
        eid = f"urn:ngsi-ld:{register.type}:{identifier}"
        now = now_iso()
        entity = {"id": eid, "type": register.type, **attrs,
                  "registryId": prop(str(identifier)),
                  "status": prop(register.first),
                  "statusHistory": prop([_move(None, register.first, now, by, None, None)]),
                  "documents": prop([])}
        if register.certified:
            entity["certification"] = prop({"status": "none"})
        doc = expand_entity(entity, self.ctx, now)
        self.broker.apply_one(tenant, eid, lambda old: doc)
        return self.view(doc)

    def get(self, tenant: str, text: str) -> tuple[Register, dict]:
        """A record by its identifier, with its register."""
        try:
            identifier = parse(text)
        except ValueError as exc:
            raise BadRequestData(str(exc)) from None
        register = self.registers.by_code(identifier.register)
        doc = self.broker.store.get(tenant, f"urn:ngsi-ld:{register.type}:{identifier}")
        if doc is None:
            raise ResourceNotFound(f"No record {identifier}")
        return register, doc

    def search(self, tenant: str, key: str | None = None, text: str = "",
               status: str | None = None,
               bbox: tuple[float, float, float, float] | None = None) -> list[dict[str, Any]]:
        """Records whose identifier, name, description or other text fields hold every
        word of ``text`` (without regard to case and diacritics), of one register or all,
        in one status, and overlapping ``bbox`` (west, south, east, north)."""
        words = fold(text).split()
        out = []
        for register in ([self.register(key)] if key else self.registers.registers.values()):
            docs = query_all(self.broker.store, tenant, EntityQuery(
                selectors=[Selector(types=parse_type_expr(register.type, self.ctx.expand))],
                expand=self.ctx.expand, limit=1000))
            for doc in docs:
                item = self.view(doc)
                if status is not None and item.get("status") != status:
                    continue
                if words and not all(w in _haystack(register, item) for w in words):
                    continue
                if bbox is not None and not _overlaps(item.get("location"), bbox):
                    continue
                out.append(item)
        return sorted(out, key=lambda i: i["registryId"])

    def update(self, tenant: str, text: str, body: Any) -> dict[str, Any]:
        """Change a record's own fields (not its identifier, status or documents)."""
        register, _ = self.get(tenant, text)
        if not isinstance(body, dict):
            raise BadRequestData("The change is a JSON object")
        attrs = self._checked(tenant, register, body, creating=False)

        def changes(doc: dict) -> dict[str, Any]:
            if register.window:  # the window as it will be, checked whole
                start, end = (attrs[k]["value"] if k in attrs
                              else first_value(doc, self.ctx.expand(k))
                              for k in ("startDate", "endDate"))
                if end <= start:
                    raise BadRequestData("endDate must be after startDate")
            return attrs

        return self._change(tenant, register, text, changes)

    def move(self, tenant: str, text: str, to: Any, *, note: Any = None,
             decision: Any = None, by: str | None = None) -> dict[str, Any]:
        register, _ = self.get(tenant, text)
        if to not in register.statuses:
            raise BadRequestData(f"status must be one of {', '.join(register.statuses)}")
        note = _text(note, "note") if note is not None else None
        decision = _text(decision, "decision") if decision is not None else None

        def changes(doc: dict) -> dict[str, Any]:
            now = first_value(doc, self.ctx.expand("status"))
            if to not in register.statuses[now]["next"]:
                allowed = ", ".join(register.statuses[now]["next"]) or "none"
                raise BadRequestData(f"A record {now} cannot become {to} (it can become: "
                                     f"{allowed})")
            moves = list(first_value(doc, self.ctx.expand("statusHistory")) or [])
            moves.append(_move(now, to, now_iso(), by, note, decision))
            return {"status": prop(to), "statusHistory": prop(moves)}

        return self._change(tenant, register, text, changes)

    def add_document(self, tenant: str, text: str, body: Any,
                     *, by: str | None = None) -> dict[str, Any]:
        register, _ = self.get(tenant, text)
        if not isinstance(body, dict):
            raise BadRequestData("A document is a JSON object with title and url")
        entry = {"title": _text(body.get("title"), "title", required=True),
                 "url": _url(body.get("url"), "url"), "addedAt": now_iso()}
        if by:
            entry["addedBy"] = by
        return self._append(tenant, register, text, "documents", entry)

    # -- certification (smart buildings and areas) -----------------------------------------

    def apply_for_certification(self, tenant: str, text: str, body: Any,
                                *, by: str | None = None) -> dict[str, Any]:
        register, _ = self.get(tenant, text)
        self._certifiable(register)
        evidence = body.get("evidence") if isinstance(body, dict) else None
        if not isinstance(evidence, list) or not evidence:
            raise BadRequestData("evidence: a list of {title, url} for the assessor")
        items = [{"title": _text(e.get("title") if isinstance(e, dict) else None, "title",
                                 required=True),
                  "url": _url(e.get("url") if isinstance(e, dict) else None, "url")}
                 for e in evidence]

        def changes(doc: dict) -> dict[str, Any]:
            current = first_value(doc, self.ctx.expand("certification")) or {}
            if current.get("status") == "applied":
                raise BadRequestData("An application is already waiting for its assessment")
            return {"certification": prop({"status": "applied", "appliedAt": now_iso(),
                                            "appliedBy": by, "evidence": items})}

        return self._change(tenant, register, text, changes)

    def assess(self, tenant: str, text: str, body: Any, *, by: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
        """An assessor's scores (criterion -> {score 0-100, note}): the weighted score
        decides, and the result is published on the record."""
        register, _ = self.get(tenant, text)
        criteria = self._certifiable(register)
        scores = body.get("scores") if isinstance(body, dict) else None
        if not isinstance(scores, dict) or set(scores) != set(criteria.weights):
            raise BadRequestData("scores: one per criterion: "
                                 f"{', '.join(criteria.weights)}")
        checked: dict[str, dict[str, Any]] = {}
        for name, given in scores.items():
            score = given.get("score") if isinstance(given, dict) else None
            if not isinstance(score, (int, float)) or isinstance(score, bool) \
                    or not 0 <= score <= 100:
                raise BadRequestData(f"scores.{name}.score: a number from 0 to 100")
            checked[name] = {"score": score,
                             "note": _text(given.get("note", ""), f"scores.{name}.note")}
        total = round(sum(criteria.weights[k] * v["score"] for k, v in checked.items())
                      / sum(criteria.weights.values()), 1)
        when = now or datetime.now(UTC)
        passed = total >= criteria.passing

        def changes(doc: dict) -> dict[str, Any]:
            current = first_value(doc, self.ctx.expand("certification")) or {}
            if current.get("status") != "applied":
                raise BadRequestData("Only an application can be assessed (the "
                                     f"certification is {current.get('status', 'none')})")
            result = {**current, "status": "certified" if passed else "refused",
                      "score": total, "pass": criteria.passing, "scores": checked,
                      "assessedAt": format_iso(when), "assessedBy": by}
            if passed:
                result["validUntil"] = format_iso(when + timedelta(milliseconds=criteria.valid_ms))
            return {"certification": prop(result)}

        return self._change(tenant, register, text, changes)

    def _certifiable(self, register: Register) -> Criteria:
        criteria = self.registers.criteria.get(register.key)
        if not register.certified or criteria is None:
            raise BadRequestData(f"Records of the {register.key} register are not certified")
        return criteria

    # -- sandboxes -------------------------------------------------------------------------

    def add_report(self, tenant: str, text: str, body: Any,
                   *, by: str | None = None) -> dict[str, Any]:
        """A periodic report of a sandbox's participants: period, summary, link."""
        register, _ = self.get(tenant, text)
        if not register.window:
            raise BadRequestData(f"Records of the {register.key} register take no reports")
        if not isinstance(body, dict):
            raise BadRequestData("A report is a JSON object: period, summary, url")
        entry = {"period": _text(body.get("period"), "period", required=True),
                 "summary": _text(body.get("summary"), "summary", required=True),
                 "submittedAt": now_iso()}
        if body.get("url") is not None:
            entry["url"] = _url(body["url"], "url")
        if by:
            entry["submittedBy"] = by
        return self._append(tenant, register, text, "reports", entry)

    def check_windows(self, tenant: str, today: date | None = None) -> list[str]:
        """Flag every windowed record that ends within EXPIRY_NOTICE ("expiring") or has
        ended ("expired"): the identifiers whose flag changed."""
        day = today or datetime.now(UTC).date()
        changed = []
        for register in self.registers.registers.values():
            if not register.window:
                continue
            for item in self.search(tenant, register.key):
                end = date.fromisoformat(item["endDate"])
                flag = "expired" if end < day else \
                    "expiring" if end - day <= EXPIRY_NOTICE else None
                if flag is None or item.get("expiry") == flag or item["status"] in (
                        "closed", "refused"):
                    continue
                self._change(tenant, register, item["registryId"], _flag(flag))
                changed.append(item["registryId"])
        return changed

    def check_all(self, today: date | None = None) -> list[str]:
        """``check_windows`` on every tenant (not their private partitions)."""
        tenants = {DEFAULT_TENANT, *self.broker.store.tenants()}
        return [rid for t in sorted(tenants) if "~" not in t
                for rid in self.check_windows(t, today)]

    # -- helpers ---------------------------------------------------------------------------

    def view(self, doc: dict) -> dict[str, Any]:
        """A record as the registry API shows it: its key-values."""
        item = render_entity(doc, self.ctx, KEY_VALUES)
        item["modifiedAt"] = doc.get("modifiedAt")
        return item

    def _checked(self, tenant: str, register: Register, body: dict[str, Any], *,
                 creating: bool) -> dict[str, Any]:
        """The body's fields as NGSI-LD attributes, each checked; unknown ones refused."""
        own = {"name", "description", "location", *register.fields}
        if register.window:
            own |= {"startDate", "endDate"}
        unknown = set(body) - own
        if unknown:
            raise BadRequestData(f"unknown fields {sorted(unknown)}; a {register.key} record "
                                 f"has: {', '.join(sorted(own))}")
        required = {"name", "location", *(f.name for f in register.fields.values()
                                          if f.required)}
        if register.window:
            required |= {"startDate", "endDate"}
        missing = required - set(body) if creating else set()
        if missing:
            raise BadRequestData(f"missing {', '.join(sorted(missing))}")
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name == "location":
                geometry = validate_geometry(value)
                if geometry.is_empty or not geometry.is_valid:
                    raise BadRequestData("location: an empty or invalid geometry")
                out[name] = {"type": "GeoProperty", "value": value}
            elif name in ("name", "description"):
                out[name] = prop(_text(value, name, required=name == "name"))
            elif name in ("startDate", "endDate"):
                out[name] = prop(_date(value, name))
            else:
                out[name] = prop(self._value(tenant, register.fields[name], value))
        if register.window and creating and out["endDate"]["value"] <= out["startDate"]["value"]:
            raise BadRequestData("endDate must be after startDate")
        return out

    def _value(self, tenant: str, f: Field, value: Any) -> Any:
        if f.kind == "text":
            return _text(value, f.name, required=f.required)
        if f.kind == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise BadRequestData(f"{f.name}: a number, not negative")
            return value
        if f.kind == "date":
            return _date(value, f.name)
        if f.kind == "url":
            return _url(value, f.name)
        if f.kind == "choice":
            if value not in f.values:
                raise BadRequestData(f"{f.name}: one of {', '.join(f.values)}")
            return value
        if f.kind == "list":
            if not isinstance(value, list) or (f.required and not value):
                raise BadRequestData(f"{f.name}: a list of texts")
            return [_text(v, f.name, required=True) for v in value]
        # a reference: the identifier of a record of the named register, which must exist
        try:
            target, _ = self.get(tenant, _text(value, f.name, required=True))
        except (BadRequestData, ResourceNotFound) as exc:
            raise BadRequestData(f"{f.name}: {exc.detail}") from None
        if target.key != f.register:
            raise BadRequestData(f"{f.name}: a record of the {f.register} register")
        return str(parse(value))

    def _next_number(self, tenant: str, register: Register, year: int) -> int:
        eid = f"urn:ngsi-ld:{COUNTER}:{self.province}-{register.code}-{year}"
        last = self.ctx.expand("last")
        taken: list[int] = []

        def bump(old: dict | None) -> dict:
            number = int(first_value(old, last) or 0) + 1 if old is not None else 1
            taken.append(number)
            now = now_iso()
            if old is None:
                return expand_entity({"id": eid, "type": COUNTER, "last": prop(number)},
                                     self.ctx, now)
            doc, _ = merge.append(old, expand_attributes({"last": prop(number)}, self.ctx,
                                                         now), now, overwrite=True)
            return doc

        self.broker.apply_one(tenant, eid, bump)
        return taken[-1]

    def _change(self, tenant: str, register: Register, text: str,
                changes: Callable[[dict], dict[str, Any] | None]) -> dict[str, Any]:
        eid = f"urn:ngsi-ld:{register.type}:{parse(text)}"

        def change(old: dict | None) -> Any:
            if old is None:
                raise ResourceNotFound(f"No record {text}")
            body = changes(old)
            if not body:
                return UNCHANGED
            now = now_iso()
            doc, _ = merge.append(old, expand_attributes(body, self.ctx, now), now,
                                  overwrite=True)
            return doc

        outcome = self.broker.apply_one(tenant, eid, change)
        after = outcome.after if outcome.after is not None else self.broker.store.get(tenant,
                                                                                       eid)
        assert after is not None
        return self.view(after)

    def _append(self, tenant: str, register: Register, text: str, attr: str,
                entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` added at the end of the record's list ``attr`` (documents, reports)."""
        def changes(doc: dict) -> dict[str, Any]:
            kept = list(first_value(doc, self.ctx.expand(attr)) or [])
            return {attr: prop([*kept, entry])}

        return self._change(tenant, register, text, changes)


def _flag(flag: str) -> Callable[[dict], dict[str, Any]]:
    return lambda doc: {"expiry": prop(flag)}


def _move(before: str | None, to: str, when: str, by: str | None, note: str | None,
          decision: str | None) -> dict[str, Any]:
    move: dict[str, Any] = {"from": before, "to": to, "at": when}
    for key, value in (("by", by), ("note", note), ("decision", decision)):
        if value:
            move[key] = value
    return move


def _text(value: Any, name: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequestData(f"{name}: {'a non-empty' if required else 'a'} text")
    if len(value) > MAX_TEXT:
        raise BadRequestData(f"{name}: at most {MAX_TEXT} characters")
    return value.strip()


def _url(value: Any, name: str) -> str:
    text = _text(value, name, required=True)
    if not re.fullmatch(r"https?://\S+", text):
        raise BadRequestData(f"{name}: an http(s) link")
    return text


def _date(value: Any, name: str) -> str:
    try:
        return date.fromisoformat(_text(value, name, required=True)).isoformat()
    except ValueError:
        raise BadRequestData(f"{name}: a date (2026-11-26)") from None


def _haystack(register: Register, item: dict[str, Any]) -> str:
    texts = [item.get("registryId", ""), item.get("name", ""), item.get("description", ""),
             *register.title.values()]
    for f in register.fields.values():
        value = item.get(f.name)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            texts.extend(v for v in value if isinstance(v, str))
    return fold(" ".join(str(t) for t in texts))


def _overlaps(geometry: Any, bbox: tuple[float, float, float, float]) -> bool:
    if not isinstance(geometry, dict):
        return False
    try:
        minx, maxx, miny, maxy = geometry_bbox(geometry)
    except (KeyError, TypeError, IndexError, ValueError):
        return False
    west, south, east, north = bbox
    return minx <= east and maxx >= west and miny <= north and maxy >= south
