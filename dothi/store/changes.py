"""What every backend does the same way inside a write: run the change functions over the
current documents, and keep the per-type summary of types and attributes up to date.

A backend reads the current documents, calls ``run_changes``, then persists the final
documents and ``expand_stats`` of the returned counter in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from dothi.errors import BadRequestData, DothiError
from dothi.store.base import UNCHANGED, ChangeFn, Outcome

# Geometries an entity may hold: each GeoProperty instance is one row of the geo index.
GEO_SLOTS = 64

Signature = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


def run_changes(
    changes: Sequence[tuple[str, ChangeFn]], current: dict[str, dict | None],
) -> tuple[list[Outcome], Counter[Signature]]:
    """Apply each change in order to ``current`` (id -> document or None, updated in
    place to the final state): the outcomes and the summary changes they make."""
    outcomes: list[Outcome] = []
    stats: Counter[Signature] = Counter()
    for eid, fn in changes:
        before = current.get(eid)
        try:
            after = fn(before)
        except DothiError as exc:
            outcomes.append(Outcome(eid, "failed", exc, before, before))
            continue
        if after is UNCHANGED:
            outcomes.append(Outcome(eid, "unchanged", None, before, before))
            continue
        if after is None:
            if before is None:
                outcomes.append(Outcome(eid, "unchanged", None, None, None))
                continue
            current[eid] = None
            count(stats, before, -1)
            outcomes.append(Outcome(eid, "deleted", None, before, None))
            continue
        assert isinstance(after, dict)
        current[eid] = after
        outcomes.append(Outcome(eid, "created" if before is None else "updated", None,
                                before, after))
        count(stats, before, -1)
        count(stats, after, +1)
    return outcomes, stats


def new_instances(outcome: Outcome) -> list[tuple[str, dict]]:
    """(attribute IRI, instance) of what a created or updated entity got in this change:
    the instances stamped with the entity's new modifiedAt that it did not already hold
    before the change. Two changes of one entity in one batch share that stamp; without
    the second test, the instances of the first were kept in history twice."""
    doc = outcome.after
    if outcome.status not in ("created", "updated") or doc is None:
        return []
    now = doc.get("modifiedAt")
    before = outcome.before or {}
    out: list[tuple[str, dict]] = []
    for key, instances in doc.items():
        if ":" not in key:
            continue
        held = before.get(key, ())
        for inst in instances:
            if inst.get("modifiedAt", now) == now and not any(inst is h for h in held):
                out.append((key, inst))
    return out


def count(stats: Counter[Signature], doc: dict | None, sign: int) -> None:
    """Count the entity under its signature (types, attribute/kind pairs): batches hold
    few distinct signatures, so the per-type summary is updated once per signature."""
    if doc is None or not doc.get("type"):
        return
    pairs: list[tuple[str, str]] = []
    for key, instances in doc.items():
        if ":" in key:
            if len(instances) == 1:
                pairs.append((key, instances[0].get("type", "Property")))
            else:
                pairs.extend((key, k) for k in sorted({i.get("type", "Property")
                                                       for i in instances}))
    stats[(tuple(doc["type"]), tuple(pairs))] += sign


def expand_stats(stats: Counter[Signature]) -> list[tuple[str, str, str, int]]:
    """(type, attribute IRI or "", attribute kind or "", change in entities), in a fixed
    order so that concurrent writers lock summary rows in the same order."""
    out: Counter[tuple[str, str, str]] = Counter()
    for (types, pairs), n in stats.items():
        if not n:
            continue
        for etype in types:
            out[(etype, "", "")] += n
            for attr, kind in pairs:
                out[(etype, attr, kind)] += n
    return [(t, a, k, n) for (t, a, k), n in sorted(out.items()) if n]


def geo_instances(doc: dict) -> list[tuple[int, str, dict]]:
    """(slot, attribute IRI, GeoJSON) of every indexed GeoProperty instance, in a stable
    order so that the slots of a stored document can be recomputed from it."""
    out: list[tuple[int, str, dict]] = []
    for key, instances in doc.items():
        if ":" not in key:
            continue
        for inst in instances:
            if inst.get("type") == "GeoProperty" and isinstance(inst.get("value"), dict):
                if len(out) == GEO_SLOTS:
                    raise BadRequestData(
                        f"An entity may hold at most {GEO_SLOTS} geometries")
                out.append((len(out), key, inst["value"]))
    return out
