"""Pure functions that combine a stored entity with a change (append, update, partial update,
merge-patch, replace, delete) — the semantics of clauses 5.6.3–5.6.18, without I/O."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dothi.errors import ResourceNotFound
from dothi.ngsild.entity import NULL

Instances = list[dict]


def _ds(inst: dict) -> str | None:
    return inst.get("datasetId")


def _find(instances: Instances, dataset_id: str | None) -> int:
    for i, inst in enumerate(instances):
        if _ds(inst) == dataset_id:
            return i
    return -1


def _keep_created(new: dict, old: dict) -> dict:
    if "createdAt" in old:
        new["createdAt"] = old["createdAt"]
    return new


def append(
    doc: dict, attrs: dict[str, Instances], now: str, *, overwrite: bool
) -> tuple[dict, list[str]]:
    """Append Entity Attributes: add new attributes/instances; replace existing ones unless
    ``noOverwrite``. Returns (new doc, IRIs not updated)."""
    out = copy.copy(doc)
    not_updated: list[str] = []
    for iri, new_instances in attrs.items():
        current = list(out.get(iri, ()))
        skipped = False
        for inst in new_instances:
            pos = _find(current, _ds(inst))
            if pos < 0:
                current.append(inst)
            elif overwrite:
                current[pos] = _keep_created(inst, current[pos])
            else:
                skipped = True
        if skipped:
            not_updated.append(iri)
        out[iri] = current
    out["modifiedAt"] = now
    return out, not_updated


def update(doc: dict, attrs: dict[str, Instances], now: str) -> tuple[dict, list[str]]:
    """Update Entity Attributes: only instances that exist are replaced."""
    out = copy.copy(doc)
    not_updated: list[str] = []
    for iri, new_instances in attrs.items():
        current = out.get(iri)
        if current is None:
            not_updated.append(iri)
            continue
        current = list(current)
        missed = False
        for inst in new_instances:
            pos = _find(current, _ds(inst))
            if pos < 0:
                missed = True
            else:
                current[pos] = _keep_created(inst, current[pos])
        if missed:
            not_updated.append(iri)
        out[iri] = current
    out["modifiedAt"] = now
    return out, not_updated


def patch_attribute(doc: dict, iri: str, fragment: Instances, now: str, name: str) -> dict:
    """Partial Attribute update: members of the instance are overwritten, others kept."""
    return _change_instances(doc, iri, fragment, now, name,
                             lambda old, new: _merge_instance(old, new, now))


def _change_instances(
    doc: dict, iri: str, instances: Instances, now: str, name: str,
    combine: Callable[[dict, dict], dict],
) -> dict:
    """Apply ``combine(old, new)`` to existing instances only; a missing attribute or
    datasetId is a 404 and changes nothing."""
    current = doc.get(iri)
    if current is None:
        raise ResourceNotFound(f"Entity {doc['id']} has no attribute {name}")
    out = copy.copy(doc)
    current = list(current)
    for inst in instances:
        pos = _find(current, _ds(inst))
        if pos < 0:
            raise ResourceNotFound(
                f"Attribute {name} of {doc['id']} has no instance with datasetId {_ds(inst)!r}"
            )
        current[pos] = combine(current[pos], inst)
    out[iri] = current
    out["modifiedAt"] = now
    return out


def _merge_instance(old: dict, new: dict, now: str) -> dict:
    merged = dict(old)
    for key, value in new.items():
        if key == "createdAt":
            continue
        if isinstance(value, dict) and value.get("value") == NULL or value == NULL:
            merged.pop(key, None)
            continue
        if ":" in key and key in old and isinstance(value, dict):
            merged[key] = _merge_instance(old[key], value, now)
            continue
        merged[key] = value
    if new.get("type") and new["type"] != old.get("type"):
        # A different attribute type means a different value member: drop the old one.
        for member in ("value", "object", "languageMap", "valueList", "objectList", "json",
                       "vocab"):
            if member in merged and member not in new:
                merged.pop(member)
    merged["modifiedAt"] = now
    return merged


def merge_patch(doc: dict, body_types: list[str] | None, scope: list[str] | None,
                attrs: dict[str, Instances], now: str) -> dict:
    """Merge Entity (clause 5.6.17): add, merge or (with urn:ngsi-ld:null) delete."""
    out = copy.copy(doc)
    if body_types:
        out["type"] = list(dict.fromkeys([*doc.get("type", []), *body_types]))
    if scope is not None:
        out["scope"] = scope
    for iri, instances in attrs.items():
        current = list(out.get(iri, ()))
        for inst in instances:
            pos = _find(current, _ds(inst))
            if inst.get("value") == NULL or inst.get("object") == NULL:
                if pos >= 0:
                    current.pop(pos)
                continue
            if pos < 0:
                current.append(inst)
            else:
                current[pos] = _merge_instance(current[pos], inst, now)
        if current:
            out[iri] = current
        else:
            out.pop(iri, None)
    out["modifiedAt"] = now
    return out


def replace_attribute(doc: dict, iri: str, instances: Instances, now: str, name: str) -> dict:
    return _change_instances(doc, iri, instances, now, name,
                             lambda old, new: _keep_created(new, old))


def delete_attribute(
    doc: dict, iri: str, dataset_id: str | None, delete_all: bool, now: str, name: str
) -> dict:
    current = doc.get(iri)
    if current is None:
        raise ResourceNotFound(f"Entity {doc['id']} has no attribute {name}")
    out = copy.copy(doc)
    if delete_all:
        out.pop(iri)
    else:
        pos = _find(current, dataset_id)
        if pos < 0:
            what = f"datasetId {dataset_id}" if dataset_id else "default instance"
            raise ResourceNotFound(f"Attribute {name} of {doc['id']} has no {what}")
        remaining = [inst for i, inst in enumerate(current) if i != pos]
        if remaining:
            out[iri] = remaining
        else:
            out.pop(iri)
    out["modifiedAt"] = now
    return out


def replace_entity(old: dict, new: dict) -> dict:
    new = dict(new)
    if "type" not in new and "type" in old:
        new["type"] = old["type"]
    new["createdAt"] = old.get("createdAt", new["createdAt"])
    for key, instances in new.items():
        if ":" in key and key in old:
            olds = {_ds(i): i for i in old[key]}
            new[key] = [
                _keep_created(dict(i), olds[_ds(i)]) if _ds(i) in olds else i for i in instances
            ]
    return new
