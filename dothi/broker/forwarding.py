"""Distributed operations (clause 4.3.6, annex D): requests sent on to the context sources
whose registrations cover them, and their answers merged with what this broker holds.

Reads go to every live registration that serves the operation; answers are merged entity
by entity and attribute by attribute. Writes go where the registration's mode says:
``redirect`` sources take the whole write and nothing is kept here, ``exclusive`` ones
take the attributes they registered, ``inclusive`` ones take a copy, ``auxiliary`` ones
never take writes. A forwarded request carries ``Via`` with this broker's id, and one
that comes back is refused (508) so two brokers that register each other cannot loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from dothi.broker.registry import Registry
from dothi.errors import LoopDetected
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import expand_entity
from dothi.ngsild.registration import Compiled
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store.base import EntityQuery, TypeStat

log = logging.getLogger("dothi.forwarding")
NGSI = "/ngsi-ld/v1"
# Query parameters that shape the local answer, not what a source is asked for: sources
# answer in full normalized form, which is merged and then rendered as the client asked.
_LOCAL_PARAMS = frozenset({"limit", "offset", "count", "format", "options", "local", "pick",
                           "omit", "lang", "geometryProperty"})
_NEVER_FROM_INFO = frozenset({"ngsild-tenant", "via"})


@dataclass
class Forward:
    """What a forwarded request takes from the client's request."""

    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None

    @property
    def local(self) -> bool:
        return self.params.get("local") == "true"


@dataclass
class Answer:
    """One source's answer: the entities (stored form) or why there are none."""

    reg: Compiled
    docs: list[dict] = field(default_factory=list)
    count: int | None = None
    status: int = 200
    problem: dict | None = None
    warning: str | None = None


@dataclass
class Sent:
    """A source's answer to a forwarded write."""

    reg: Compiled
    status: int
    body: Any = None  # the JSON answer (ids created, or a 207 BatchOperationResult)
    problem: dict | None = None  # why the source refused, or could not be reached

    def outcome(self, ids: Sequence[str]) -> tuple[list[str], list[tuple[str, dict]]]:
        """(succeeded, [(id, problem)]) for the entities ``ids`` this source was sent."""
        if self.problem is not None:
            return [], [(i, self.problem) for i in ids]
        if self.status == 207 and isinstance(self.body, dict):
            failed = [(str(e.get("entityId")), dict(e.get("error") or {}))
                      for e in self.body.get("errors") or () if isinstance(e, dict)]
            bad = {i for i, _ in failed}
            return [i for i in ids if i not in bad], failed
        return list(ids), []


class Forwarder:
    def __init__(self, registry: Registry, broker_id: str, timeout: float) -> None:
        self.registry = registry
        self.broker_id = broker_id
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    # -- which sources -------------------------------------------------------------------

    def check_loop(self, forward: Forward) -> None:
        via = forward.headers.get("via", "")
        if any(hop.strip().split(" ")[-1] == self.broker_id for hop in via.split(",")):
            raise LoopDetected(f"This request has already passed through {self.broker_id}")

    def sources(self, tenant: str, operation: str, forward: Forward | None, *,
                eid: str | None = None, ids: Sequence[str] | None = None,
                types: TypeExpr | None = None,
                attrs: Iterable[str] | None = None) -> list[Compiled]:
        if forward is None or forward.local:
            return []
        self.check_loop(forward)
        return [r for r in self.registry.registrations(tenant)
                if r.serves(operation) and r.matches(eid, ids, types, attrs)]

    # -- reads -----------------------------------------------------------------------------

    def query(self, sources: list[Compiled], query: EntityQuery, forward: Forward,
              ctx: ActiveContext) -> list[Answer]:
        """Each source asked for the first offset+limit entities of the same query (the
        same Query body, for POST /entityOperations/query)."""
        params = {k: v for k, v in forward.params.items() if k not in _LOCAL_PARAMS}
        params["limit"] = str(max(1, query.offset + query.limit))
        if query.count:
            params["count"] = "true"
        if "sysAttrs" in forward.params.get("options", ""):
            params["options"] = "sysAttrs"

        def ask(reg: Compiled) -> Answer:
            asked = {**params, "local": "true"} if reg.local_only else params
            if forward.body is not None:
                return self._read(reg, "POST", f"{NGSI}/entityOperations/query", asked,
                                  forward, ctx)
            return self._read(reg, "GET", f"{NGSI}/entities", asked, forward, ctx)

        return self._each(sources, ask)

    def retrieve(self, sources: list[Compiled], eid: str, forward: Forward,
                 ctx: ActiveContext) -> list[Answer]:
        params = {k: v for k, v in forward.params.items() if k not in _LOCAL_PARAMS}
        if "sysAttrs" in forward.params.get("options", ""):
            params["options"] = "sysAttrs"
        path = f"{NGSI}/entities/{quote(eid, safe=':')}"
        return self._each(sources, lambda reg: self._read(reg, "GET", path, params,
                                                          forward, ctx))

    def _read(self, reg: Compiled, method: str, path: str, params: dict[str, str],
              forward: Forward, ctx: ActiveContext) -> Answer:
        content_type = None if forward.body is None else \
            forward.headers.get("content-type", "application/json")
        try:
            response = self.client.request(method, reg.endpoint + path, params=params,
                                           content=forward.body,
                                           headers=self._headers(reg, forward, content_type),
                                           timeout=self._timeout(reg))
        except httpx.HTTPError as exc:
            return Answer(reg, status=504,
                          warning=f'299 {reg.endpoint} "unreachable: {type(exc).__name__}"')
        if response.status_code == 404:
            return Answer(reg, status=404)
        if response.status_code >= 400:
            return Answer(reg, status=response.status_code,
                          warning=f'299 {reg.endpoint} "answered {response.status_code}"')
        try:
            body = orjson.loads(response.content)
            items = body if isinstance(body, list) else [body]
            now = now_iso()
            docs = [_stored(item, ctx, now) for item in items]
        except Exception:  # noqa: BLE001 - whatever a source sends, it is only a warning
            return Answer(reg, status=502,
                          warning=f'111 {reg.endpoint} "invalid NGSI-LD payload"')
        count = response.headers.get("NGSILD-Results-Count")
        return Answer(reg, docs, int(count) if count and count.isdigit() else None)

    def type_stats(self, sources: list[Compiled], forward: Forward, ctx: ActiveContext,
                   only: str | None = None) -> tuple[list[TypeStat], list[str]]:
        """The entity types each source holds (or just ``only``, an IRI), with counts and
        attribute kinds from its /types/{type}; and warnings for sources that failed.
        Types are named to the source in the request's @context (its Link goes along)."""

        def ask(reg: Compiled) -> tuple[list[TypeStat], str | None]:
            headers = self._headers(reg, forward, None)

            def get(path: str, **params: str) -> Any:
                response = self.client.get(reg.endpoint + path, params=params,
                                           headers=headers, timeout=self._timeout(reg))
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                return orjson.loads(response.content)

            try:
                if only is not None:
                    names = [ctx.compact(only)]
                else:
                    names = [t["typeName"] for t in get(f"{NGSI}/types", details="true")
                             or ()]
                stats = []
                for name in names:
                    info = get(f"{NGSI}/types/{quote(name, safe=':')}")
                    if info is None:
                        continue
                    stat = TypeStat(info["id"], int(info.get("entityCount") or 0), {})
                    for attr in info.get("attributeDetails") or ():
                        stat.attributes[attr["id"]] = set(attr.get("attributeTypes") or ())
                    stats.append(stat)
                return stats, None
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                return [], f'299 {reg.endpoint} "types unavailable: {type(exc).__name__}"'

        found: list[TypeStat] = []
        warnings = []
        for stats, warning in self._each(sources, ask):
            found.extend(stats)
            if warning:
                warnings.append(warning)
        return found, warnings

    # -- writes ----------------------------------------------------------------------------

    def write(self, parts: Sequence[tuple[Compiled, Any]], method: str, path: str,
              forward: Forward, content_type: str | None) -> list[Sent]:
        """Send each source its part of a write (None: no body), all at once."""

        def send(part: tuple[Compiled, Any]) -> Sent:
            reg, body = part
            try:
                response = self.client.request(
                    method, reg.endpoint + path,
                    content=None if body is None else orjson.dumps(body),
                    params={k: v for k, v in forward.params.items() if k != "local"},
                    headers=self._headers(reg, forward, content_type),
                    timeout=self._timeout(reg))
            except httpx.HTTPError as exc:
                return Sent(reg, 504, problem=_problem(
                    504, "InternalError", f"{reg.endpoint} unreachable: {type(exc).__name__}"))
            try:
                answer = orjson.loads(response.content) if response.content else None
            except orjson.JSONDecodeError:
                answer = None
            if response.status_code < 300 or response.status_code == 207:
                return Sent(reg, response.status_code, answer)
            if not isinstance(answer, dict) or "type" not in answer:
                answer = _problem(response.status_code, "InternalError",
                                  f"{reg.endpoint} answered {response.status_code}")
            return Sent(reg, response.status_code, problem=answer)

        return self._each(parts, send)

    # -- plumbing --------------------------------------------------------------------------

    def _headers(self, reg: Compiled, forward: Forward, content_type: str | None,
                 ) -> dict[str, str]:
        out: dict[str, str] = {"Accept": "application/json"}
        link = forward.headers.get("link")
        if link and content_type != "application/ld+json":
            out["Link"] = link
        if content_type is not None:
            out["Content-Type"] = content_type
        for key, value in reg.headers:
            if key.lower() in _NEVER_FROM_INFO:
                continue
            if value == "urn:ngsi-ld:request":
                if key.lower() not in forward.headers:
                    continue
                value = forward.headers[key.lower()]
            out[key] = value
        if reg.remote_tenant:
            out["NGSILD-Tenant"] = reg.remote_tenant
        via = forward.headers.get("via")
        hop = f"1.1 {self.broker_id}"
        out["Via"] = f"{via}, {hop}" if via else hop
        return out

    def _timeout(self, reg: Compiled) -> float:
        """Seconds; a registration's management.timeout is in milliseconds."""
        given = (reg.doc.get("management") or {}).get("timeout")
        return given / 1000 if given else self.timeout

    @staticmethod
    def _each(items: Sequence[Any], fn: Any) -> list[Any]:
        """``fn`` of each item (one per source), in parallel, answers in order."""
        if len(items) == 1:
            return [fn(items[0])]
        with ThreadPoolExecutor(min(8, len(items))) as pool:
            return list(pool.map(fn, items))


def _stored(item: Any, ctx: ActiveContext, now: str) -> dict:
    """A source's entity (normalized, in the request's context) in stored form, keeping
    the source's own timestamps."""
    doc = expand_entity(item, ctx, now)
    for key in ("createdAt", "modifiedAt"):
        if isinstance(item.get(key), str):
            doc[key] = item[key]
    return doc


def _problem(status: int, kind: str, detail: str) -> dict:
    return {"type": f"https://uri.etsi.org/ngsi-ld/errors/{kind}", "title": kind,
            "status": status, "detail": detail}


def merge(local: dict | None, answers: Iterable[tuple[str, dict]]) -> dict | None:
    """One entity from this broker's copy and the sources' copies ((mode, doc) pairs).

    Attributes only a source has are added; where both have one, an auxiliary source
    never wins, and otherwise the instance observed (or modified) last does.
    """
    merged = None if local is None else {**local}
    for mode, doc in answers:
        if merged is None:
            merged = {**doc}
            continue
        merged["type"] = list(dict.fromkeys([*merged.get("type", []), *doc.get("type", [])]))
        for key, instances in doc.items():
            if ":" not in key:
                continue
            mine = merged.get(key)
            if mine is None or (mode != "auxiliary" and _newer(instances, mine)):
                merged[key] = instances
    return merged


def _newer(theirs: list[dict], mine: list[dict]) -> bool:
    def stamp(instances: list[dict]) -> str:
        return max((i.get("observedAt") or i.get("modifiedAt") or "" for i in instances),
                   default="")
    return stamp(theirs) > stamp(mine)
