"""The services citizens can report on (``services.yaml``): their Open311 list and
definitions in Vietnamese or English, the check of a report's service attributes, and who
handles a report of a service in an area."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dothi.errors import BadRequestData
from dothi.ioc.incidents import Workflow

SERVICES = Path(__file__).with_name("services.yaml")
LOCALES = ("vi", "en")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
MAX_ATTRIBUTE = 500


@dataclass(frozen=True)
class Service:
    code: str
    name: dict[str, str]
    description: dict[str, str]
    group: dict[str, str]
    keywords: list[str]
    agency: str
    incident: dict[str, str]
    attributes: list[dict[str, Any]] = field(default_factory=list)


class Catalogue:
    def __init__(self, services: dict[str, Service],
                 routing: dict[tuple[str, str], str]) -> None:
        self.services = services
        self.routing = routing

    @classmethod
    def load(cls, path: Path | None, workflow: Workflow) -> Catalogue:
        """Loads and checks the file: every agency and incident category must be the
        workflow's, every attribute well formed; a mistake names the service."""
        source = path or SERVICES
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        services: dict[str, Service] = {}
        for code, item in (data.get("services") or {}).items():
            where = f"{source}: service {code}"
            for texts in ("name", "description", "group"):
                if not isinstance(item.get(texts), dict) or set(item[texts]) != set(LOCALES):
                    raise ValueError(f"{where}: {texts} needs vi and en")
            if item.get("agency") not in workflow.agencies:
                raise ValueError(f"{where}: agency {item.get('agency')!r} is not one of "
                                 f"{sorted(workflow.agencies)}")
            incident = item.get("incident") or {}
            if incident.get("category") not in workflow.categories or \
                    incident.get("severity") not in workflow.severities:
                raise ValueError(f"{where}: incident needs a workflow category and severity")
            attributes = item.get("attributes") or []
            for order, attribute in enumerate(attributes, 1):
                if attribute.get("datatype") not in DATATYPES or not attribute.get("code") \
                        or set(attribute.get("description") or {}) != set(LOCALES):
                    raise ValueError(f"{where}: attribute {order} needs a code, a datatype "
                                     f"({', '.join(DATATYPES)}) and a vi/en description")
                if attribute["datatype"].endswith("valuelist") and not attribute.get("values"):
                    raise ValueError(f"{where}: attribute {attribute['code']} lists no values")
            services[code] = Service(
                code=code, name=item["name"], description=item["description"],
                group=item["group"], keywords=list(item.get("keywords") or []),
                agency=item["agency"], incident=incident, attributes=attributes)
        routing: dict[tuple[str, str], str] = {}
        for rule in data.get("routing") or []:
            if rule.get("service") not in services or rule.get("agency") not in \
                    workflow.agencies or not isinstance(rule.get("area"), str):
                raise ValueError(f"{source}: routing {rule} needs a known service and "
                                 "agency, and an area id")
            routing[(rule["service"], rule["area"])] = rule["agency"]
        if not services:
            raise ValueError(f"{source}: no services")
        return cls(services, routing)

    def service(self, code: Any) -> Service:
        if not isinstance(code, str) or code not in self.services:
            raise BadRequestData(f"service_code must be one of {sorted(self.services)}")
        return self.services[code]

    def agency(self, service: Service, area: str | None) -> str:
        """Who handles a report of ``service`` made in ``area`` (an AdministrativeArea id)."""
        if area is not None and (service.code, area) in self.routing:
            return self.routing[(service.code, area)]
        return service.agency

    # -- Open311 views ---------------------------------------------------------------------

    def listing(self, locale: str) -> list[dict[str, Any]]:
        return [{"service_code": s.code, "service_name": s.name[locale],
                 "description": s.description[locale], "metadata": bool(s.attributes),
                 "type": "realtime", "keywords": ", ".join(s.keywords),
                 "group": s.group[locale]} for s in self.services.values()]

    def definition(self, code: str, locale: str) -> dict[str, Any]:
        service = self.service(code)
        return {"service_code": code, "attributes": [{
            "variable": True, "code": a["code"], "datatype": a["datatype"],
            "required": bool(a.get("required")),
            "datatype_description": None, "order": order,
            "description": a["description"][locale],
            "values": [{"key": v["key"], "name": v["name"][locale]}
                       for v in a.get("values") or []],
        } for order, a in enumerate(service.attributes, 1)]}

    def check_attributes(self, service: Service, given: dict[str, list[str]]
                         ) -> dict[str, Any]:
        """The report's ``attribute[code]`` values, checked against the definition: the
        required ones present, list values among the keys, numbers numbers."""
        known = {a["code"]: a for a in service.attributes}
        unknown = set(given) - set(known)
        if unknown:
            raise BadRequestData(f"service {service.code} has no attribute "
                                 f"{', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for code, attribute in known.items():
            values = [v for v in given.get(code, []) if v != ""]
            if not values:
                if attribute.get("required"):
                    raise BadRequestData(f"attribute[{code}] is required: "
                                         f"{attribute['description']['en']}")
                continue
            kind = attribute["datatype"]
            if any(len(v) > MAX_ATTRIBUTE for v in values):
                raise BadRequestData(f"attribute[{code}] is longer than {MAX_ATTRIBUTE}")
            if kind.endswith("valuelist"):
                keys = {str(v["key"]) for v in attribute["values"]}
                wrong = [v for v in values if v not in keys]
                if wrong or (kind == "singlevaluelist" and len(values) > 1):
                    raise BadRequestData(f"attribute[{code}] takes "
                                         f"{'one of' if kind == 'singlevaluelist' else ''} "
                                         f"{', '.join(sorted(keys))}")
                out[code] = values[0] if kind == "singlevaluelist" else values
            elif kind == "number":
                try:
                    out[code] = float(values[0])
                except ValueError:
                    raise BadRequestData(f"attribute[{code}] is a number") from None
            else:
                out[code] = values[0]
        return out
