"""An instance exported to a folder of open files, and read back: one side of
``dothi.store.migrate``, so that exporting is migrating to a folder (``export:PATH``) and
importing is migrating from one, with the same comparison of counts and checksums.

The folder holds JSON Lines files, one JSON object per line, UTF-8:

- ``tenants.jsonl``: ``name``, ``createdAt``;
- ``contexts.jsonl``: the @contexts kept for offline use: ``url``, ``kind``, ``createdAt``,
  ``document``;
- ``entities.jsonl``: ``tenant`` and ``entity``, an NGSI-LD entity in expanded JSON-LD
  (full IRIs, every attribute with its own createdAt and modifiedAt), in the order they
  were created;
- ``temporal-entities.jsonl``: the entities with history, ``tid`` (a number the instances
  refer to), ``tenant``, ``id``, ``types``;
- ``instances.jsonl``: every attribute instance of the history: ``instanceId`` (the number
  in ``urn:ngsi-ld:attribute-instance:N``), ``tid``, ``attribute`` (its IRI),
  ``datasetId``, ``time`` (its observedAt, else when it was created), ``created`` and
  ``modified`` (milliseconds since 1970, UTC), ``number`` (its value if a number) and
  ``instance`` (the attribute instance in expanded JSON-LD);
- ``subscriptions.jsonl``, ``registrations.jsonl``, ``notifications.jsonl`` (pending
  notifications, ``payload`` the body as text);
- ``audit.jsonl``: the audit log (``dothi.store.audit``), its rows as stored: ``seq``,
  ``at``, ``tenant``, ``who``, ``origin``, ``action``, ``target``, ``detail`` (JSON as
  text, hashed as such) and ``hash``;
- ``manifest.json``: what the export holds, its counts and when it was made.

Derived rows (the /types summary, the indexes) are not exported: an import builds them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from dothi import __version__
from dothi.ngsild.entity import deflate, inflate
from dothi.store import audit

Rows = list[tuple[Any, ...]]
SCHEME = "export:"
FORMAT = "dothi-instance-export"
VERSION = 1
FILES = {"tenants": "tenants.jsonl", "contexts": "contexts.jsonl",
         "entities": "entities.jsonl", "temporal entities": "temporal-entities.jsonl",
         "instances": "instances.jsonl", "subscriptions": "subscriptions.jsonl",
         "notifications": "notifications.jsonl", "registrations": "registrations.jsonl",
         "audit rows": "audit.jsonl"}
MANIFEST = "manifest.json"
AUDIT_FIELDS = tuple(audit.COLUMNS.split(", "))


def folder_of(url: str) -> Path:
    return Path(url[len(SCHEME):]).expanduser()


def occupied(url: str) -> dict[str, int]:
    """A folder that holds anything is not a place to export to."""
    folder = folder_of(url)
    if folder.exists() and not folder.is_dir():
        return {"a file at that path": 1}
    found = sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    return {"files": found}


def _loads(value: Any) -> Any:
    """A JSON document as a backend gives it: text or bytes (SQLite), or already parsed
    (PostgreSQL's jsonb)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return orjson.loads(bytes(value))
    return orjson.loads(value) if isinstance(value, str) else value


class ExportSide:
    """A folder seen by a migration: ``readonly`` to read an export, else to write one."""

    def __init__(self, url: str, *, readonly: bool) -> None:
        self.folder = folder_of(url)
        self.readonly = readonly
        self._attributes: dict[int, str] = {}
        self._files: dict[str, IO[bytes]] = {}
        self._written: dict[str, int] = {}
        if readonly:
            manifest = self.folder / MANIFEST
            if not manifest.is_file():
                raise FileNotFoundError(f"No dothi export at {self.folder} ({MANIFEST} missing)")
            self.manifest = orjson.loads(manifest.read_bytes())
            if self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
                raise ValueError(f"{manifest}: not a {FORMAT} of version {VERSION}")
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.manifest = {}

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        if not self.readonly:
            (self.folder / MANIFEST).write_bytes(orjson.dumps({
                "format": FORMAT, "version": VERSION, "dothi": __version__,
                "exportedAt": datetime.now(UTC).isoformat(timespec="seconds").replace(
                    "+00:00", "Z"),
                "counts": {kind: self._written.get(kind, 0) for kind in FILES},
                "files": FILES, "instanceIdHighWater": self.manifest.get("iid", 0),
            }, option=orjson.OPT_INDENT_2))

    # -- reading ---------------------------------------------------------------------------

    def _lines(self, kind: str, batch: int) -> Iterator[list[dict[str, Any]]]:
        path = self.folder / FILES[kind]
        if not path.exists():
            return
        with path.open("rb") as f:
            rows: list[dict[str, Any]] = []
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}, line {n}: {exc}") from None
                if len(rows) >= batch:
                    yield rows
                    rows = []
            if rows:
                yield rows

    def counts(self) -> dict[str, int]:
        return {kind: int(n) for kind, n in self.manifest.get("counts", {}).items()}

    def tenants(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("tenants", batch):
            yield [(r["name"], r["createdAt"]) for r in rows]

    def contexts(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("contexts", batch):
            yield [(r["url"], orjson.dumps(r["document"]).decode(), r["kind"], r["createdAt"])
                   for r in rows]

    def entities(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("entities", batch):
            yield [(r["tenant"], r["entity"]["id"], orjson.dumps(deflate(r["entity"])))
                   for r in rows]

    def temporal_entities(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("temporal entities", batch):
            yield [(r["tid"], r["tenant"], r["id"], r["types"]) for r in rows]

    def attributes(self) -> dict[int, str]:
        """This side's own numbering of the attribute IRIs, made on a first pass."""
        if not self._attributes:
            iris = sorted({r["attribute"] for rows in self._lines("instances", 5000)
                           for r in rows})
            self._attributes = dict(enumerate(iris, start=1))
        return self._attributes

    def instances(self, batch: int) -> Iterator[Rows]:
        aid = {iri: n for n, iri in self.attributes().items()}
        for rows in self._lines("instances", batch):
            yield [(r["instanceId"], r["tid"], aid[r["attribute"]], r["datasetId"], r["time"],
                    r["created"], r["modified"], r["number"], orjson.dumps(r["instance"]))
                   for r in rows]

    def iid_high_water(self) -> int:
        return int(self.manifest.get("instanceIdHighWater", 0))

    def subscriptions(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("subscriptions", batch):
            yield [(r["tenant"], r["id"], r["kind"], orjson.dumps(r["subscription"]),
                    r["timesSent"], r["timesFailed"], r["lastNotification"], r["lastSuccess"],
                    r["lastFailure"], r["nextDue"]) for r in rows]

    def notifications(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("notifications", batch):
            yield [(r["tenant"], r["subscription"], r["reason"], r["due"], r["attempts"],
                    r["payload"].encode()) for r in rows]

    def registrations(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("registrations", batch):
            yield [(r["tenant"], r["id"], orjson.dumps(r["registration"])) for r in rows]

    def audit(self, batch: int) -> Iterator[Rows]:
        for rows in self._lines("audit rows", batch):
            yield [tuple(r[c] for c in AUDIT_FIELDS) for r in rows]

    def type_summary(self, batch: int) -> Iterator[Rows]:
        return iter(())  # derived: an import rebuilds it

    def indexes(self, batch: int) -> Iterator[Rows]:
        return iter(())

    # -- writing ---------------------------------------------------------------------------

    def _write(self, kind: str, rows: list[dict[str, Any]]) -> None:
        f = self._files.get(kind)
        if f is None:
            f = self._files[kind] = (self.folder / FILES[kind]).open("wb")
        for row in rows:
            f.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        self._written[kind] = self._written.get(kind, 0) + len(rows)

    def write_tenants(self, rows: Rows) -> None:
        self._write("tenants", [{"name": n, "createdAt": c} for n, c in rows])

    def write_contexts(self, rows: Rows) -> None:
        self._write("contexts", [{"url": url, "kind": kind, "createdAt": created,
                                  "document": _loads(doc)} for url, doc, kind, created in rows])

    def write_entities(self, tenant: str, rows: Rows) -> list[tuple[str, str]]:
        self._write("entities", [{"tenant": tenant, "entity": inflate(_loads(doc))}
                                 for _eid, doc in rows])
        return []

    def write_temporal_entities(self, rows: Rows) -> None:
        self._write("temporal entities", [{"tid": tid, "tenant": tenant, "id": eid,
                                           "types": list(types)}
                                          for tid, tenant, eid, types in rows])

    def attribute_ids(self, iris: list[str]) -> dict[str, int]:
        self._attributes = dict(enumerate(iris, start=1))
        return {iri: n for n, iri in self._attributes.items()}

    def write_instances(self, rows: Rows) -> None:
        self._write("instances", [{
            "instanceId": r[0], "tid": r[1], "attribute": self._attributes[r[2]],
            "datasetId": r[3], "time": r[4], "created": r[5], "modified": r[6],
            "number": r[7], "instance": _loads(r[8])} for r in rows])

    def write_subscriptions(self, rows: Rows) -> None:
        self._write("subscriptions", [{
            "tenant": r[0], "id": r[1], "kind": r[2], "subscription": _loads(r[3]),
            "timesSent": r[4], "timesFailed": r[5], "lastNotification": r[6],
            "lastSuccess": r[7], "lastFailure": r[8], "nextDue": r[9]} for r in rows])

    def write_notifications(self, rows: Rows) -> None:
        self._write("notifications", [{
            "tenant": r[0], "subscription": r[1], "reason": r[2], "due": r[3],
            "attempts": r[4], "payload": bytes(r[5]).decode()} for r in rows])

    def write_registrations(self, rows: Rows) -> None:
        self._write("registrations", [{"tenant": t, "id": rid, "registration": _loads(doc)}
                                      for t, rid, doc in rows])

    def write_audit(self, rows: Rows) -> None:
        self._write("audit rows", [dict(zip(AUDIT_FIELDS, r, strict=True)) for r in rows])

    def finish(self, iid_high_water: int) -> None:
        self.manifest["iid"] = iid_high_water
