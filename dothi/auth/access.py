"""Who is asking (``Principal``) and what the policy lets them do (``Access``).

The policy (``policy.yaml``, or a city's own with ``DOTHI_AUTH_POLICY``) gives each role
its actions, names the internal entity types and the attributes that place an internal
entity in an agency and an area. A principal is one role, narrowed by the tenants, the
agency, the area and the entity types it was given.

The access of the principal a request runs for is held in a context variable, like the
audit log's actor: the HTTP layer sets it per request, the threads a request starts
inherit it, and the platform's own work (rules, escalations, device ingestion, commands)
runs with the default, unlimited ``SYSTEM`` access. The broker reads it on every read and
write, so every API over the broker obeys the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dothi.errors import Forbidden, NotAuthenticated
from dothi.ngsild import qlang
from dothi.ngsild.context import DEFAULT_VOCAB
from dothi.ngsild.entity import first_value
from dothi.ngsild.qlang import parse_q
from dothi.store.base import ReadRule

POLICY = Path(__file__).with_name("policy.yaml")
ACTIONS = frozenset({
    "read", "read-internal", "write", "subscribe", "manage", "handle-incidents", "warn",
    "read-personal", "erase-personal", "enter", "assess", "report", "comment", "programme",
    "coordinate"})


def type_iri(name: str) -> str:
    """An entity type or attribute named as the platform's own data names it (the core
    context's default vocabulary), or an IRI as it is."""
    return name if ":" in name else DEFAULT_VOCAB + name


@dataclass(frozen=True)
class Role:
    name: str
    title: dict[str, str]
    may: frozenset[str]
    every_tenant: bool = False


@dataclass(frozen=True)
class Policy:
    roles: dict[str, Role]
    internal: frozenset[str]  # type IRIs
    agency_attr: str  # short names, expanded by type_iri
    area_attr: str

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        source = path or POLICY
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        roles = {}
        for name, spec in data["roles"].items():
            may = frozenset(spec.get("may", ()))
            unknown = may - ACTIONS
            if unknown:
                raise ValueError(f"{source}: role {name} names unknown actions "
                                 f"{sorted(unknown)}")
            roles[name] = Role(name, spec.get("title", {}), may,
                               bool(spec.get("every_tenant", False)))
        for needed in ("system-admin", "public"):
            if needed not in roles:
                raise ValueError(f"{source}: the role {needed} must be defined")
        scope = data.get("scope", {})
        return cls(roles, frozenset(type_iri(t) for t in data.get("internal", ())),
                   scope.get("agency", "assignedAgency"), scope.get("area", "ward"))

    def role(self, name: str) -> Role:
        """The role of that name; one that may do nothing if the policy has none (a
        subscription made under a role a later policy dropped)."""
        return self.roles.get(name) or Role(name, {}, frozenset())

    def check_role(self, name: str) -> str:
        if name not in self.roles:
            raise ValueError(f"Unknown role {name!r}; the roles are {', '.join(self.roles)}")
        return name


@dataclass(frozen=True)
class Principal:
    """Who a request is for. ``subject`` is the name the audit log gives it (``user:lan``,
    ``key:traffic-vendor``, ``official#1``, ``anonymous``); ``identified`` is False for a
    request that showed no credential. ``tenants``, ``types`` (IRIs) None: any."""

    subject: str
    role: str
    tenants: frozenset[str] | None = None
    agency: str | None = None
    area: str | None = None
    types: frozenset[str] | None = None
    identified: bool = True

    def to_doc(self) -> dict[str, Any]:
        """The principal as a JSON object (kept with the subscriptions it made)."""
        doc: dict[str, Any] = {"subject": self.subject, "role": self.role}
        for key in ("agency", "area"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        for key in ("tenants", "types"):
            if getattr(self, key) is not None:
                doc[key] = sorted(getattr(self, key))
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Principal:
        def names(key: str) -> frozenset[str] | None:
            return frozenset(doc[key]) if doc.get(key) is not None else None

        return cls(str(doc["subject"]), str(doc["role"]), names("tenants"),
                   doc.get("agency"), doc.get("area"), names("types"))


@dataclass(frozen=True)
class Access:
    """A principal under a policy: the checks the broker and the APIs make."""

    principal: Principal
    policy: Policy | None = None  # None: the platform itself, unlimited

    @property
    def unlimited(self) -> bool:
        return self.policy is None or self.principal.role == "system-admin" and \
            self.principal.tenants is None

    def may(self, action: str) -> bool:
        if self.policy is None:
            return True
        return action in self.policy.role(self.principal.role).may

    def need(self, action: str, what: str, tenant: str | None = None) -> None:
        """Raise unless the principal may take ``action`` (in ``tenant``, if given): 401
        for a request that showed no credential (signing in may help), 403 for one that
        did."""
        if not self.may(action):
            if not self.principal.identified:
                raise NotAuthenticated(f"Sign in to {what} (Authorization: Bearer <token or "
                                       "API key>)")
            raise Forbidden(f"The role {self.principal.role} may not {what}")
        if tenant is not None and not self.tenant_ok(tenant):
            raise Forbidden(f"{self.principal.subject} has no access to tenant {tenant}")

    def tenant_ok(self, tenant: str) -> bool:
        if self.policy is None or self.principal.tenants is None:
            return True
        return tenant in self.principal.tenants or \
            self.policy.role(self.principal.role).every_tenant

    def _narrowing(self) -> dict[str, str]:
        """Attribute IRI -> the value an internal entity must hold for this principal."""
        assert self.policy is not None
        pairs = {}
        if self.principal.agency is not None:
            pairs[type_iri(self.policy.agency_attr)] = self.principal.agency
        if self.principal.area is not None:
            pairs[type_iri(self.policy.area_attr)] = self.principal.area
        return pairs

    def _in_scope(self, doc: dict) -> bool:
        for iri, wanted in self._narrowing().items():
            if first_value(doc, iri) != wanted:
                return False
        return True

    def sees_type(self, iri: str) -> bool:
        """Whether entities of this type may be visible to the principal at all."""
        if self.unlimited:
            return True
        assert self.policy is not None
        return self.may("read") and (iri not in self.policy.internal or
                                     self.may("read-internal"))

    def sees_view(self, view: dict) -> bool:
        """``readable`` for an internal entity shown as keyValues (the dashboard's
        incidents), by the policy's short names."""
        if self.unlimited:
            return True
        assert self.policy is not None
        wanted = {self.policy.agency_attr: self.principal.agency,
                  self.policy.area_attr: self.principal.area}
        return self.may("read-internal") and all(
            value is None or view.get(name) == value for name, value in wanted.items())

    def readable(self, doc: dict) -> bool:
        """Whether the principal may see this stored entity (expanded form)."""
        if self.unlimited:
            return True
        assert self.policy is not None
        if not self.may("read"):
            return False
        if not self.policy.internal.intersection(doc.get("type", ())):
            return True
        return self.may("read-internal") and self._in_scope(doc)

    def writable(self, doc: dict) -> bool:
        """Whether the principal may create, change or delete this entity (expanded form,
        as it was or as it would be)."""
        if self.unlimited:
            return True
        assert self.policy is not None
        if not self.may("write") or not self.readable(doc):
            return False
        allowed = self.principal.types  # every type of the entity must be one of them
        types = set(doc.get("type", ()))
        return allowed is None or bool(types) and types <= allowed

    def read_rules(self) -> list[ReadRule]:
        """How a query is narrowed for this principal, as the store applies it."""
        if self.unlimited:
            return []
        assert self.policy is not None
        if not self.may("read"):
            return [ReadRule(None)]
        if not self.policy.internal:
            return []
        internal = self.policy.internal
        if not self.may("read-internal"):
            return [ReadRule(internal)]
        narrowing = self._narrowing()
        if not narrowing:
            return []
        iris = {type_iri(a): a for a in (self.policy.agency_attr, self.policy.area_attr)}
        q = ";".join(f"{iris[iri]}=={qlang.quote(value)}" for iri, value in narrowing.items())
        expand = {a: i for i, a in iris.items()}
        return [ReadRule(internal, parse_q(q), lambda name: expand.get(name, name))]


SYSTEM = Access(Principal("system", "system-admin"))
_current: ContextVar[Access] = ContextVar("dothi_access", default=SYSTEM)


def current() -> Access:
    return _current.get()


def set_current(access: Access) -> None:
    """The access the rest of this task (a request) runs with."""
    _current.set(access)


@contextmanager
def acting(access: Access) -> Iterator[None]:
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)
