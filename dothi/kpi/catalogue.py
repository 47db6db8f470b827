"""The indicator catalogues (U4SSC's 91 KPIs, ISO 37120:2014's 100 indicators) and how
dothi computes some of them from the store (``methods.yaml``). Both are data the platform
loads; a city may point ``DOTHI_KPI_METHODS`` at its own methods."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
CATALOGUES = HERE / "catalogues"
METHODS = HERE / "methods.yaml"
MEASURES = ("count", "sum", "hectares", "mean", "share")


@dataclass(frozen=True)
class Indicator:
    code: str
    catalogue: str  # "U4SSC" or "ISO 37120"
    name: str
    dimension: str
    unit: str
    direction: str  # higher, lower, or what the catalogue says
    core: bool
    definition: str
    name_vi: str = ""  # dothi's translation (catalogues/u4ssc_names_vi.csv); "" if none


@dataclass(frozen=True)
class Method:
    numerator: dict[str, Any]
    denominator: dict[str, Any] | None
    scale: float


class Catalogue:
    def __init__(self, indicators: dict[str, Indicator], methods: dict[str, Method]) -> None:
        self.indicators = indicators
        self.methods = methods

    @classmethod
    def load(cls, methods: Path | None = None) -> Catalogue:
        indicators: dict[str, Indicator] = {}
        with (CATALOGUES / "u4ssc_names_vi.csv").open(encoding="utf-8") as f:
            vietnamese = {row["kpi_code"]: row["name_vi"] for row in csv.DictReader(f)}
        with (CATALOGUES / "u4ssc_kpis.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                indicators[row["kpi_code"]] = Indicator(
                    code=row["kpi_code"], catalogue="U4SSC", name=row["kpi_name"],
                    dimension=row["dimension"], unit=row["unit"],
                    direction=row["desirable_direction"],
                    core=row["core_or_advanced"].startswith("Core"),
                    definition=row["definition"], name_vi=vietnamese.get(row["kpi_code"], ""))
        with (CATALOGUES / "iso37120_2014_indicators.csv").open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if not row["iso37120_2014_clause_reconstructed"]:
                    continue  # listed by the file, but not in the standard (its note says)
                code = f"ISO 37120: {row['iso37120_2014_clause_reconstructed']}"
                indicators[code] = Indicator(
                    code=code, catalogue="ISO 37120", name=row["indicator"],
                    dimension=row["theme"], unit=_iso_unit(row["indicator"]),
                    direction="", core=row["core_or_supporting"] == "core",
                    definition=row["indicator"])
        source = methods or METHODS
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        found: dict[str, Method] = {}
        for code, item in (data.get("indicators") or {}).items():
            if code not in indicators:
                raise ValueError(f"{source}: {code!r} is in no catalogue")
            for part in ("numerator", "denominator"):
                if part in item:
                    _check_measure(item[part], f"{source}: {code} {part}")
            if "numerator" not in item:
                raise ValueError(f"{source}: {code} needs a numerator")
            found[code] = Method(numerator=item["numerator"],
                                 denominator=item.get("denominator"),
                                 scale=float(item.get("scale", scale_of(indicators[code]))))
        return cls(indicators, found)

    def indicator(self, code: str) -> Indicator:
        if code not in self.indicators:
            raise KeyError(f"No indicator {code!r} in the catalogues")
        return self.indicators[code]


def scale_of(indicator: Indicator) -> float:
    """What a ratio is multiplied by to be in the indicator's unit: 100 for a percentage,
    100,000 for "per 100 000 ...", else 1."""
    unit = indicator.unit.lower()
    if re.search(r"per\s*1?00\s*000", unit):
        return 100_000.0
    if re.search(r"per\s*1\s*000\b", unit):
        return 1_000.0
    if "%" in unit or unit.startswith("percentage"):
        return 100.0
    return 1.0


def _iso_unit(name: str) -> str:
    """ISO 37120's list names its unit inside the indicator's name."""
    lowered = name.lower()
    if "percent" in lowered or "(%)" in lowered:
        return "%"
    found = re.search(r"per\s*1\s*00\s*000(\s+\w+)?|per\s*1\s*000(\s+[\w ]+)?", name)
    if found:
        return found.group(0)
    if re.search(r"\brate\b", lowered) and " per " not in lowered:
        return "%"  # the list's rates without a "per" (unemployment, ...) are percentages
    unit = re.search(r"\(([^)]*)\)\s*$", name)
    return unit.group(1) if unit else ""


def _check_measure(measure: Any, where: str) -> None:
    if not isinstance(measure, dict) or len(measure) != 1 or next(iter(measure)) not in \
            MEASURES:
        raise ValueError(f"{where}: a measure is one of {', '.join(MEASURES)}")
    kind, spec = next(iter(measure.items()))
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: {kind} takes a mapping")
    needs = {"count": {"type"}, "sum": {"type", "attribute"}, "hectares": {"type"},
             "mean": {"type", "attribute"}, "share": {"amenity"}}[kind]
    if not needs <= set(spec):
        raise ValueError(f"{where}: {kind} needs {', '.join(sorted(needs))}")
