"""Offline checks of device measures against the FIWARE Smart Data Models JSON Schemas.

The schemas ship in ``dothi/data/smart-data-models`` (``<Domain>/<Model>/schema.json`` plus
the shared ``common-schema.json``). Their ``$ref``s name public URLs; a ``referencing``
registry maps those URLs to the shipped files and refuses everything else, so validation
never touches the network — a device message must not wait on, or leak to, a remote host.

A measure carries only some attributes, in keyValues form, so a model is not checked as a
whole: each attribute definition the model has (its own ``properties`` and those of the
common definitions it ``allOf``-includes) is compiled once into its own validator, and a
measure costs one validation per attribute it carries. The model's ``required`` list is
not applied.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Protocol
from urllib.parse import quote, urldefrag, urljoin, urlsplit

from jsonschema import FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, validator_for
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, SchemaRegistry, SchemaResource

__all__ = [
    "SCHEMA_DIR",
    "AmbiguousSchema",
    "InvalidSchema",
    "ModelSchema",
    "SchemaCatalogue",
    "UnknownSchema",
    "UnresolvableReference",
    "Violation",
    "default_catalogue",
]

SCHEMA_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "data" / "smart-data-models"

COMMON_SCHEMA = "common-schema.json"
NOT_DEFINED = "not defined by the model"

# The hosts SDM schemas name their documents by. github.io serves each domain repository's
# files at /dataModel.<Domain>/<path>; raw.githubusercontent.com at
# /smart-data-models/dataModel.<Domain>/<branch>/<path>. Both map to <folder>/<Domain>/<path>.
_PAGES = "smart-data-models.github.io"
_RAW = "raw.githubusercontent.com"
_BRANCHES = frozenset({"master", "main"})

# Keywords whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"enum", "const", "examples", "default"})
# Keywords that annotate and never fail a value: a "$ref" with only these beside it is the
# schema it points to, as far as validation goes.
_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default",
                          "deprecated", "readOnly", "writeOnly", "x-ngsi"})

# Longest rule or message a Violation carries: an enum of 50 values, or a 10 kB array a
# device sent, would otherwise flood every log line and report that quotes it.
_LIST_ITEMS_SHOWN = 3
_ITEM_CHARS = 40
_MESSAGE_CHARS = 300

# Formats whose jsonschema checkers exist only when optional packages are installed: checked
# here by our own code so that what is asserted does not depend on what happens to be
# installed. "time" accepts a missing offset and seconds, as the SDM examples write them
# ("closes": "14:00"); rejecting those would flag the models' own data.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*", re.ASCII)


class _Resolver(Protocol):
    """What is used of referencing's Resolver, which that package does not export."""

    def lookup(self, ref: str) -> Any: ...

    def in_subresource(self, subresource: SchemaResource) -> _Resolver: ...


class UnknownSchema(LookupError):
    """No shipped Smart Data Model matches the entity type or schema name asked for."""


class AmbiguousSchema(LookupError):
    """The type names a model of several domains; the caller has to say which one."""


class UnresolvableReference(LookupError):
    """A ``$ref`` names a document that is not shipped: it is never fetched instead."""


class InvalidSchema(ValueError):
    """A shipped schema file is not a usable JSON Schema."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a measured value breaks its model: ``rule`` is the JSON Schema keyword and
    its constraint ("maximum: 1", "type: number"), ``message`` reads as English and quotes
    the offending value."""

    attribute: str
    rule: str
    message: str


class ModelSchema:
    """One Smart Data Model, compiled into a validator per attribute it defines."""

    def __init__(self, domain: str, model: str, path: Path, dialect: str,
                 validators: Mapping[str, Validator], unresolved_attributes: Mapping[str, str],
                 unresolved_parts: tuple[str, ...]) -> None:
        self.domain = domain
        self.model = model
        self.path = path
        # The $schema the file declares, which picked the validator class.
        self.dialect = dialect
        self._validators = dict(validators)
        self.attributes: frozenset[str] = frozenset(validators) | frozenset(
            unresolved_attributes)
        # Attributes whose definition leads to a reference that cannot be resolved offline
        # (attribute -> "<ref>: <why>"): they cannot be checked; a measure carrying one raises.
        self.unresolved_attributes: Mapping[str, str] = MappingProxyType(
            dict(unresolved_attributes))
        # Included definitions (allOf parts) that cannot be resolved offline, as "<ref>: <why>":
        # the model defines attributes this catalogue cannot see, so strict mode cannot judge
        # names it does not know.
        self.unresolved_parts = unresolved_parts

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.model}"

    def __repr__(self) -> str:
        return f"<ModelSchema {self.name}: {len(self.attributes)} attributes>"

    def validate_attributes(self, values: Mapping[str, Any], *, strict: bool = False,
                            ) -> list[Violation]:
        """Check measured attributes given as keyValues (name -> plain value; a GeoProperty
        as a GeoJSON geometry). Attributes the model does not define are reported only when
        ``strict``. Raises ``UnresolvableReference`` for an attribute whose definition (or,
        in strict mode, an unknown attribute whose possible definition) is not shipped."""
        violations: list[Violation] = []
        for attribute, value in values.items():
            validator = self._validators.get(attribute)
            if validator is not None:
                for error in validator.iter_errors(value):
                    violations.append(_violation(attribute, error))
                continue
            if attribute in self.unresolved_attributes:
                raise UnresolvableReference(
                    f"{self.name}: attribute {attribute!r} cannot be checked offline: its "
                    f"definition refers to {self.unresolved_attributes[attribute]}")
            if not strict:
                continue
            if self.unresolved_parts:
                raise UnresolvableReference(
                    f"{self.name}: cannot tell whether {attribute!r} is defined by the model, "
                    f"which includes {'; '.join(self.unresolved_parts)}")
            violations.append(Violation(
                attribute, NOT_DEFINED,
                _clip(f"{attribute}: {_short(value)} is given, but {attribute!r} is not an "
                      f"attribute of the {self.name} model")))
        return violations


class SchemaCatalogue:
    """The Smart Data Models of a folder laid out as ``<Domain>/<Model>/schema.json`` with
    ``common-schema.json`` at its top. Models are compiled on first use and kept."""

    def __init__(self, folder: Path | str = SCHEMA_DIR, *, check_formats: bool = True) -> None:
        self.folder = Path(folder).resolve()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"no Smart Data Models folder at {self.folder}")
        self.check_formats = check_formats
        # Only the layout is read here (cheap); a model's JSON is parsed when it is asked for.
        self._by_model: dict[str, list[str]] = {}
        for path in sorted(self.folder.glob("*/*/schema.json")):
            domain, model = path.parent.parent.name, path.parent.name
            self._by_model.setdefault(model, []).append(domain)
        self._models: dict[tuple[str, str], ModelSchema] = {}
        # Parsed non-model documents (common-schema.json, a domain's shared schema), by URL.
        self._documents: dict[str, SchemaResource] = {}
        # Compiling a model takes milliseconds; a lock keeps concurrent first uses from
        # doing it twice and from racing on the caches.
        self._lock = threading.RLock()

    def names(self) -> list[str]:
        """Every model of the folder, as "Domain/Model"."""
        return sorted(f"{domain}/{model}" for model, domains in self._by_model.items()
                      for domain in domains)

    def find(self, entity_type: str, schema: str | None = None) -> ModelSchema:
        """The model for an entity type, or the one ``schema`` names ("Domain/Model", or a
        model name when the type is not one). A type given as an IRI is matched by its last
        segment ("https://smartdatamodels.org/dataModel.Streetlighting/Streetlight")."""
        if schema is not None:
            domain, _, model = schema.strip().rpartition("/")
            if not model or domain.count("/"):
                raise UnknownSchema(
                    f"schema {schema!r} is not of the form 'Domain/Model' or 'Model'")
            asked = schema
        else:
            domain = ""
            model = re.split(r"[/#:]", entity_type)[-1] if ":" in entity_type else entity_type
            asked = entity_type
        domains = self._by_model.get(model, [])
        if domain:
            if domain not in domains:
                raise UnknownSchema(self._unknown(asked, model, domain))
        elif not domains:
            raise UnknownSchema(self._unknown(asked, model, None))
        elif len(domains) > 1:
            choices = ", ".join(f"'{d}/{model}'" for d in domains)
            raise AmbiguousSchema(
                f"{model!r} is a model of {len(domains)} domains; name the one to use as "
                f"'Domain/Model': {choices}")
        else:
            domain = domains[0]
        return self._load(domain, model)

    def _unknown(self, asked: str, model: str, domain: str | None) -> str:
        if domain is not None and model in self._by_model:
            others = ", ".join(f"'{d}/{model}'" for d in self._by_model[model])
            return f"no Smart Data Model {asked!r}: {model} is in {others}"
        close = difflib.get_close_matches(model, self._by_model, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        return (f"no Smart Data Model for {asked!r} among the {len(self.names())} models "
                f"in {self.folder}{hint}")

    def _load(self, domain: str, model: str) -> ModelSchema:
        loaded = self._models.get((domain, model))
        if loaded is not None:
            return loaded
        with self._lock:
            loaded = self._models.get((domain, model))
            if loaded is None:
                loaded = self._compile(domain, model)
                self._models[domain, model] = loaded
            return loaded

    def _compile(self, domain: str, model: str) -> ModelSchema:
        path = self.folder / domain / model / "schema.json"
        name = f"{domain}/{model}"
        document = _read_json(path)
        if not isinstance(document, dict):
            raise InvalidSchema(f"{path} is not a JSON Schema object")
        declared = document.get("$schema")
        dialect = declared if isinstance(declared, str) else _meta_schema_id(
            Draft202012Validator)
        # SDM schemas say 2020-12; one without $schema is read as that too. validator_for
        # falls back to its default for a $schema it does not know, so check it got a match.
        validator_cls = validator_for(document, default=Draft202012Validator)
        if _uri_key(_meta_schema_id(validator_cls)) != _uri_key(dialect):
            raise InvalidSchema(f"{path} declares $schema {dialect!r}, which no validator of "
                                f"the installed jsonschema implements")
        try:
            validator_cls.check_schema(document)
        except SchemaError as exc:
            raise InvalidSchema(f"{path} is not a valid schema of its dialect: "
                                f"{exc.message}") from None
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        # The model is registered under its $id (or a URN when it has none) in a registry of
        # its own: some SDM schemas share an $id, so one registry could not hold them all.
        model_uri = resource.id() or f"urn:dothi:smart-data-models:{name}"
        # (mypy's attrs support does not see the "retrieve" alias of Registry's field.)
        registry: SchemaRegistry = Registry(  # type: ignore[call-arg]
            retrieve=self._retrieve).with_resource(model_uri, resource)
        resolver = registry.resolver(base_uri=model_uri)

        definitions: dict[str, list[Any]] = {}
        parts: list[str] = []
        self._collect(document, resolver, None, model_uri, definitions, parts, depth=0)
        unresolved: dict[str, str] = {}
        schemas: dict[str, Any] = {}
        for attribute, found in definitions.items():
            # allOf semantics: a value must satisfy every definition the model gives it.
            schema = found[0] if len(found) == 1 else {"allOf": found}
            missing = self._unresolvable(schema, resolver)
            if missing is None:
                schemas[attribute] = schema
            else:
                unresolved[attribute] = missing

        # Every document the references reach is now parsed: compiled validators get a
        # registry already holding them, so validating never calls the retrieve function.
        with_documents = registry.with_resources(self._documents.items())
        checker = _format_checker(validator_cls) if self.check_formats else None
        roots: dict[str, Validator] = {model_uri: validator_cls(
            document, registry=with_documents, format_checker=checker)}
        validators: dict[str, Validator] = {}
        for attribute, schema in schemas.items():
            uri, schema = self._follow(model_uri, schema, resolver)
            root = roots.get(uri)
            if root is None:
                root = roots[uri] = validator_cls(self._documents[uri].contents,
                                                  registry=with_documents, format_checker=checker)
            # evolve() keeps the root's resolver, so the definition's relative refs resolve
            # against its document's $id exactly as they would inside the whole document.
            validators[attribute] = root.evolve(schema=schema)
        return ModelSchema(domain, model, path, dialect, validators, unresolved,
                           tuple(dict.fromkeys(parts)))

    def _collect(self, schema: Any, resolver: _Resolver, where: str | None, model_uri: str,
                 definitions: dict[str, list[Any]], parts: list[str], depth: int) -> None:
        """Gather the attribute definitions of a schema: its ``properties`` and, through
        ``allOf`` and ``$ref``, those of the schemas it includes. ``where`` is None while in
        the model file, whose definitions are taken as they are; in another document it is
        the absolute URL of ``schema``, and definitions found there become ``$ref``s to
        their URL, as their own refs are relative to that document, not to the model."""
        if depth > 20:  # an include cycle: SDM has none, but a bad file must not hang us
            raise InvalidSchema(f"{model_uri}: allOf includes nest more than 20 deep")
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            try:
                resolved = resolver.lookup(ref)
            except Unresolvable as exc:
                parts.append(_reason(exc, ref))
            else:
                if where is None and ref.startswith("#"):
                    target = None  # still inside the model file
                else:
                    target = urljoin(where if where is not None else model_uri, ref)
                    fragment = urldefrag(target)[1]
                    if fragment and not fragment.startswith("/"):
                        raise InvalidSchema(f"{model_uri}: includes {target}, an anchor; "
                                            f"only JSON Pointer includes are supported")
                self._collect(resolved.contents, resolved.resolver, target, model_uri,
                              definitions, parts, depth + 1)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for attribute, definition in properties.items():
                if where is None:
                    found: Any = definition
                else:
                    # JSON Pointer escaping of the name, then URI escaping of the token.
                    token = quote(attribute.replace("~", "~0").replace("/", "~1"), safe="")
                    found = {"$ref": _pointer_join(where, f"properties/{token}")}
                definitions.setdefault(attribute, []).append(found)
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            for index, part in enumerate(all_of):
                here = None if where is None else _pointer_join(where, f"allOf/{index}")
                self._collect(part, resolver, here, model_uri, definitions, parts, depth + 1)

    def _follow(self, model_uri: str, schema: Any, resolver: _Resolver) -> tuple[str, Any]:
        """A definition that is only a ``$ref`` (location, id, name... point into
        common-schema.json) as (URL of the document it lands in, the definition there), so
        that validating does not pay a reference lookup each time: a quarter of the cost of
        a GeoJSON location. Followed only into documents whose $id is the URL they were
        fetched by, where the target's own refs resolve the same way from that document's
        root; otherwise the definition is kept as it is, in the model."""
        uri = model_uri
        for _ in range(10):
            if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)
                    and schema.keys() - _ANNOTATIONS == {"$ref"}):
                break
            target = urljoin(uri, schema["$ref"])
            document, fragment = urldefrag(target)
            known = self._documents.get(document)
            if known is None or known.id() != document or (fragment and fragment[0] != "/"):
                break
            resolved = resolver.lookup(target)
            uri, schema, resolver = document, resolved.contents, resolved.resolver
        return uri, schema

    def _unresolvable(self, schema: Any, resolver: _Resolver) -> str | None:
        """Follow every ``$ref`` a definition reaches, transitively: why those that cannot
        be resolved offline cannot ("; "-separated), or None when all resolve."""
        stack: list[tuple[Any, _Resolver]] = [(schema, resolver)]
        seen: set[int] = set()
        reasons: list[str] = []
        while stack:
            node, here = stack.pop()
            if isinstance(node, list):
                stack.extend((item, here) for item in reversed(node))
                continue
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("$id"), str):
                here = here.in_subresource(DRAFT202012.create_resource(node))
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolved = here.lookup(ref)
                except Unresolvable as exc:
                    reasons.append(_reason(exc, ref))
                else:
                    # Identity of the target object: documents stay alive in the registry,
                    # and a shared definition (GeoJSON geometries) is walked once, not per use.
                    if id(resolved.contents) not in seen:
                        seen.add(id(resolved.contents))
                        stack.append((resolved.contents, resolved.resolver))
            stack.extend((value, here) for key, value in reversed(node.items())
                         if key not in _DATA_KEYWORDS and isinstance(value, (dict, list)))
        return "; ".join(dict.fromkeys(reasons)) if reasons else None

    def _retrieve(self, uri: str) -> SchemaResource:
        """The registry's only way to a document it does not hold: the shipped file the URL
        maps to. Anything else raises; nothing is ever fetched."""
        with self._lock:
            known = self._documents.get(uri)
            if known is not None:
                return known
            path = self.local_path(uri)
            if path is None:
                raise UnresolvableReference(
                    f"{uri} is not a Smart Data Models URL that maps to a shipped file "
                    f"(remote documents are never fetched)")
            if not path.is_file():
                raise UnresolvableReference(
                    f"{uri} maps to {path.relative_to(self.folder)}, which is not shipped "
                    f"with these schemas (remote documents are never fetched)")
            contents = _read_json(path)
            resource = Resource.from_contents(contents, default_specification=DRAFT202012)
            self._documents[uri] = resource
            return resource

    def local_path(self, uri: str) -> Path | None:
        """The file of this folder a Smart Data Models URL stands for, or None if the URL is
        not one (the file may still be missing)."""
        parts = urlsplit(urldefrag(uri)[0])
        if parts.scheme not in ("http", "https") or parts.query:
            return None
        segments = [s for s in parts.path.split("/") if s]
        if parts.netloc == _PAGES and segments == ["data-models", COMMON_SCHEMA]:
            relative = [COMMON_SCHEMA]
        elif (parts.netloc == _PAGES and len(segments) >= 2
              and segments[0].startswith("dataModel.")):
            relative = [segments[0].removeprefix("dataModel."), *segments[1:]]
        elif (parts.netloc == _RAW and len(segments) >= 4 and segments[0] == "smart-data-models"
              and segments[1].startswith("dataModel.") and segments[2] in _BRANCHES):
            relative = [segments[1].removeprefix("dataModel."), *segments[3:]]
        else:
            return None
        # A URL is data from a file: it must not walk out of the folder ("..", "/abs").
        if any(s in (".", "..") or "\\" in s for s in relative) or not relative[0]:
            return None
        path = self.folder.joinpath(*relative)
        return path if path.resolve().is_relative_to(self.folder) else None


@cache
def default_catalogue() -> SchemaCatalogue:
    """The catalogue of the shipped schemas, shared by the whole process."""
    return SchemaCatalogue(SCHEMA_DIR)


def _meta_schema_id(validator_cls: type[Validator]) -> str:
    meta = validator_cls.META_SCHEMA
    return str(meta.get("$id") or meta.get("id") or "")


def _uri_key(uri: str) -> str:
    # "http://json-schema.org/draft-07/schema#" and the same without "#" are one dialect.
    return uri.rstrip("#")


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as file:
            return json.load(file)
    except (OSError, ValueError) as exc:
        raise InvalidSchema(f"cannot read schema {path}: {exc}") from None


def _pointer_join(uri: str, pointer: str) -> str:
    return f"{uri}/{pointer}" if "#" in uri else f"{uri}#/{pointer}"


def _reason(exc: Unresolvable, ref: str) -> str:
    """Why a reference cannot be resolved, naming it: the retrieve function's own words when
    a document is missing or unreadable, else referencing's (a pointer into nowhere...)."""
    cause: BaseException | None = exc.__cause__
    while cause is not None and not isinstance(cause, UnresolvableReference | InvalidSchema):
        cause = cause.__cause__
    if cause is None:
        return f"{ref}: {exc}"
    why = str(cause)
    document = urldefrag(ref)[0]
    # The retrieve function names the document; say it once, with the full reference.
    return f"{ref}{why.removeprefix(document)}" if why.startswith(document) else f"{ref}: {why}"


_CHECKERS: dict[str, FormatChecker] = {}


def _format_checker(validator_cls: type[Validator]) -> FormatChecker:
    """The dialect's format checkers, with ours for the formats listed at _DATE_TIME; one
    per dialect (they differ), built once."""
    dialect = _meta_schema_id(validator_cls)
    checker = _CHECKERS.get(dialect)
    if checker is None:
        checker = FormatChecker(formats=())
        checker.checkers = dict(validator_cls.FORMAT_CHECKER.checkers)
        checker.checks("date-time", raises=ValueError)(_is_date_time)
        checker.checks("time", raises=ValueError)(_is_time)
        checker.checks("uri")(_is_uri)
        checker = _CHECKERS.setdefault(dialect, checker)
    return checker


def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.fullmatch(instance):
        return False
    # RFC 3339 allows a leap second, which datetime cannot hold: check the rest of it.
    text = instance.upper()
    if text[17:19] == "60":
        text = text[:17] + "59" + text[19:]
    datetime.fromisoformat(text)
    return True


def _is_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    match = _TIME.fullmatch(instance)
    return bool(match and int(match[1]) < 24 and int(match[2]) < 60
                and (match[4] is None or int(match[4]) <= 60))


def _is_uri(instance: object) -> bool:
    return not isinstance(instance, str) or _URI.fullmatch(instance) is not None


def _violation(attribute: str, error: ValidationError) -> Violation:
    best = _closest(error)
    where = attribute + "".join(f"[{step}]" if isinstance(step, int) else f".{step}"
                                for step in best.absolute_path)
    message = best.message
    if repr(best.instance) not in message:
        message = f"{message} (value: {_short(best.instance)})"
    return Violation(attribute, _rule(best), _clip(f"{where}: {message}"))


def _closest(error: ValidationError) -> ValidationError:
    """For an anyOf/oneOf failure, which only says "not valid under any of the given
    schemas", the error of the alternative the value came closest to: the one with the
    fewest errors, then the deepest (a GeoJSON Point with bad coordinates fails the Point
    branch on "coordinates" only, every other branch on its "type" too). Kept as it is when
    that alternative fails in several ways, or when several alternatives matched (oneOf)."""
    for _ in range(20):
        if not error.context:
            break
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            key = sub.relative_schema_path[0] if sub.relative_schema_path else None
            branches.setdefault(key, []).append(sub)
        closest = min(branches.values(), key=lambda errors: (
            len(errors), -max(len(e.absolute_path) for e in errors)))
        if len(closest) > 1:
            break
        error = closest[0]
    return error


def _rule(error: ValidationError) -> str:
    keyword = error.validator
    if keyword is None:  # a "false" schema: nothing is allowed there
        return "false"
    return f"{keyword}: {_constraint(error.validator_value)}"


def _constraint(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list):
        if any(isinstance(item, (dict, list)) for item in value):
            return f"{len(value)} subschemas"
        shown = [_item(item) for item in value[:_LIST_ITEMS_SHOWN]]
        if len(value) > _LIST_ITEMS_SHOWN:
            shown.append("...")
        return f"[{', '.join(shown)}]"
    return repr(value)


def _item(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _ITEM_CHARS else text[:_ITEM_CHARS - 1] + "…"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MESSAGE_CHARS // 2 else text[:_MESSAGE_CHARS // 2 - 1] + "…"


def _clip(text: str) -> str:
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS - 1] + "…"

