"""Where writes go when context sources are registered (clause 4.3.6.3): for one entity,
which sources take it and with which part of its body, and what stays here; for a
batch, one request per source with its parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dothi.broker.forwarding import Forward, Forwarder
from dothi.errors import DothiError, RemoteError
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import body_types, item_id
from dothi.ngsild.registration import Compiled
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store.base import Store


@dataclass
class Route:
    """Where one entity's write goes: the part kept here (None: nothing) and, by
    registration id, each context source with its part."""

    local: Any
    parts: dict[str, tuple[Compiled, Any]]


@dataclass
class Remote:
    """What the sources did with their parts of a batch."""

    success: list[str] = field(default_factory=list)
    errors: list[tuple[str, DothiError]] = field(default_factory=list)


def _kept(key: str) -> bool:
    """Members every part of a split entity body keeps."""
    return key in ("id", "@id", "type", "@type", "@context", "scope")


class Routing:
    def __init__(self, store: Store, forwarder: Forwarder) -> None:
        self.store = store
        self.forwarder = forwarder

    def route(self, tenant: str, operation: str, eid: str, types: list[str] | None,
              body: Any, ctx: ActiveContext | None, forward: Forward | None, *,
              always_local: bool, attr: str | None = None) -> Route:
        """Which context sources take a write of one entity, with which part of its body,
        and what part stays here (clause 4.3.6.3)."""
        if forward is None or forward.local or \
                not self.forwarder.registry.registrations(tenant):
            return Route(body, {})
        if types is None:
            held = self.store.get(tenant, eid)
            types = held.get("type") if held else None
        expr = TypeExpr("or", children=tuple(TypeExpr("type", name=t) for t in types)) \
            if types else None
        sources = [r for r in self.forwarder.sources(
            tenant, operation, forward, eid=eid, types=expr,
            attrs=[attr] if attr is not None else None) if r.mode != "auxiliary"]
        if not sources:
            return Route(body, {})
        if attr is not None:
            # One attribute: it lives where an exclusive or redirect source says.
            stays = not any(r.mode in ("redirect", "exclusive") for r in sources)
            return Route(body if stays else None, {r.id: (r, body) for r in sources})
        mine = body
        parts: dict[str, tuple[Compiled, Any]] = {}
        for reg in sources:
            part = body
            if reg.mode == "exclusive" and isinstance(body, dict) and ctx is not None:
                owned = reg.registered_attrs(eid, types or ()) or frozenset()
                part = {k: v for k, v in body.items() if _kept(k) or ctx.expand(k) in owned}
                mine = {k: v for k, v in mine.items() if _kept(k) or ctx.expand(k) not in owned}
            parts[reg.id] = (reg, part)
        stays = not any(r.mode == "redirect" for r in sources) and (
            always_local or not isinstance(mine, dict) or any(not _kept(k) for k in mine))
        return Route(mine if stays else None, parts)

    def batch(self, tenant: str, op: str, items: list[Any], ctx_for: Any,
              forward: Forward | None) -> tuple[list[Any], Remote]:
        """Send the sources their parts of a batch, one batch request per source; what
        stays here is returned for the local batch, with the sources' results."""
        result = Remote()
        if forward is None or forward.local or \
                not self.forwarder.registry.registrations(tenant):
            return items, result
        operation = f"{op}Batch"
        local: list[Any] = []
        per_source: dict[str, tuple[Any, list[Any], list[str]]] = {}
        for item in items:
            try:
                eid = item if op == "delete" else item_id(item)
                ctx = None if op == "delete" else ctx_for(item)
                types = body_types(item, ctx) if ctx is not None else None
            except DothiError:
                local.append(item)  # the local batch reports what is wrong with it
                continue
            route = self.route(tenant, operation, eid, types, item, ctx, forward,
                                always_local=op in ("create", "upsert"))
            if route.local is not None:
                local.append(route.local)
            for reg, part in route.parts.values():
                per_source.setdefault(reg.id, (reg, [], []))[1].append(part)
                per_source[reg.id][2].append(eid)
        if per_source:
            sent = self.forwarder.write(
                [(reg, parts) for reg, parts, _ in per_source.values()],
                "POST", f"/ngsi-ld/v1/entityOperations/{op}", forward,
                forward.headers.get("content-type", "application/json"))
            for answer, (_, _, ids) in zip(sent, per_source.values(), strict=True):
                ok, failed = answer.outcome(ids)
                result.success.extend(ok)
                result.errors.extend((i, RemoteError(p, answer.reg.endpoint))
                                     for i, p in failed)
        return local, result
