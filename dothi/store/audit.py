"""The audit log (Decree 269 Article 21): every write and every read of personal data,
with who made it, when, from where and what it touched, in one append-only table that
each backend writes in the transaction of the change itself, so that a change and its
record commit or vanish together.

The rows form a hash chain: each row's hash covers its own fields and the hash of the
row before it, so changing, removing or reordering any row breaks every hash after it,
which ``verify`` finds (``dothi audit verify``). The backends also refuse UPDATE and
DELETE on the table with a trigger; the chain is what catches someone who goes around
that with the database's own tools. Removing rows from the end is invisible to the chain
alone: the head hash that ``verify`` prints is the anchor to record elsewhere (a ministry
report, a signed e-mail) and to give back with ``--head``.

Who is acting comes from a context variable: the HTTP layer sets the client's address and
the credential it authenticated with for each request, threads started for a request
inherit it, and work the platform does on its own (device ingestion, rules, escalations)
is the default ``system``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

GENESIS = "0" * 64
# Actions on entities; the other writes name themselves ("subscription.create", ...).
_ENTITY_ACTIONS = {"created": "entity.create", "updated": "entity.update",
                   "deleted": "entity.delete"}
_SYSTEM_KEYS = frozenset(("id", "type", "scope", "createdAt", "modifiedAt", "@context"))


@dataclass(frozen=True)
class Actor:
    """Who a write or read is done for: ``anonymous``, ``official#2``, ``app#1``,
    ``cli:root``, ``system``... and where it came from (a client address or ``local``)."""

    who: str = "system"
    origin: str = "local"


_actor: ContextVar[Actor] = ContextVar("dothi_audit_actor", default=Actor())


def current() -> Actor:
    return _actor.get()


def set_actor(who: str, origin: str | None = None) -> None:
    """Name who the rest of this task (a request, a command) acts for; the origin stays
    unless given."""
    _actor.set(Actor(who, origin if origin is not None else _actor.get().origin))


@contextmanager
def acting(who: str, origin: str = "local") -> Iterator[None]:
    token = _actor.set(Actor(who, origin))
    try:
        yield
    finally:
        _actor.reset(token)


@dataclass(frozen=True)
class Entry:
    """What one audit row says happened: ``action`` on ``target`` in ``tenant``, with
    ``detail`` (names of what changed or was read, never the values)."""

    tenant: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    who: str | None = None  # done for someone other than the task's actor (a device)


@dataclass(frozen=True)
class Row:
    seq: int
    at: str
    tenant: str
    who: str
    origin: str
    action: str
    target: str
    detail: str  # compact JSON
    hash: str

    def fields(self) -> tuple[Any, ...]:
        return (self.seq, self.at, self.tenant, self.who, self.origin, self.action,
                self.target, self.detail, self.hash)


def row_hash(prev: str, seq: int, at: str, tenant: str, who: str, origin: str,
             action: str, target: str, detail: str) -> str:
    body = orjson.dumps([seq, at, tenant, who, origin, action, target, detail])
    return hashlib.sha256(prev.encode("ascii") + b"\n" + body).hexdigest()


def chain(head: tuple[int, str] | None, at: str, actor: Actor,
          entries: Sequence[Entry]) -> list[Row]:
    """The rows that append ``entries`` after ``head`` (the last row's seq and hash, or
    None for an empty log)."""
    seq, prev = head if head is not None else (0, GENESIS)
    rows = []
    for entry in entries:
        seq += 1
        detail = orjson.dumps(entry.detail, option=orjson.OPT_SORT_KEYS).decode()
        who = entry.who or actor.who
        digest = row_hash(prev, seq, at, entry.tenant, who, actor.origin,
                          entry.action, entry.target, detail)
        rows.append(Row(seq, at, entry.tenant, who, actor.origin, entry.action,
                        entry.target, detail, digest))
        prev = digest
    return rows


class ChangeBy:
    """A change of one entity (``Store.apply``'s change function) done for someone other
    than the task's actor: a device's measures, which the platform writes in batches of
    many devices, each logged as ``device:<id>``."""

    def __init__(self, fn: Callable[[Any], Any], who: str) -> None:
        self.fn = fn
        self.who = who

    def __call__(self, old: Any) -> Any:
        return self.fn(old)


def entity_entries(tenant: str, outcomes: Iterable[Any],
                   changes: Sequence[tuple[str, Any]] = ()) -> list[Entry]:
    """One entry per entity an ``apply`` created, updated or deleted: its types and the
    attributes that changed (expanded IRIs, as stored), and who it was done for when its
    change (``changes``, one per outcome) says (``ChangeBy``)."""
    whos = [fn.who if isinstance(fn, ChangeBy) else None for _, fn in changes]
    entries = []
    for n, o in enumerate(outcomes):
        action = _ENTITY_ACTIONS.get(o.status)
        if action is None:
            continue
        doc = o.after if o.after is not None else o.before or {}
        detail: dict[str, Any] = {"type": list(doc.get("type", ()))}
        if o.status == "updated":
            detail["attrs"] = _changed(o.before or {}, o.after or {})
        entries.append(Entry(tenant, action, o.id, detail, whos[n] if n < len(whos) else None))
    return entries


def context_entry(action: str, url: str, kind: str | None = None) -> Entry:
    """@contexts belong to the whole instance: their rows name no tenant."""
    return Entry("", action, url, {"kind": kind} if kind else {})


def history_add_entry(tenant: str, eid: str, attrs: dict[str, list[dict]]) -> Entry:
    return Entry(tenant, "history.add", eid, {
        "attrs": sorted(attrs),
        "instances": sum(len(v) for v in attrs.values())})


def history_attribute_entry(tenant: str, eid: str, iri: str, dataset: str | None) -> Entry:
    detail: dict[str, Any] = {"attr": iri}
    if dataset is not None:
        detail["datasetId"] = dataset
    return Entry(tenant, "history.delete-attribute", eid, detail)


def history_instance_entry(tenant: str, eid: str, iri: str, iid: int) -> Entry:
    return Entry(tenant, "history.change-instance", eid,
                 {"attr": iri, "instanceId": iid})


def prune_entry(deleted: int, written: int) -> Entry:
    return Entry("", "history.prune", "", {"deleted": deleted, "downsampled": written})


def personal_read_entry(tenant: str, target: str, what: str) -> Entry:
    """A read of personal data (who made a report, who wrote a comment)."""
    return Entry(tenant, "personal.read", target, {"field": what})


@dataclass(frozen=True)
class Filter:
    """Which rows a listing wants; ``newest_first`` lists from the end of the log."""

    tenant: str | None = None
    target: str | None = None
    who: str | None = None
    action: str | None = None  # "entity" matches entity.create, entity.update...
    newest_first: bool = False


COLUMNS = "seq, at, tenant, who, origin, action, target, detail, hash"


def select_sql(after: int, limit: int, where: Filter | None,
               mark: str) -> tuple[str, list[Any]]:
    """The query both backends run (``mark``: their parameter placeholder); only
    parameters carry values."""
    f = where or Filter()
    clauses: list[str] = [f"seq > {mark}"]
    params: list[Any] = [after]
    for column, value in (("tenant", f.tenant), ("target", f.target), ("who", f.who)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if f.action is not None:
        clauses.append(f"(action = {mark} OR substr(action, 1, {mark}) = {mark})")
        params.extend([f.action, len(f.action) + 1, f.action + "."])
    order = "DESC" if f.newest_first else "ASC"
    params.append(limit)
    return (f"SELECT {COLUMNS} FROM audit_log WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq {order} LIMIT {mark}", params)


def _changed(before: dict, after: dict) -> list[str]:
    names = (set(before) | set(after)) - _SYSTEM_KEYS
    return sorted(n for n in names if before.get(n) != after.get(n))


@dataclass
class Verification:
    rows: int = 0
    head: str = GENESIS
    broken_at: int | None = None
    reason: str = ""
    # With an anchor (a head recorded earlier): whether the chain still passes through it.
    anchor_found: bool | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None and self.anchor_found is not False


def verify(rows: Iterable[Row], anchor: str | None = None) -> Verification:
    """Walk the chain from its first row: the first row whose number or hash is not what
    the rows before it make it, or the count and the head hash of an intact chain; with
    ``anchor``, also whether one of its rows has that hash (rows cut from the end of the
    log since the anchor was recorded take it away)."""
    result = Verification()
    expected_seq, prev = 1, GENESIS
    if anchor is not None:
        result.anchor_found = anchor == GENESIS
    for row in rows:
        if row.seq != expected_seq:
            result.broken_at = expected_seq
            result.reason = (f"row {expected_seq} is missing (the next row is {row.seq})"
                             if row.seq > expected_seq else f"row {row.seq} is out of order")
            return result
        digest = row_hash(prev, row.seq, row.at, row.tenant, row.who, row.origin,
                          row.action, row.target, row.detail)
        if digest != row.hash:
            result.broken_at = row.seq
            result.reason = f"row {row.seq} does not match its hash: it was changed"
            return result
        result.rows += 1
        prev = digest
        expected_seq += 1
        if anchor is not None and digest == anchor:
            result.anchor_found = True
    result.head = prev
    return result


def stored(store: Any, batch: int = 5000) -> Iterator[Row]:
    """Every row of a store's audit log, in chain order."""
    after = 0
    while rows := store.audit_rows(after=after, limit=batch):
        yield from rows
        after = rows[-1].seq
