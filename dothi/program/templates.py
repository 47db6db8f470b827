"""Report templates (``templates.yaml``, or the file ``DOTHI_PROGRAM_TEMPLATES`` names):
the sections a unit's report has, each free text, indicator values or the unit's tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dothi.kpi.catalogue import Catalogue

TEMPLATES = Path(__file__).with_name("templates.yaml")
KINDS = ("text", "indicators", "tasks")


@dataclass(frozen=True)
class Section:
    key: str
    kind: str
    title: dict[str, str]
    required: bool = False
    min_length: int = 1
    indicators: tuple[str, ...] = ()
    required_indicators: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "title": self.title,
                               "required": self.required}
        if self.kind == "text":
            out["minLength"] = self.min_length
        if self.kind == "indicators":
            out.update(indicators=list(self.indicators),
                       requiredIndicators=list(self.required_indicators))
        return out


@dataclass(frozen=True)
class Template:
    key: str
    title: dict[str, str]
    sections: tuple[Section, ...]
    due: str | None = None  # MM-DD, for an annual report

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "due": self.due,
                "sections": [s.describe() for s in self.sections]}

    @property
    def indicators(self) -> tuple[str, ...]:
        return tuple(c for s in self.sections if s.kind == "indicators" for c in s.indicators)


def load_templates(path: Path | None, catalogue: Catalogue) -> dict[str, Template]:
    """The templates of the file, checked against the indicator catalogues; a mistake
    is a ValueError naming it."""
    source = path or TEMPLATES
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    out = {}
    for key, spec in (data or {}).get("templates", {}).items():
        where = f"{source}: template {key}"
        due = spec.get("due")
        if due is not None and not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
                                                str(due)):
            raise ValueError(f"{where}: due is MM-DD")
        sections, keys = [], set()
        for item in spec.get("sections", []):
            kind = item.get("kind")
            if kind not in KINDS:
                raise ValueError(f"{where}: section {item.get('key')}: kind is one of "
                                 f"{', '.join(KINDS)}")
            if item.get("key") in keys:
                raise ValueError(f"{where}: section {item['key']} twice")
            keys.add(item["key"])
            codes = tuple(item.get("indicators", ()))
            required = item.get("required", False)
            required_codes: tuple[str, ...] = ()
            if kind == "indicators" and isinstance(required, list):
                required_codes, required = tuple(required), bool(required)
            for code in codes + required_codes:
                if code not in catalogue.indicators:
                    raise ValueError(f"{where}: no indicator {code!r} in the catalogues")
            if not set(required_codes) <= set(codes):
                raise ValueError(f"{where}: a required indicator must be listed too")
            sections.append(Section(item["key"], kind, dict(item["title"]), bool(required),
                                    int(item.get("min_length", 1)), codes, required_codes))
        out[key] = Template(key, dict(spec["title"]), tuple(sections),
                            None if due is None else str(due))
    return out
