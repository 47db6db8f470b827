"""Incidents of the operations centre: ``Incident`` entities (shaped after the Smart Data
Models ``Alert``: category, subCategory, severity, alertSource, dateIssued, location) that
move through the workflow of ``workflow.yaml`` (detected → acknowledged → assigned → in
progress → resolved → closed), with service-level due times, escalation when overdue,
comments and attachments.

Every move is an ordinary attribute update of the entity, so the temporal API holds an
incident's full history and subscriptions see every move, as they see any other change.
Whoever opens an incident (an operator, a rule) may give a ``dedupKey``: while an incident
with that key is open, opening it again counts one more occurrence instead of a duplicate.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, BadRequestData, PlatformError, ResourceNotFound
from dothi.ngsild import merge, qlang
from dothi.ngsild.entity import expand_attributes, expand_entity, first_value
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import UNCHANGED, EntityQuery, Selector, query_all

log = logging.getLogger(__name__)
INCIDENT = "Incident"
WORKFLOW = Path(__file__).with_name("workflow.yaml")
PAGE = 1000
KEY_VALUES = RenderOptions(fmt="keyValues")
MAX_TEXT = 4000


class InvalidTransition(PlatformError):
    """The incident cannot make that move from where it is."""

    status = 409
    problem = "InvalidTransition"


@dataclass(frozen=True)
class Workflow:
    statuses: dict[str, dict[str, str]]
    moves: dict[str, list[str]]
    open: frozenset[str]
    agencies: dict[str, dict[str, str]]
    severities: dict[str, dict[str, int]]
    categories: dict[str, dict[str, str]]

    @classmethod
    def load(cls, path: Path = WORKFLOW) -> Workflow:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        flow = cls(statuses=data["statuses"], moves=data["moves"],
                   open=frozenset(data["open"]), agencies=data["agencies"],
                   severities=data["severities"], categories=data["categories"])
        known = set(flow.statuses)
        wrong = ({s for s in flow.moves} | {t for ts in flow.moves.values() for t in ts}
                 | set(flow.open)) - known
        if wrong or "detected" not in known:
            raise ValueError(f"{path}: statuses {sorted(wrong)} are used but not defined "
                             "(and 'detected' must be one)")
        for name, levels in flow.severities.items():
            if set(levels) != {"acknowledge", "resolve"}:
                raise ValueError(f"{path}: severity {name} needs acknowledge and resolve")
        return flow

    def due(self, severity: str, kind: str, since: datetime) -> str:
        return _iso(since + timedelta(minutes=self.severities[severity][kind]))


class IncidentDesk:
    def __init__(self, broker: Broker, workflow: Workflow | None = None) -> None:
        self.broker = broker
        self.flow = workflow or Workflow.load()
        self.ctx = broker.resolver.core
        self._opening = threading.Lock()  # one open-or-count at a time per process
        # Told (tenant, incident document) after each move: what follows an incident (the
        # citizens' reports it answers) keeps up with it.
        self.followers: list[Callable[[str, dict], None]] = []

    # -- opening ----------------------------------------------------------------------

    def open(self, tenant: str, *, title: Any, category: Any, severity: Any,
             description: str | None = None, sub_category: str | None = None,
             location: dict[str, Any] | None = None, ward: str | None = None,
             source: str = "operator", by: str | None = None,
             related: list[str] | None = None, dedup_key: str | None = None,
             now: datetime | None = None) -> tuple[str, bool]:
        """(incident id, whether it is new). Arguments come from clients as they are:
        each is checked here."""
        if category not in self.flow.categories:
            raise BadRequestData(f"category must be one of {sorted(self.flow.categories)}")
        if severity not in self.flow.severities:
            raise BadRequestData(f"severity must be one of {sorted(self.flow.severities)}")
        _text(title, "title", required=True)
        when = now or datetime.now(UTC)
        with self._opening:
            if dedup_key:
                found = self._open_with_key(tenant, dedup_key)
                if found is not None:
                    def again(doc: dict) -> dict[str, Any]:
                        out = {"occurrences": {"type": "Property", "value": int(
                                   self.value(doc, "occurrences") or 1) + 1},
                               "dateLastDetected": _date(when)}
                        known = list(self.value(doc, "relatedEntities") or [])
                        if related and not set(related) <= set(known):
                            out["relatedEntities"] = {"type": "Property", "value": [
                                *known, *(r for r in related if r not in known)]}
                        return out

                    self._update(tenant, found, again)
                    return found, False
            eid = f"urn:ngsi-ld:Incident:{uuid.uuid4()}"
            body: dict[str, Any] = {
                "id": eid, "type": INCIDENT,
                "name": {"type": "Property", "value": _text(title, "title", required=True)},
                "category": {"type": "Property", "value": category},
                "severity": {"type": "Property", "value": severity},
                "status": {"type": "Property", "value": "detected"},
                "alertSource": {"type": "Property", "value": _text(source, "source")},
                "dateIssued": _date(when), "dateLastDetected": _date(when),
                "dueAt": {"type": "Property", "value": {
                    "@type": "DateTime", "@value": self.flow.due(severity, "acknowledge", when)}},
                "escalationLevel": {"type": "Property", "value": 0},
                "occurrences": {"type": "Property", "value": 1},
                "comments": {"type": "Property", "value": []},
                "attachments": {"type": "Property", "value": []},
            }
            optional = {"description": description, "subCategory": sub_category,
                        "ward": ward, "dedupKey": dedup_key, "openedBy": by}
            for name, value in optional.items():
                if value is not None:
                    body[name] = {"type": "Property", "value": _text(value, name)}
            if location is not None:
                body["location"] = {"type": "GeoProperty", "value": location}
            if related:
                body["relatedEntities"] = {"type": "Property", "value": list(related)}
            doc = expand_entity(body, self.ctx, now_iso())

            def create(old: dict | None) -> dict:
                if old is not None:
                    raise AlreadyExists(f"Incident {eid} already exists")
                return doc

            self.broker.apply_one(tenant, eid, create)
            return eid, True

    def _open_with_key(self, tenant: str, key: str) -> str | None:
        states = "|".join(f'status=="{s}"' for s in sorted(self.flow.open))
        docs = self.incidents(tenant, f"dedupKey=={qlang.quote(key)};({states})")
        return docs[0]["id"] if docs else None

    # -- moving -----------------------------------------------------------------------

    def move(self, tenant: str, eid: str, to: str, *, by: str | None = None,
             agency: str | None = None, note: str | None = None,
             now: datetime | None = None) -> str:
        """Move the incident to status ``to``; returns the status it left."""
        if to not in self.flow.statuses:
            raise BadRequestData(f"status must be one of {list(self.flow.statuses)}")
        if agency is not None and agency not in self.flow.agencies:
            raise BadRequestData(f"agency must be one of {sorted(self.flow.agencies)}")
        when = now or datetime.now(UTC)
        left: list[str] = []

        def changes(doc: dict) -> dict[str, Any]:
            current = str(self.value(doc, "status"))
            if to not in self.flow.moves.get(current, []):
                raise InvalidTransition(
                    f"An incident that is {current} cannot become {to}; it can become "
                    f"{', '.join(self.flow.moves.get(current, [])) or 'nothing more'}")
            if to == "assigned" and agency is None:
                raise BadRequestData("Assigning an incident needs the agency")
            if to == "closed" and current not in ("resolved",) and not note:
                raise BadRequestData("Closing an incident that was never worked on needs a "
                                     "note saying why (a false alarm, a duplicate)")
            left.append(current)
            out: dict[str, Any] = {
                "status": {"type": "Property", "value": to, "observedAt": _iso(when)}}
            if agency is not None:
                out["assignedAgency"] = {"type": "Property", "value": agency}
            if to in self.flow.open and to != "detected":
                issued = _parse(self.value(doc, "dateIssued"))
                severity = str(self.value(doc, "severity"))
                out["dueAt"] = {"type": "Property", "value": {
                    "@type": "DateTime",
                    "@value": self.flow.due(severity, "resolve", issued)}}
            if to in ("resolved", "closed"):
                out[f"date{to.capitalize()}"] = _date(when)
            entry = {"at": _iso(when), "by": by, "status": to}
            if note:
                entry["text"] = _text(note, "note")
            out["comments"] = {"type": "Property",
                               "value": [*(self.value(doc, "comments") or []), entry]}
            return out

        doc = self._update(tenant, eid, changes, drop_due=to not in self.flow.open)
        if self.followers:
            for follower in self.followers:
                try:
                    follower(tenant, doc or {})
                except Exception:  # the move stands; what follows it says why it lags
                    log.exception("following incident %s's move to %s failed", eid, to)
        return left[0]

    def comment(self, tenant: str, eid: str, text: Any, *, by: str | None = None,
                now: datetime | None = None) -> None:
        entry = {"at": _iso(now or datetime.now(UTC)), "by": by,
                 "text": _text(text, "text", required=True)}
        self._update(tenant, eid, lambda doc: {"comments": {
            "type": "Property", "value": [*(self.value(doc, "comments") or []), entry]}})

    def attach(self, tenant: str, eid: str, url: Any, *, title: str | None = None,
               by: str | None = None, now: datetime | None = None) -> None:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise BadRequestData("An attachment is an http(s) URL")
        entry = {"at": _iso(now or datetime.now(UTC)), "by": by, "url": url,
                 "title": _text(title, "title") if title else None}
        self._update(tenant, eid, lambda doc: {"attachments": {
            "type": "Property", "value": [*(self.value(doc, "attachments") or []), entry]}})

    # -- escalation -------------------------------------------------------------------

    def escalate(self, now: datetime | None = None) -> int:
        """Every open incident past its due time, in every tenant: one escalation level
        up, due again one acknowledgement period later. Returns how many."""
        when = now or datetime.now(UTC)
        stamp = _iso(when)
        states = "|".join(f'status=="{s}"' for s in sorted(self.flow.open))
        escalated = 0
        for tenant in self.broker.store.tenants():
            for doc in self.incidents(tenant, states):
                if str(self.value(doc, "dueAt") or "9") >= stamp:
                    continue

                def changes(current: dict) -> dict[str, Any] | None:
                    due = str(self.value(current, "dueAt") or "9")
                    if due >= stamp or self.value(current, "status") not in self.flow.open:
                        return None  # moved or escalated meanwhile
                    severity = str(self.value(current, "severity"))
                    return {
                        "escalationLevel": {"type": "Property", "value": int(
                            self.value(current, "escalationLevel") or 0) + 1},
                        "dateEscalated": _date(when),
                        "dueAt": {"type": "Property", "value": {
                            "@type": "DateTime",
                            "@value": self.flow.due(severity, "acknowledge", when)}}}

                escalated += self._update(tenant, doc["id"], changes) is not None
        return escalated

    # -- store plumbing ---------------------------------------------------------------

    def incidents(self, tenant: str, q: str) -> list[dict]:
        return query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(INCIDENT, self.ctx.expand))],
            q=parse_q(q), expand=self.ctx.expand, limit=PAGE))

    def view(self, doc: dict) -> dict[str, Any]:
        """An incident as the /ioc API and the dashboard show it: its keyValues, and
        ``modifiedAt``, by which a page keeps the newer of two copies it is sent."""
        return {**render_entity(doc, self.ctx, KEY_VALUES), "modifiedAt": doc.get("modifiedAt")}

    def value(self, doc: dict, name: str) -> Any:
        return first_value(doc, self.ctx.expand(name))

    def _update(self, tenant: str, eid: str,
                changes: Callable[[dict], dict[str, Any] | None], *,
                drop_due: bool = False) -> dict | None:
        """Read-modify-write of one incident in one transaction; the incident as written,
        or None if it did not change."""
        due_iri = self.ctx.expand("dueAt")

        def change(old: dict | None) -> Any:
            if old is None or self.ctx.expand(INCIDENT) not in old.get("type", ()):
                raise ResourceNotFound(f"No incident {eid}")
            body = changes(old)
            if body is None:
                return UNCHANGED
            now = now_iso()
            doc, _ = merge.append(old, expand_attributes(body, self.ctx, now), now,
                                  overwrite=True)
            if drop_due:
                doc.pop(due_iri, None)
            return doc

        outcome = self.broker.apply_one(tenant, eid, change)
        return outcome.after if outcome.status in ("created", "updated") else None



def _text(value: Any, name: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequestData(f"{name} must be {'a non-empty' if required else 'a'} string")
    if len(value) > MAX_TEXT:
        raise BadRequestData(f"{name} is longer than {MAX_TEXT} characters")
    return value


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _date(when: datetime) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": _iso(when)}}


def _parse(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
