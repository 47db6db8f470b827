"""From the stored form to what a client asked for: normalized, concise or simplified
(keyValues), with sysAttrs, attrs/pick/omit projection, lang and GeoJSON (clause 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dothi.errors import BadRequestData
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import ATTRIBUTE_MEMBERS, ATTRIBUTE_TYPES

FORMATS = ("normalized", "concise", "keyValues", "simplified")
_SYS = ("createdAt", "modifiedAt", "deletedAt")


@dataclass
class RenderOptions:
    fmt: str = "normalized"
    sys_attrs: bool = False
    pick: frozenset[str] | None = None  # compacted names, may include "id" and "type"
    omit: frozenset[str] | None = None
    attrs: frozenset[str] | None = None  # attribute IRIs
    lang: list[str] | None = None  # preference order; ["*"] means all languages


def parse_options(
    options: str | None, fmt: str | None
) -> tuple[str, bool]:
    """``options`` and ``format`` query parameters -> (format, sysAttrs)."""
    chosen = "normalized"
    sys_attrs = False
    seen: list[str] = []
    for raw in (options or "").split(","):
        opt = raw.strip()
        if not opt:
            continue
        seen.append(opt)
        if opt == "sysAttrs":
            sys_attrs = True
        elif opt in FORMATS:
            chosen = opt
        elif opt in ("noOverwrite", "replace", "update", "append", "noAttributes"):
            continue
        else:
            raise BadRequestData(f"Unknown option {opt!r}")
    formats = [o for o in seen if o in FORMATS]
    if len(set(formats)) > 1:
        raise BadRequestData("options may name only one representation")
    if fmt is not None:
        if fmt not in FORMATS:
            raise BadRequestData(f"Unknown format {fmt!r}")
        chosen = fmt
    if chosen == "simplified":
        chosen = "keyValues"
    return chosen, sys_attrs


def parse_lang(value: str | None) -> list[str] | None:
    if value is None:
        return None
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(value.split(",")):
        tag, _, q = part.strip().partition(";q=")
        if not tag:
            continue
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            raise BadRequestData(f"Invalid lang weight in {value!r}") from None
        prefs.append((-weight, i, tag.strip()))
    if not prefs:
        raise BadRequestData("lang must name at least one language")
    return [tag for _, _, tag in sorted(prefs)]


def render_entity(doc: dict, ctx: ActiveContext, opts: RenderOptions) -> dict[str, Any]:
    pick, omit = opts.pick, opts.omit
    out: dict[str, Any] = {}
    if _wanted("id", pick, omit):
        out["id"] = doc["id"]
    if "type" in doc and _wanted("type", pick, omit):
        types = [ctx.compact(t) for t in doc["type"]]
        out["type"] = types[0] if len(types) == 1 else types
    if "scope" in doc and _wanted("scope", pick, omit):
        out["scope"] = doc["scope"][0] if len(doc["scope"]) == 1 else doc["scope"]
    if opts.sys_attrs and opts.fmt != "keyValues":
        for key in _SYS:
            if key in doc:
                out[key] = doc[key]
    for key, instances in doc.items():
        if ":" not in key:
            continue
        if opts.attrs is not None and key not in opts.attrs:
            continue
        name = ctx.compact(key)
        if not _wanted(name, pick, omit):
            continue
        out[name] = render_attribute(instances, ctx, opts, doc)
    return out


def _wanted(name: str, pick: frozenset[str] | None, omit: frozenset[str] | None) -> bool:
    if pick is not None and name not in pick:
        return False
    return not (omit is not None and name in omit)


def render_attribute(
    instances: list[dict], ctx: ActiveContext, opts: RenderOptions, doc: dict
) -> Any:
    if opts.fmt == "keyValues":
        if len(instances) == 1:
            return simple_value(instances[0], ctx, opts)
        return {
            "dataset": {
                inst.get("datasetId", "@none"): simple_value(inst, ctx, opts)
                for inst in instances
            }
        }
    rendered = [render_instance(inst, ctx, opts, doc) for inst in instances]
    return rendered[0] if len(rendered) == 1 else rendered


def simple_value(inst: dict, ctx: ActiveContext, opts: RenderOptions) -> Any:
    atype = inst["type"]
    if atype == "LanguageProperty":
        chosen = _pick_language(inst["languageMap"], opts.lang)
        return inst["languageMap"] if chosen is None else chosen[1]
    if atype == "VocabProperty":
        return _compact_vocab(inst["vocab"], ctx)
    if atype == "ListRelationship":
        return [item["object"] for item in inst["objectList"]]
    return inst[ATTRIBUTE_TYPES[atype]]


def _compact_vocab(value: Any, ctx: ActiveContext) -> Any:
    if isinstance(value, list):
        return [ctx.compact(v) for v in value]
    return ctx.compact(value)


def _pick_language(lmap: dict[str, Any], prefs: list[str] | None) -> tuple[str, Any] | None:
    """None means "all languages" (no lang asked, or lang=*)."""
    if prefs is None or prefs == ["*"]:
        return None
    for tag in prefs:
        if tag == "*":
            break
        if tag in lmap:
            return tag, lmap[tag]
        for key, text in lmap.items():  # "vi" matches "vi-VN" and the other way round
            if key.split("-")[0] == tag.split("-")[0]:
                return key, text
    if "@none" in lmap:
        return "@none", lmap["@none"]
    first = next(iter(lmap.items()))
    return first


def render_instance(inst: dict, ctx: ActiveContext, opts: RenderOptions, doc: dict) -> Any:
    out: dict[str, Any] = {}
    atype = inst["type"]
    concise = opts.fmt == "concise"
    if opts.sys_attrs:
        # Stored attributes omit timestamps equal to the entity's (see entity.deflate).
        inst = {**inst, "createdAt": inst.get("createdAt", doc.get("createdAt")),
                "modifiedAt": inst.get("modifiedAt", doc.get("modifiedAt"))}
    for key, val in inst.items():
        if key in _SYS:
            if opts.sys_attrs:
                out[key] = val
            continue
        if key == "type":
            if not concise:
                out["type"] = val
            continue
        if key in ATTRIBUTE_MEMBERS:
            out[key] = _compact_vocab(val, ctx) if key == "vocab" else val
            continue
        out[ctx.compact(key)] = render_instance(val, ctx, opts, doc)
    if atype == "LanguageProperty" and opts.lang is not None:
        chosen = _pick_language(inst["languageMap"], opts.lang)
        if chosen is not None:
            out.pop("languageMap", None)
            if not concise:
                out["type"] = "Property"
            out["value"] = chosen[1]
            out["lang"] = chosen[0]
    if concise and atype in ("Property", "GeoProperty") and set(out) == {"value"}:
        # A bare value is unambiguous in concise form; objects other than geometry keep
        # their wrapper so they are not mistaken for an attribute.
        value = out["value"]
        if not isinstance(value, dict) or atype == "GeoProperty":
            return value
    return out


def to_feature(
    doc: dict, ctx: ActiveContext, opts: RenderOptions, geometry_iri: str
) -> dict[str, Any]:
    """GeoJSON Feature for ``Accept: application/geo+json`` (clause 4.5.16)."""
    rendered = render_entity(doc, ctx, opts)
    geometry = None
    instances = doc.get(geometry_iri)
    if instances and instances[0].get("type") == "GeoProperty":
        geometry = instances[0]["value"]
    props = {k: v for k, v in rendered.items() if k != "id"}
    return {"id": doc["id"], "type": "Feature", "geometry": geometry, "properties": props}
