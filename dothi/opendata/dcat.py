"""The catalogue as DCAT-AP 3 JSON-LD, for national and other portals to harvest.

The @context is written out in the document itself, so the document expands with no
network access. Vocabularies: DCAT 3 (W3C), DCAT-AP 3.0 (SEMIC), Dublin Core terms, FOAF,
vCard, Locn and the EU Publications Office's authority tables (frequency, data theme,
file type, licence, access right)."""

from __future__ import annotations

from typing import Any

from dothi.opendata.catalogue import Dataset, Metadata

EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "locn": "http://www.w3.org/ns/locn#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dqv": "http://www.w3.org/ns/dqv#",
    "dct:issued": {"@type": "xsd:dateTime"},
    "dct:modified": {"@type": "xsd:dateTime"},
    "dcat:startDate": {"@type": "xsd:dateTime"},
    "dcat:endDate": {"@type": "xsd:dateTime"},
    "dcat:bbox": {"@type": "http://www.opengis.net/ont/geosparql#wktLiteral"},
    "dcat:accessURL": {"@type": "@id"},
    "dcat:downloadURL": {"@type": "@id"},
    "dcat:landingPage": {"@type": "@id"},
    "dcat:mediaType": {"@type": "@id"},
    "dcat:theme": {"@type": "@id"},
    "dct:format": {"@type": "@id"},
    "dct:license": {"@type": "@id"},
    "dct:accrualPeriodicity": {"@type": "@id"},
    "dct:accessRights": {"@type": "@id"},
    "dct:conformsTo": {"@type": "@id"},
    "foaf:page": {"@type": "@id"},
    "vcard:hasEmail": {"@type": "@id"},
}
# The database quality score of `dothi kpi quality` (0-100), a metric of dothi's own.
QUALITY_METRIC = "urn:dothi:quality-metric:database-score"
FILE_TYPES = {"csv": ("CSV", "text/csv"), "geojson": ("GEOJSON", "application/geo+json"),
              "jsonld": ("JSON_LD", "application/ld+json"),
              "parquet": ("PARQUET", "application/vnd.apache.parquet")}
FORMAT_TITLES = {"csv": "CSV", "geojson": "GeoJSON", "jsonld": "NGSI-LD (JSON-LD)",
                 "parquet": "Apache Parquet"}


def catalogue(metadata: Metadata, datasets: list[Dataset], base: str) -> dict[str, Any]:
    """The DCAT-AP catalogue of ``datasets``; ``base`` is the server's URL (no slash at the
    end)."""
    home = f"{base}/opendata"
    return {
        "@context": CONTEXT,
        "@id": f"{home}/catalog",
        "@type": "dcat:Catalog",
        "dct:title": _texts(metadata.title),
        "dct:description": _texts(metadata.description),
        "dct:publisher": _agency(metadata.publisher, base),
        "dct:license": metadata.licence.uri,
        "foaf:homepage": {"@id": home},
        "dct:language": [{"@id": f"{EU}language/VIE"}, {"@id": f"{EU}language/ENG"}],
        "dcat:dataset": [dataset(d, base) for d in datasets],
    }


def dataset(d: Dataset, base: str) -> dict[str, Any]:
    url = f"{base}/opendata/datasets/{d.id}"
    out: dict[str, Any] = {
        "@id": url,
        "@type": "dcat:Dataset",
        "dct:identifier": d.id,
        "dct:title": _texts(d.title),
        "dct:description": _texts(d.description),
        "dct:publisher": _agency(d.publisher, base),
        "dcat:contactPoint": {"@type": "vcard:Organization", "vcard:fn": d.publisher.name["vi"],
                              **({"vcard:hasEmail": f"mailto:{d.publisher.email}"}
                                 if d.publisher.email else {})},
        "dct:accessRights": EU + "access-right/" + ("PUBLIC" if d.open else "NON_PUBLIC"),
        "dcat:landingPage": f"{base}/opendata?dataset={d.id}",
        "dcat:keyword": [{"@value": k, "@language": lang}
                         for lang, words in d.keywords.items() for k in words],
        "dct:conformsTo": f"{base}/ngsi-ld/v1/types/{d.id}",
    }
    if d.theme:
        out["dcat:theme"] = f"{EU}data-theme/{d.theme}"
    if d.frequency:
        out["dct:accrualPeriodicity"] = f"{EU}frequency/{d.frequency}"
    if d.modified:
        out["dct:modified"] = d.modified
    if d.bbox:
        w, s, e, n = d.bbox
        out["dct:spatial"] = {"@type": "dct:Location", "dcat:bbox": (
            f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))")}
    if d.quality is not None:
        out["dqv:hasQualityMeasurement"] = {
            "@type": "dqv:QualityMeasurement", "dqv:value": d.quality,
            "dqv:isMeasurementOf": {"@id": QUALITY_METRIC}}
    if d.open:
        out["dcat:distribution"] = [_distribution(d, url, fmt, f"{url}/data.{fmt}", None)
                                    for fmt in FILE_TYPES]
        if d.history:
            out["dcat:distribution"] += [
                _distribution(d, url, fmt, f"{url}/history.{fmt}",
                              {"vi": "Chuỗi giá trị theo thời gian (tham số from, to)",
                               "en": "Values over time (parameters from, to)"})
                for fmt in ("csv", "parquet")]
    return out


def _distribution(d: Dataset, url: str, fmt: str, download: str,
                  note: dict[str, str] | None) -> dict[str, Any]:
    code, media = FILE_TYPES[fmt]
    title = {"vi": f"{d.title['vi']} ({FORMAT_TITLES[fmt]})",
             "en": f"{d.title['en']} ({FORMAT_TITLES[fmt]})"}
    if note is not None:
        title = {lang: f"{title[lang]}: {note[lang]}" for lang in title}
    return {"@id": f"{download}#distribution", "@type": "dcat:Distribution",
            "dct:title": _texts(title), "dcat:accessURL": url, "dcat:downloadURL": download,
            "dct:format": f"{EU}file-type/{code}", "dcat:mediaType": IANA + media,
            "dct:license": d.licence.uri, "foaf:page": d.licence.page}


def _agency(agency: Any, base: str) -> dict[str, Any]:
    return {"@id": f"{base}/opendata/agencies/{agency.key}", "@type": "foaf:Agent",
            "foaf:name": _texts(agency.name)}


def _texts(texts: dict[str, str]) -> list[dict[str, str]]:
    return [{"@value": text, "@language": lang} for lang, text in texts.items()]
