"""The data catalogue: every entity type of a tenant as a dataset, with the metadata a city
gives it in ``datasets.yaml`` and what the store tells of it (entities, attributes, extent,
last change, quality score).

Publication is opt-in: only a type the file marks ``open`` can be downloaded. Every other
type is listed as non-public, and the personal data that citizens' reports and comments
keep in their own partition is listed as personal, with its count only.

The counts come from the store's type summary and the extents from its geo index, and each
server process keeps the catalogue it built for ``MAX_AGE_S``, or until a write in the
process creates or deletes an entity of the tenant (counts and types change then; a
sensor's update does not rebuild it)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dothi.broker.broker import Broker
from dothi.gis.importer import LAYER_TYPE
from dothi.ngsild.entity import first_value
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Outcome, Selector, partition, query_all
from dothi.text import LANGUAGES, bilingual, fold

DATASETS = Path(__file__).with_name("datasets.yaml")
MAX_AGE_S = 300.0
QUALITY = "DataQualityAssessment"
KEY_VALUES = RenderOptions(fmt="keyValues")
FREQUENCIES = {"CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "ANNUAL", "IRREG"}
THEMES = {"AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI",
          "SOCI", "TECH", "TRAN"}
# The platform's own bookkeeping, not data: its layers' descriptions, the registers'
# counters of identifiers.
INTERNAL = {"GisLayer", "RegistryCounter"}


@dataclass(frozen=True)
class Agency:
    key: str
    name: dict[str, str]
    email: str | None = None


@dataclass(frozen=True)
class Licence:
    key: str
    title: str
    uri: str
    page: str


@dataclass
class Dataset:
    id: str  # the entity type's short name
    type_iri: str
    open: bool
    personal: bool
    title: dict[str, str]
    description: dict[str, str]
    publisher: Agency
    licence: Licence
    frequency: str | None = None
    theme: str | None = None
    keywords: dict[str, list[str]] = field(default_factory=dict)
    withhold: frozenset[str] = frozenset()
    history: tuple[str, ...] = ()
    entities: int = 0
    attributes: list[str] = field(default_factory=list)  # published ones, short names
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    modified: str | None = None  # the latest change of any of its entities
    quality: float | None = None  # the database quality score, 0-100
    layer: str | None = None  # a GIS layer's dataset: its GisLayer id (its features only)

    def summary(self) -> dict[str, Any]:
        """The dataset as the portal's JSON shows it."""
        return {
            "id": self.id, "open": self.open, "personal": self.personal,
            "title": self.title, "description": self.description,
            "publisher": {"key": self.publisher.key, "name": self.publisher.name},
            "licence": {"key": self.licence.key, "title": self.licence.title,
                        "uri": self.licence.uri, "page": self.licence.page},
            "frequency": self.frequency, "theme": self.theme, "keywords": self.keywords,
            "entities": self.entities, "attributes": self.attributes,
            "history": list(self.history), "bbox": list(self.bbox) if self.bbox else None,
            "modified": self.modified, "quality": self.quality, "layer": self.layer,
        }


@dataclass
class Metadata:
    """What ``datasets.yaml`` says."""

    title: dict[str, str]
    description: dict[str, str]
    publisher: Agency
    licence: Licence
    agencies: dict[str, Agency]
    licences: dict[str, Licence]
    datasets: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path | None = None) -> Metadata:
        source = path or DATASETS
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        try:
            agencies = {k: Agency(k, bilingual({lang: v[lang] for lang in LANGUAGES},
                                               f"{source}: agencies.{k}"), v.get("email"))
                        for k, v in raw["agencies"].items()}
            licences = {k: Licence(k, str(v["title"]), str(v["uri"]), str(v["page"]))
                        for k, v in raw["licences"].items()}
            top = raw["catalogue"]
            meta = cls(bilingual(top["title"], f"{source}: catalogue.title"),
                       bilingual(top["description"], f"{source}: catalogue.description"),
                       agencies[top["publisher"]], licences[top["licence"]], agencies,
                       licences, dict(raw.get("datasets") or {}))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: {exc!r} is missing or misplaced") from None
        for name, spec in meta.datasets.items():
            meta._check(source, name, spec)
        return meta

    def _check(self, source: Path, name: str, spec: dict[str, Any]) -> None:
        where = f"{source}: datasets.{name}"
        for key in ("title", "description"):
            if spec.get(key) is not None:
                bilingual(spec[key], f"{where}.{key}")
        if spec.get("publisher") is not None and spec["publisher"] not in self.agencies:
            raise ValueError(f"{where}: unknown publisher {spec['publisher']!r}")
        if spec.get("licence") is not None and spec["licence"] not in self.licences:
            raise ValueError(f"{where}: unknown licence {spec['licence']!r}")
        if spec.get("frequency") is not None and spec["frequency"] not in FREQUENCIES:
            raise ValueError(f"{where}: frequency is one of {sorted(FREQUENCIES)}")
        if spec.get("theme") is not None and spec["theme"] not in THEMES:
            raise ValueError(f"{where}: theme is one of {sorted(THEMES)}")
        if spec.get("open") and not ({"title", "description"} <= spec.keys()):
            raise ValueError(f"{where}: an open dataset needs a title and a description")

    def dataset(self, name: str, type_iri: str, personal: bool) -> Dataset:
        spec = {} if personal else self.datasets.get(name, {})
        generated = {"vi": f"Dữ liệu {name}", "en": f"{name} data"}
        if personal:
            generated = {"vi": f"Dữ liệu cá nhân: {name}", "en": f"Personal data: {name}"}
        return Dataset(
            id=name, type_iri=type_iri, open=bool(spec.get("open")), personal=personal,
            title=bilingual(spec.get("title") or generated, f"datasets.{name}.title"),
            description=bilingual(spec.get("description") or {
                "vi": "Chưa được công bố." if not personal else
                      "Dữ liệu cá nhân của người dân, không bao giờ được công bố.",
                "en": "Not published." if not personal else
                      "Citizens' personal data, never published."},
                f"datasets.{name}.description"),
            publisher=self.agencies[spec["publisher"]] if spec.get("publisher")
            else self.publisher,
            licence=self.licences[spec["licence"]] if spec.get("licence") else self.licence,
            frequency=spec.get("frequency"), theme=spec.get("theme"),
            keywords={lang: [str(k) for k in (spec.get("keywords") or {}).get(lang, [])]
                      for lang in LANGUAGES},
            withhold=frozenset(spec.get("withhold") or ()),
            history=tuple(spec.get("history") or ()))


class Catalogue:
    """The catalogue of each tenant, built on demand and kept for ``max_age_s``."""

    def __init__(self, broker: Broker, metadata: Metadata, max_age_s: float = MAX_AGE_S
                 ) -> None:
        self.broker = broker
        self.metadata = metadata
        self.max_age_s = max_age_s
        self._kept: dict[str, tuple[float, list[Dataset]]] = {}
        self._lock = threading.Lock()
        broker.write_listeners.append(self.on_write)

    def on_write(self, tenant: str, outcomes: list[Outcome]) -> None:
        """A broker write listener: a tenant whose entities came or went is built again."""
        if any(o.status in ("created", "deleted") for o in outcomes):
            self._kept.pop(tenant.split("~")[0], None)

    def close(self) -> None:
        self.broker.write_listeners.remove(self.on_write)

    def datasets(self, tenant: str) -> list[Dataset]:
        found = self._kept.get(tenant)
        if found is not None and time.monotonic() - found[0] < self.max_age_s:
            return found[1]
        with self._lock:  # one build at a time; the others wait for it
            found = self._kept.get(tenant)
            if found is not None and time.monotonic() - found[0] < self.max_age_s:
                return found[1]
            started = time.monotonic()
            built = self._build(tenant)
            self._kept[tenant] = (started, built)
            return built

    def dataset(self, tenant: str, name: str) -> Dataset | None:
        return next((d for d in self.datasets(tenant) if d.id == name), None)

    def search(self, tenant: str, text: str = "") -> list[Dataset]:
        """The datasets whose title, description, keywords or name hold every word of
        ``text``, regardless of case and Vietnamese diacritics ("Da Nang" finds "Đà
        Nẵng"); open datasets first."""
        words = fold(text).split()
        return [d for d in self.datasets(tenant)
                if all(w in _haystack(d) for w in words)]

    def _build(self, tenant: str) -> list[Dataset]:
        ctx = self.broker.resolver.core
        store = self.broker.store
        scores = self._quality(tenant)
        out = []
        for personal, space in ((False, tenant), (True, partition(tenant, "personal"))):
            for stat in store.type_stats(space):
                name = ctx.compact(stat.type)
                if name in INTERNAL:
                    continue
                dataset = self.metadata.dataset(name, stat.type, personal)
                dataset.entities = stat.entities
                dataset.quality = scores.get(name)
                if not personal:
                    dataset.attributes = sorted(
                        a for a in (ctx.compact(iri) for iri in stat.attributes)
                        if a not in dataset.withhold)
                    self._extent(space, dataset)
                out.append(dataset)
        out.extend(self._layers(tenant, {d.id: d for d in out}))
        return sorted(out, key=lambda d: (d.personal, not d.open, d.title["vi"]))

    def _layers(self, tenant: str, by_type: dict[str, Dataset]) -> list[Dataset]:
        """Each GIS layer as a dataset of its own (``layer-{name}``): its features only,
        published, credited and licensed as its feature type's dataset."""
        ctx = self.broker.resolver.core
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(LAYER_TYPE, ctx.expand))],
            expand=ctx.expand, limit=1000))
        out = []
        for doc in docs:
            layer = render_entity(doc, ctx, KEY_VALUES)
            feature = by_type.get(str(layer.get("featureType")))
            if feature is None:  # a layer without features
                continue
            name = str(layer.get("name"))
            title = layer.get("title")
            titles = title if isinstance(title, dict) and set(title) == set(LANGUAGES) \
                else {lang: str(title or name) for lang in LANGUAGES}
            count = layer.get("featureCount", 0)
            out.append(replace(
                feature, id=f"layer-{name}", layer=doc["id"], quality=None,
                title=bilingual({"vi": f"Lớp bản đồ: {titles['vi']}",
                                 "en": f"Map layer: {titles['en']}"}, f"layer {name}"),
                description={
                    "vi": f"{count} đối tượng {feature.id} của lớp {name}, nhập từ tệp "
                          f"{layer.get('sourceFile')}; cũng phục vụ qua OGC API - Features.",
                    "en": f"{count} {feature.id} features of the layer {name}, imported from "
                          f"{layer.get('sourceFile')}; also served by OGC API - Features."},
                entities=int(count) if isinstance(count, int) else 0,
                bbox=_box(layer.get("location")), modified=doc.get("modifiedAt"),
                history=()))
        return out

    def _extent(self, tenant: str, dataset: Dataset) -> None:
        box, dataset.modified = self.broker.store.type_extent(
            tenant, dataset.type_iri, self.broker.resolver.core.expand("location"))
        if box is not None:  # outwards to 1e-5 degrees (about a metre): SQLite's index
            west, south, east, north = box  # keeps float32 boxes
            dataset.bbox = (math.floor(west * 1e5) / 1e5, math.floor(south * 1e5) / 1e5,
                            math.ceil(east * 1e5) / 1e5, math.ceil(north * 1e5) / 1e5)

    def _quality(self, tenant: str) -> dict[str, float]:
        """Each type's database quality score: its agencies' scores, weighted by their
        entities."""
        ctx = self.broker.resolver.core
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(QUALITY, ctx.expand))],
            expand=ctx.expand, limit=1000))
        totals: dict[str, list[float]] = {}
        for doc in docs:
            assessed, score, n = (first_value(doc, ctx.expand(a))
                                  for a in ("assessedType", "score", "entities"))
            if isinstance(assessed, str) and isinstance(score, (int, float)) \
                    and isinstance(n, int) and n > 0:
                weighted = totals.setdefault(assessed, [0.0, 0.0])
                weighted[0] += score * n
                weighted[1] += n
        return {k: round(s / n, 1) for k, (s, n) in totals.items()}


def _haystack(d: Dataset) -> str:
    parts = [d.id, *d.title.values(), *d.description.values(), d.publisher.name["vi"],
             d.publisher.name["en"], *(k for words in d.keywords.values() for k in words)]
    return fold(" ".join(parts))


def _box(extent: Any) -> tuple[float, float, float, float] | None:
    """A layer's extent (the polygon of its box, as the import writes it) as a bbox."""
    if not isinstance(extent, dict) or extent.get("type") != "Polygon":
        return None
    xs = [p[0] for p in extent["coordinates"][0]]
    ys = [p[1] for p in extent["coordinates"][0]]
    return min(xs), min(ys), max(xs), max(ys)
