"""Turning request bodies into the stored form, with every NGSI-LD rule checked on the way.

Stored form (one JSON document per entity):

    {"id": "urn:...", "type": [<type IRIs>], "scope": [...], "createdAt": ..., "modifiedAt": ...,
     "<attribute IRI>": [<instance>, ...]}

Every attribute is a list of instances, one per ``datasetId`` (the default instance has no
``datasetId``); an instance is a normalized attribute whose sub-attributes are keyed by IRI.
Property values are kept as given: NGSI-LD does not expand values.
"""

from __future__ import annotations

import re
from typing import Any

from dothi.errors import BadRequestData
from dothi.ngsild import geo
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.timeutil import normalize_datetime

ATTRIBUTE_TYPES = {
    "Property": "value",
    "Relationship": "object",
    "GeoProperty": "value",
    "LanguageProperty": "languageMap",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
}
# Concise form: the member present tells the attribute type (clause 4.5.3 / 5.2.x).
CONCISE_KEYS = (
    ("object", "Relationship"),
    ("languageMap", "LanguageProperty"),
    ("valueList", "ListProperty"),
    ("objectList", "ListRelationship"),
    ("json", "JsonProperty"),
    ("vocab", "VocabProperty"),
    ("value", "Property"),
)
# Members of an attribute that are not sub-attributes.
ATTRIBUTE_MEMBERS = frozenset(
    {
        "type", "value", "object", "languageMap", "valueList", "objectList", "json", "vocab",
        "observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "deletedAt",
        "instanceId", "objectType", "lang", "previousValue", "previousObject",
        "previousLanguageMap", "previousValueList", "previousObjectList", "previousJson",
        "previousVocab", "@context",
    }
)
ENTITY_MEMBERS = frozenset(
    {"id", "@id", "type", "@type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"}
)
SYSTEM_MEMBERS = ("createdAt", "modifiedAt", "deletedAt")
GEO_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
     "GeometryCollection"}
)
NULL = "urn:ngsi-ld:null"
GEO_NAMES = frozenset({"location", "observationSpace", "operationSpace"})
# Characters the specification forbids in names (clause 4.6.2 and the URI rules).
_BAD_NAME = re.compile(r"[\s<>\"'=;()\\\[\]{}]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_SCOPE = re.compile(r"^(/[^/#+\s]+)+$")


def is_uri(value: object) -> bool:
    return isinstance(value, str) and _URI.match(value) is not None


_GOOD_NAMES: set[str] = set()


def check_name(name: object, what: str) -> str:
    # Names repeat across a batch; remembering the good ones skips the regex.
    if name in _GOOD_NAMES:
        return name  # type: ignore[return-value]
    if not isinstance(name, str) or not name or _BAD_NAME.search(name):
        raise BadRequestData(f"Invalid {what}: {name!r}")
    if len(_GOOD_NAMES) < 100_000:
        _GOOD_NAMES.add(name)
    return name


def expand_types(value: object, ctx: ActiveContext) -> list[str]:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("Entity type must not be empty")
    out: list[str] = []
    for name in names:
        iri = ctx.expand(check_name(name, "entity type"))
        if iri not in out:
            out.append(iri)
    return out


def item_id(item: Any) -> str:
    """The id of an entity in a batch, checked."""
    if not isinstance(item, dict):
        raise BadRequestData("Each batch item must be a JSON object")
    eid = item.get("id", item.get("@id"))
    if not is_uri(eid):
        raise BadRequestData(f"Entity id must be a URI: {eid!r}")
    return str(eid)


def body_types(body: Any, ctx: ActiveContext) -> list[str] | None:
    """The expanded types a body names, if it names any."""
    if isinstance(body, dict):
        t = body.get("type", body.get("@type"))
        if t is not None:
            return expand_types(t, ctx)
    return None


def check_scope(value: object) -> list[str]:
    scopes = value if isinstance(value, list) else [value]
    for s in scopes:
        if not isinstance(s, str) or not _SCOPE.match(s):
            raise BadRequestData(f"Invalid scope {s!r}: scopes look like /Vietnam/DaNang")
    return list(scopes)


def expand_entity(body: Any, ctx: ActiveContext, now: str, *, need_type: bool = True) -> dict:
    """A complete entity from a create/replace/upsert body (any representation)."""
    if not isinstance(body, dict):
        raise BadRequestData("An entity must be a JSON object")
    eid = body.get("id", body.get("@id"))
    if eid is None:
        raise BadRequestData("An entity needs an id")
    if not is_uri(eid):
        raise BadRequestData(f"Entity id must be a URI: {eid!r}")
    doc: dict[str, Any] = {"id": eid}
    etype = body.get("type", body.get("@type"))
    if etype is None:
        if need_type:
            raise BadRequestData(f"Entity {eid} needs a type")
    else:
        doc["type"] = expand_types(etype, ctx)
    if "scope" in body:
        doc["scope"] = check_scope(body["scope"])
    doc["createdAt"] = now
    doc["modifiedAt"] = now
    doc.update(expand_attributes(body, ctx, now, skip=ENTITY_MEMBERS))
    return doc


def expand_attributes(
    body: Any,
    ctx: ActiveContext,
    now: str,
    *,
    skip: frozenset[str] = frozenset({"@context", "id", "type", "createdAt", "modifiedAt"}),
    allow_null: bool = False,
) -> dict[str, list[dict]]:
    """Attribute fragments (append/update/merge bodies): IRI -> list of instances."""
    if not isinstance(body, dict):
        raise BadRequestData("The payload must be a JSON object of attributes")
    out: dict[str, list[dict]] = {}
    for name, value in body.items():
        if name in skip:
            continue
        if name not in _GOOD_NAMES:
            check_name(name, "attribute name")
        if isinstance(value, list):
            out[ctx.expand(name)] = expand_attribute(name, value, ctx, now,
                                                     allow_null=allow_null)
        else:
            out[ctx.expand(name)] = [_instance(name, value, ctx, now, allow_null)]
    return out


def expand_attribute(
    name: str, value: Any, ctx: ActiveContext, now: str, *, allow_null: bool = False
) -> list[dict]:
    if isinstance(value, list) and value and all(_looks_like_instance(v) for v in value):
        instances = [_instance(name, v, ctx, now, allow_null) for v in value]
        seen: set[str | None] = set()
        for inst in instances:
            ds = inst.get("datasetId")
            if ds in seen:
                raise BadRequestData(
                    f"Attribute {name} has two instances with the same datasetId {ds!r}"
                )
            seen.add(ds)
        return instances
    return [_instance(name, value, ctx, now, allow_null)]


def _looks_like_instance(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    t = value.get("type")
    if t in ATTRIBUTE_TYPES:
        return True
    return "datasetId" in value or any(k in value for k, _ in CONCISE_KEYS)


def _instance(name: str, value: Any, ctx: ActiveContext, now: str, allow_null: bool) -> dict:
    if value is None:
        if allow_null:
            return {"type": "Property", "value": NULL}
        raise BadRequestData(f"Attribute {name} must not be null")
    if not isinstance(value, dict):
        return {"type": "Property", "value": value, "createdAt": now, "modifiedAt": now}
    atype = value.get("type")
    if len(value) == 2:
        # Fast paths for the shapes that make up most of any real payload.
        if atype == "Property":
            v = value.get("value")
            if v is not None and v != NULL and name not in GEO_NAMES:
                return {"type": "Property", "value": v, "createdAt": now, "modifiedAt": now}
        elif atype == "Relationship":
            obj = value.get("object")
            if isinstance(obj, str) and _URI.match(obj) and obj != NULL:
                return {"type": "Relationship", "object": obj, "createdAt": now,
                        "modifiedAt": now}
    if atype in ATTRIBUTE_TYPES:
        return _validate(name, atype, value, ctx, now, allow_null)
    if atype in GEO_TYPES and ("coordinates" in value or "geometries" in value):
        return _validate(name, "GeoProperty", {"value": value}, ctx, now, allow_null)
    if atype is not None:
        raise BadRequestData(f"Attribute {name} has an unknown type {atype!r}")
    for key, inferred in CONCISE_KEYS:
        if key in value:
            return _validate(name, inferred, value, ctx, now, allow_null)
    # A plain JSON object in concise/keyValues form is a Property's value.
    return {"type": "Property", "value": value, "createdAt": now, "modifiedAt": now}


def _validate(
    name: str, atype: str, inst: dict, ctx: ActiveContext, now: str, allow_null: bool
) -> dict:
    """One pass over the members: the value member checked for its type, metadata
    normalised, everything else a sub-attribute."""
    member = ATTRIBUTE_TYPES[atype]
    out: dict[str, Any] = {"type": atype}
    for key, content in inst.items():
        if key == member:
            if content is None:
                raise BadRequestData(f"{atype} {name} must not have a null {member}")
            if allow_null and content == NULL:
                return {"type": atype, member: NULL}
            out[member] = content if atype == "Property" else _content(name, atype, content, ctx)
        elif key == "observedAt":
            out[key] = normalize_datetime(content, f"observedAt of {name}")
        elif key == "unitCode":
            if not isinstance(content, str):
                raise BadRequestData(f"unitCode of {name} must be a string")
            out[key] = content
        elif key == "datasetId":
            if not is_uri(content):
                raise BadRequestData(f"datasetId of {name} must be a URI")
            out[key] = content
        elif key == "objectType" and atype == "Relationship":
            out[key] = content
        elif key in ATTRIBUTE_MEMBERS:
            continue  # system-generated or output-only members are not taken from input
        else:
            check_name(key, "sub-attribute name")
            out[ctx.expand(key)] = expand_attribute(key, content, ctx, now,
                                                    allow_null=allow_null)[0]
    if member not in out:
        raise BadRequestData(f"{atype} {name} needs a {member!r} member")
    if atype == "Property" and name in GEO_NAMES:
        value = out["value"]
        if isinstance(value, dict) and value.get("type") in GEO_TYPES:
            # location/observationSpace/operationSpace are GeoProperties by definition.
            _check_geometry(name, value)
            out["type"] = "GeoProperty"
    out["createdAt"] = now
    out["modifiedAt"] = now
    return out


def _content(name: str, atype: str, content: Any, ctx: ActiveContext) -> Any:
    if atype == "GeoProperty":
        if isinstance(content, dict):
            _check_geometry(name, content)
        elif not isinstance(content, str):  # WKT strings are allowed by the spec
            raise BadRequestData(f"GeoProperty {name} value must be a GeoJSON geometry")
        return content
    if atype == "Relationship":
        if isinstance(content, str) and _URI.match(content):
            return content
        objs = content if isinstance(content, list) else [content]
        if not objs or not all(is_uri(o) for o in objs):
            raise BadRequestData(f"Relationship {name} object must be a URI (or URIs)")
        return content
    if atype == "LanguageProperty":
        if not isinstance(content, dict) or not content or not all(
            isinstance(k, str) and (isinstance(v, str) or
                                    (isinstance(v, list) and all(isinstance(x, str) for x in v)))
            for k, v in content.items()
        ):
            raise BadRequestData(f"LanguageProperty {name} needs a map of language -> string")
        return content
    if atype == "ListProperty":
        if not isinstance(content, list):
            raise BadRequestData(f"ListProperty {name} valueList must be an array")
        return content
    if atype == "ListRelationship":
        if not isinstance(content, list):
            raise BadRequestData(f"ListRelationship {name} objectList must be an array")
        norm = []
        for item in content:
            obj = item.get("object") if isinstance(item, dict) else item
            if not is_uri(obj):
                raise BadRequestData(f"ListRelationship {name} holds a non-URI object {obj!r}")
            norm.append({"object": obj})
        return norm
    if atype == "JsonProperty":
        if not isinstance(content, (dict, list)):
            raise BadRequestData(f"JsonProperty {name} json must be an object or array")
        return content
    # VocabProperty: vocabulary terms are expanded like names.
    words = content if isinstance(content, list) else [content]
    if not words or not all(isinstance(w, str) and w for w in words):
        raise BadRequestData(f"VocabProperty {name} vocab must be a string or strings")
    expanded = [ctx.expand(w) for w in words]
    return expanded if isinstance(content, list) else expanded[0]


def _check_geometry(name: str, value: dict) -> None:
    # Fast path for the overwhelmingly common Point; everything else goes through shapely.
    if value.get("type") == "Point":
        c = value.get("coordinates")
        if isinstance(c, list) and len(c) == 2:
            x, y = c
            if (type(x) is float or type(x) is int) and (type(y) is float or type(y) is int) \
                    and -180 <= x <= 180 and -90 <= y <= 90:
                return
    try:
        geo.validate_geometry(value)
    except BadRequestData as exc:
        raise BadRequestData(f"GeoProperty {name}: {exc.detail}") from None


def prop(value: Any) -> dict[str, Any]:
    """A Property holding ``value``, as the platform's own services write them."""
    return {"type": "Property", "value": value}


def first_value(doc: dict, iri: str) -> Any:
    """The plain value of an expanded document's first instance of ``iri``: a Property's
    value (a DateTime's text), a Relationship's object id; None without one."""
    instances = doc.get(iri)
    if not instances:
        return None
    first = instances[0]
    value = first.get("object", first.get("value"))
    return value.get("@value") if isinstance(value, dict) and "@value" in value else value


def deflate(doc: dict) -> dict:
    """The stored form drops attribute timestamps equal to the entity's own: a new entity
    shrinks by about a third, which every write and read pays for."""
    created, modified = doc.get("createdAt"), doc.get("modifiedAt")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if ":" in key:
            out[key] = [_deflate_instance(i, created, modified) for i in value]
        else:
            out[key] = value
    return out


def _deflate_instance(inst: dict, created: Any, modified: Any) -> dict:
    out = {}
    for key, value in inst.items():
        if (key == "createdAt" and value == created) or (key == "modifiedAt" and value == modified):
            continue
        out[key] = _deflate_instance(value, created, modified) if ":" in key else value
    return out


def inflate(doc: dict) -> dict:
    """Put back what ``deflate`` left out, before a stored entity is changed."""
    created, modified = doc.get("createdAt"), doc.get("modifiedAt")
    for key, value in doc.items():
        if ":" in key:
            for inst in value:
                _inflate_instance(inst, created, modified)
    return doc


def _inflate_instance(inst: dict, created: Any, modified: Any) -> None:
    inst.setdefault("createdAt", created)
    inst.setdefault("modifiedAt", modified)
    for key, value in inst.items():
        if ":" in key and isinstance(value, dict):
            _inflate_instance(value, created, modified)
