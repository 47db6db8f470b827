"""Moving a whole instance (every tenant, its history, subscriptions, outbox,
registrations and @contexts) from one database to another, SQLite or PostgreSQL in
either direction, then proving nothing was lost: ``dothi migrate-store``.

Each backend reads and writes its own tables in bulk (``sqlite_transfer``,
``postgres_transfer``, same methods and row shapes); this module drives them. Entities
are created in their creation order with the index rows the target keeps (types,
geometries, the /types summary), without history or notifications; history goes
straight to the tables with the same instance ids, which clients hold as
``urn:ngsi-ld:attribute-instance:<iid>``. Stop the source's writers first: the copy
reads one snapshot of it, and the comparison, which reads it again, would report
whatever they changed in between.

Afterwards ``compare`` reads both stores again and computes, per kind of record, a count
and a checksum over a canonical form of every row; the migration is good when all agree.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Rows = list[tuple[Any, ...]]

ENTITY_BATCH = 500
ROW_BATCH = 5000
# The kinds of records copied and compared, in the order they are copied.
COPIED = ("tenants", "contexts", "entities", "temporal entities", "instances",
          "subscriptions", "notifications", "registrations", "audit rows")
# Derived rows the target rebuilds itself, compared too (except with an export, which
# leaves them out).
REBUILT = ("type summary", "indexes")
EXPORT = "export:"  # a folder of open files (dothi.store.export)


class Refused(Exception):
    """The migration cannot start (bad URL, missing source, target not empty): nothing
    was written."""


class Side(Protocol):
    """One database as a migration reads or writes it (see ``sqlite_transfer``)."""

    def close(self) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def tenants(self, batch: int) -> Iterator[Rows]: ...
    def contexts(self, batch: int) -> Iterator[Rows]: ...
    def entities(self, batch: int) -> Iterator[Rows]: ...
    def temporal_entities(self, batch: int) -> Iterator[Rows]: ...
    def attributes(self) -> dict[int, str]: ...
    def instances(self, batch: int) -> Iterator[Rows]: ...
    def iid_high_water(self) -> int: ...
    def subscriptions(self, batch: int) -> Iterator[Rows]: ...
    def notifications(self, batch: int) -> Iterator[Rows]: ...
    def registrations(self, batch: int) -> Iterator[Rows]: ...
    def audit(self, batch: int) -> Iterator[Rows]: ...
    def type_summary(self, batch: int) -> Iterator[Rows]: ...
    def indexes(self, batch: int) -> Iterator[Rows]: ...
    def write_tenants(self, rows: Rows) -> None: ...
    def write_entities(self, tenant: str, rows: Rows) -> list[tuple[str, str]]: ...
    def write_contexts(self, rows: Rows) -> None: ...
    def write_temporal_entities(self, rows: Rows) -> None: ...
    def attribute_ids(self, iris: list[str]) -> dict[str, int]: ...
    def write_instances(self, rows: Rows) -> None: ...
    def write_subscriptions(self, rows: Rows) -> None: ...
    def write_notifications(self, rows: Rows) -> None: ...
    def write_registrations(self, rows: Rows) -> None: ...
    def write_audit(self, rows: Rows) -> None: ...
    def finish(self, iid_high_water: int) -> None: ...


class Reporter(Protocol):
    """Progress: one task per kind of record, its total known before it starts."""

    def start(self, task: str, total: int) -> None: ...
    def advance(self, task: str, n: int) -> None: ...


class _Silent:
    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, n: int) -> None:
        pass


def normalize_url(url: str) -> str:
    """A database URL, or ``export:FOLDER`` (``dothi.store.export``); a plain path is a
    SQLite file (as ``--db`` takes it)."""
    if url.startswith(EXPORT):
        return url
    url = url if "://" in url else f"sqlite:///{url}"
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise Refused(f"Unknown database URL {url!r}: use sqlite:///path.db, "
                      "postgresql://user@host/database or export:FOLDER")
    return url


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def open_side(url: str, *, readonly: bool) -> Side:
    if url.startswith(EXPORT):
        from dothi.store.export import ExportSide

        return ExportSide(url, readonly=readonly)
    if _is_sqlite(url):
        from dothi.store.sqlite_transfer import SQLiteSide

        return SQLiteSide(url, readonly=readonly)
    from dothi.store.postgres_transfer import PostgresSide

    return PostgresSide(url, readonly=readonly)


def occupied(url: str) -> dict[str, int]:
    """What the database at ``url`` holds that a migration target must not (read only)."""
    if url.startswith(EXPORT):
        from dothi.store import export

        found = export.occupied(url)
    elif _is_sqlite(url):
        from dothi.store import sqlite_transfer

        found = sqlite_transfer.occupied(url)
    else:
        from dothi.store import postgres_transfer

        found = postgres_transfer.occupied(url)
    return {kind: n for kind, n in found.items() if n}


def _same_database(a: str, b: str) -> bool:
    if a.startswith(EXPORT) or b.startswith(EXPORT):
        return a == b
    if _is_sqlite(a) and _is_sqlite(b):
        from pathlib import Path

        from dothi.store.sqlite_transfer import path_from_url

        return Path(path_from_url(a)).resolve() == Path(path_from_url(b)).resolve()
    return a.replace("postgres://", "postgresql://", 1) == b.replace(
        "postgres://", "postgresql://", 1)


# -- copying ----------------------------------------------------------------------------


@dataclass
class Copied:
    rows: dict[str, int] = field(default_factory=dict)  # kind -> rows written
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # tenant, id, error
    seconds: float = 0.0
    # With ``in_snapshot``: the copy compared with the source's snapshot it was read from.
    checks: list[Check] = field(default_factory=list)


def copy_store(source_url: str, target_url: str, reporter: Reporter | None = None, *,
               in_snapshot: bool = False) -> Copied:
    """Copy everything from the source to the (empty) target; raises ``Refused`` before
    writing anything if it cannot start. Entities the target refuses are listed in
    ``failed`` (the comparison will report them missing too).

    ``in_snapshot`` (an online backup): the source's checksums are read within the same
    snapshot as the copy and compared with the target's, so writers need not stop."""
    began = time.monotonic()
    progress = reporter or _Silent()
    source_url, target_url = normalize_url(source_url), normalize_url(target_url)
    if _same_database(source_url, target_url):
        raise Refused("The source and the target are the same database")
    try:
        source = open_side(source_url, readonly=True)
    except Exception as exc:  # whatever stops reading it, said plainly
        raise Refused(f"Cannot read the source {source_url}: {exc}") from exc
    try:
        try:
            full = occupied(target_url)
        except Exception as exc:  # likewise
            raise Refused(f"Cannot open the target {target_url}: {exc}") from exc
        if full:
            held = ", ".join(f"{n} {kind}" for kind, n in full.items())
            raise Refused(f"The target {target_url} is not empty ({held}): migrate into a "
                          "new or emptied database")
        totals = source.counts()
        for kind in COPIED:
            progress.start(kind, totals.get(kind, 0))
        target = open_side(target_url, readonly=False)
        try:
            copied = _copy(source, target, progress)
        finally:
            target.close()
        if in_snapshot:
            copied.checks = _checks(checksums(source, reporter, "checking source"),
                                    _sums(target_url, reporter, "checking copy"),
                                    _kinds(source_url, target_url))
    finally:
        source.close()
    copied.seconds = time.monotonic() - began
    return copied


def _copy(source: Side, target: Side, progress: Reporter) -> Copied:
    out = Copied()

    def each(kind: str, batches: Iterator[Rows], write: Callable[[Rows], None]) -> None:
        out.rows[kind] = 0
        for rows in batches:
            write(rows)
            out.rows[kind] += len(rows)
            progress.advance(kind, len(rows))

    each("tenants", source.tenants(ROW_BATCH), target.write_tenants)
    each("contexts", source.contexts(ROW_BATCH), target.write_contexts)
    out.rows["entities"] = _copy_entities(source, target, progress, out.failed)
    each("temporal entities", source.temporal_entities(ROW_BATCH),
         target.write_temporal_entities)
    attributes = source.attributes()
    aids = target.attribute_ids(sorted(set(attributes.values())))
    renumber = {aid: aids[iri] for aid, iri in attributes.items()}
    each("instances", source.instances(ROW_BATCH), lambda rows: target.write_instances(
        [(r[0], r[1], renumber[r[2]], *r[3:]) for r in rows]))
    each("subscriptions", source.subscriptions(ROW_BATCH), target.write_subscriptions)
    each("notifications", source.notifications(ROW_BATCH), target.write_notifications)
    each("registrations", source.registrations(ROW_BATCH), target.write_registrations)
    # The log as it is, with its hashes: the copy verifies as the source does. (The
    # target's store writes no rows of its own for the copy.)
    each("audit rows", source.audit(ROW_BATCH), target.write_audit)
    target.finish(source.iid_high_water())
    return out


def _copy_entities(source: Side, target: Side, progress: Reporter,
                   failed: list[tuple[str, str, str]]) -> int:
    """A batch per tenant, each tenant's entities in creation order."""
    written = 0
    pending: dict[str, Rows] = {}

    def flush(tenant: str) -> None:
        nonlocal written
        rows = pending.pop(tenant, [])
        refused = target.write_entities(tenant, rows)
        failed.extend((tenant, eid, error) for eid, error in refused)
        written += len(rows) - len(refused)
        progress.advance("entities", len(rows))

    for rows in source.entities(ENTITY_BATCH):
        for tenant, eid, doc in rows:
            batch = pending.setdefault(tenant, [])
            batch.append((eid, doc))
            if len(batch) >= ENTITY_BATCH:
                flush(tenant)
    for tenant in list(pending):
        flush(tenant)
    return written


# -- comparing --------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """JSON as both backends give it back for equal data. PostgreSQL's jsonb keeps
    numbers as numerics and keys in an order of its own: 1.0 and 1e20 come back as
    1.0 and 100000000000000000000, where SQLite keeps the text written. So whole
    numbers become ints (beyond 64 bits they stay floats, as orjson reads such a
    numeric back), and documents are dumped with sorted keys."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() and abs(value) < 2**63 else value
    if kind is dict:
        return {k: canonical(v) for k, v in value.items()}
    if kind is list:
        return [canonical(v) for v in value]
    return value


def _doc(text: bytes | str | None) -> Any:
    return None if text is None else canonical(orjson.loads(text))


class Digest:
    """A count and a checksum over rows in any order: the sum, modulo 2**256, of the
    sha256 of each row's canonical JSON. Kinds whose order matters (entities by
    creation, subscriptions, ...) put each row's position in the row itself."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, row: Any) -> None:
        digest = hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).digest()
        self._sum = (self._sum + int.from_bytes(digest, "big")) % 2**256
        self.count += 1

    @property
    def hex(self) -> str:
        return f"{self._sum:064x}"


def checksums(side: Side, reporter: Reporter | None = None,
              task: str = "checksums") -> dict[str, Digest]:
    """Count and checksum every kind of record that a migration copies or rebuilds."""
    progress = reporter or _Silent()
    counts = side.counts()
    progress.start(task, sum(counts.get(k, 0) for k in (*COPIED, *REBUILT)))
    out = {kind: Digest() for kind in (*COPIED, *REBUILT)}

    def each(kind: str, batches: Iterator[Rows], row: Callable[[tuple[Any, ...]], Any]) -> None:
        digest = out[kind]
        for rows in batches:
            for r in rows:
                digest.add(row(r))
            progress.advance(task, len(rows))

    def ordered(kind: str, batches: Iterator[Rows],
                row: Callable[[int, tuple[Any, ...]], Any]) -> None:
        """Rows in their stored order, numbered per tenant (the first column)."""
        position: dict[str, int] = {}

        def numbered(r: tuple[Any, ...]) -> Any:
            n = position[r[0]] = position.get(r[0], -1) + 1
            return row(n, r)

        each(kind, batches, numbered)

    each("tenants", side.tenants(ROW_BATCH), list)
    each("contexts", side.contexts(ROW_BATCH),
         lambda r: [r[0], _doc(r[1]), r[2], r[3]])
    ordered("entities", side.entities(ROW_BATCH), lambda n, r: [r[0], n, r[1], _doc(r[2])])
    where: dict[int, tuple[str, str]] = {}

    def temporal(r: tuple[Any, ...]) -> Any:
        where[r[0]] = (r[1], r[2])
        return [r[1], r[2], list(r[3])]

    each("temporal entities", side.temporal_entities(ROW_BATCH), temporal)
    iris = side.attributes()
    # Instances by their entity and attribute IRI, not the tid and aid behind them.
    each("instances", side.instances(ROW_BATCH), lambda r: [
        *where.get(r[1], (None, str(r[1]))), iris.get(r[2], str(r[2])), r[0], r[4], r[5],
        r[6], r[3], canonical(r[7]), _doc(r[8])])
    ordered("subscriptions", side.subscriptions(ROW_BATCH),
            lambda n, r: [r[0], n, r[1], r[2], _doc(r[3]), *r[4:]])
    ordered("notifications", side.notifications(ROW_BATCH),
            lambda n, r: [r[0], n, *r[1:5], hashlib.sha256(r[5]).hexdigest()])
    ordered("registrations", side.registrations(ROW_BATCH),
            lambda n, r: [r[0], n, r[1], _doc(r[2])])
    each("audit rows", side.audit(ROW_BATCH), list)
    each("type summary", side.type_summary(ROW_BATCH), list)
    each("indexes", side.indexes(ROW_BATCH), list)
    return out


@dataclass
class Check:
    kind: str
    source_count: int
    target_count: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_count == self.target_count and self.source_sum == self.target_sum


def compare(source_url: str, target_url: str, reporter: Reporter | None = None) -> list[Check]:
    """Read both stores again and compare count and checksum of every kind (the copied
    ones only when one of them is an export)."""
    return _checks(_sums(source_url, reporter, "checking source"),
                   _sums(target_url, reporter, "checking target"),
                   _kinds(source_url, target_url))


def _kinds(source_url: str, target_url: str) -> tuple[str, ...]:
    exported = source_url.startswith(EXPORT) or target_url.startswith(EXPORT)
    return COPIED if exported else (*COPIED, *REBUILT)


def _sums(url: str, reporter: Reporter | None, task: str) -> dict[str, Digest]:
    side = open_side(normalize_url(url), readonly=True)
    try:
        return checksums(side, reporter, task)
    finally:
        side.close()


def _checks(source: dict[str, Digest], target: dict[str, Digest],
            kinds: tuple[str, ...]) -> list[Check]:
    return [Check(kind, source[kind].count, target[kind].count, source[kind].hex,
                  target[kind].hex) for kind in kinds]
