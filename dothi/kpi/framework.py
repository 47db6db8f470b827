"""The Vietnamese maturity framework (``catalogues/vn-smart-city.yaml``, or the file
``DOTHI_KPI_FRAMEWORK`` names): levels, dimensions and criteria as data, and the
evaluation of one city's period against them. Each criterion is passed or failed, and a
criterion without evidence fails; a level is reached when its required criteria and
enough of its optional ones pass, and every level below it is reached."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dothi.kpi.catalogue import CATALOGUES, Catalogue

FRAMEWORK = CATALOGUES / "vn-smart-city.yaml"


@dataclass(frozen=True)
class Criterion:
    code: str
    level: int
    dimension: str
    required: bool
    name: dict[str, str]  # vi, en
    kpi: str | None = None
    at_least: float | None = None
    at_most: float | None = None

    def target(self) -> dict[str, float] | None:
        if self.at_least is not None:
            return {"atLeast": self.at_least}
        if self.at_most is not None:
            return {"atMost": self.at_most}
        return None


@dataclass(frozen=True)
class Level:
    level: int
    name: dict[str, str]
    optional_to_pass: int


@dataclass(frozen=True)
class Dimension:
    id: str
    name: dict[str, str]
    weight: float


@dataclass(frozen=True)
class Framework:
    id: str
    title: dict[str, str]
    levels: tuple[Level, ...]
    dimensions: tuple[Dimension, ...]
    criteria: tuple[Criterion, ...]

    @classmethod
    def load(cls, path: Path | None, catalogue: Catalogue) -> Framework:
        source = path or FRAMEWORK
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        where = source.name

        def names(item: dict[str, Any], what: str) -> dict[str, str]:
            name = item.get("name")
            if not isinstance(name, dict) or not {"vi", "en"} <= set(name):
                raise ValueError(f"{where}: {what} needs a name with vi and en")
            return {"vi": str(name["vi"]), "en": str(name["en"])}

        levels = tuple(Level(level=int(x["level"]), name=names(x, f"level {x['level']}"),
                             optional_to_pass=int(x.get("optional_to_pass", 0)))
                       for x in data.get("levels") or [])
        if [x.level for x in levels] != list(range(1, len(levels) + 1)):
            raise ValueError(f"{where}: levels are numbered 1, 2, ... in order")
        dimensions = tuple(Dimension(id=str(x["id"]), name=names(x, f"dimension {x['id']}"),
                                     weight=float(x.get("weight", 1)))
                           for x in data.get("dimensions") or [])
        if any(not math.isfinite(d.weight) or d.weight < 0 for d in dimensions) or \
                not sum(d.weight for d in dimensions) > 0:
            raise ValueError(f"{where}: dimension weights are non-negative, not all 0")
        known = {d.id for d in dimensions}
        criteria: list[Criterion] = []
        for item in data.get("criteria") or []:
            code = str(item.get("code") or "")
            criterion = Criterion(
                code=code, level=int(item.get("level", 0)),
                dimension=str(item.get("dimension")), required=bool(item.get("required")),
                name=names(item, code), kpi=item.get("kpi"),
                at_least=_number(item.get("at_least")), at_most=_number(item.get("at_most")))
            if not code or code in {c.code for c in criteria}:
                raise ValueError(f"{where}: criterion {code!r} has no code or a repeated one")
            if not 1 <= criterion.level <= len(levels):
                raise ValueError(f"{where}: {code}: level {criterion.level} is not defined")
            if criterion.dimension not in known:
                raise ValueError(f"{where}: {code}: no dimension {criterion.dimension!r}")
            if criterion.kpi is not None:
                catalogue.indicator(criterion.kpi)  # KeyError names the unknown code
                if (criterion.at_least is None) == (criterion.at_most is None):
                    raise ValueError(f"{where}: {code}: a kpi takes at_least or at_most")
            criteria.append(criterion)
        for level in levels:
            optional = sum(1 for c in criteria if c.level == level.level and not c.required)
            if level.optional_to_pass > optional:
                raise ValueError(f"{where}: level {level.level} asks {level.optional_to_pass}"
                                 f" optional criteria of {optional}")
        return cls(id=str(data.get("id")), title=names({"name": data.get("title")}, "title"),
                   levels=levels, dimensions=dimensions, criteria=tuple(criteria))

    def criterion(self, code: str) -> Criterion:
        for c in self.criteria:
            if c.code == code:
                return c
        raise KeyError(f"No criterion {code!r} in {self.id}")

    def targets(self) -> dict[str, dict[str, float]]:
        """The indicators' targets the criteria set, by indicator code."""
        return {c.kpi: t for c in self.criteria if c.kpi and (t := c.target())}

    def evaluate(self, values: dict[str, float], answers: dict[str, dict[str, Any]],
                 rejected: dict[str, str]) -> Evaluation:
        """One city's period: ``values`` are its indicator values by code, ``answers``
        the city's declarations ``{met, evidence, note}`` by criterion, ``rejected`` the
        assessor's reasons by criterion."""
        outcomes = {c.code: _outcome(c, values, answers.get(c.code), rejected.get(c.code))
                    for c in self.criteria}
        level = 0
        for lv in self.levels:
            mine = [c for c in self.criteria if c.level == lv.level]
            required = all(outcomes[c.code]["passed"] for c in mine if c.required)
            optional = sum(1 for c in mine if not c.required and outcomes[c.code]["passed"])
            if not (required and optional >= lv.optional_to_pass):
                break
            level = lv.level
        scores = {}
        for d in self.dimensions:
            mine = [c for c in self.criteria if c.dimension == d.id]
            scores[d.id] = round(100 * sum(outcomes[c.code]["passed"] for c in mine)
                                 / len(mine), 1) if mine else None
        return Evaluation(outcomes=outcomes, level=level, scores=scores,
                          composite=self.composite(scores))

    def composite(self, scores: dict[str, float | None],
                  weights: dict[str, float] | None = None) -> float:
        """The weighted mean of the dimension scores (a dimension with no criteria is left
        out)."""
        weights = weights or {d.id: d.weight for d in self.dimensions}
        parts = [(weights[k], v) for k, v in scores.items() if v is not None]
        total = sum(w for w, _ in parts)
        return round(sum(w * v for w, v in parts) / total, 2) if total else 0.0

    def describe(self) -> dict[str, Any]:
        """The framework as the API and the report give it."""
        return {"id": self.id, "title": self.title,
                "levels": [{"level": x.level, "name": x.name,
                            "optionalToPass": x.optional_to_pass} for x in self.levels],
                "dimensions": [{"id": d.id, "name": d.name, "weight": d.weight}
                               for d in self.dimensions],
                "criteria": [{"code": c.code, "level": c.level, "dimension": c.dimension,
                              "required": c.required, "name": c.name, "kpi": c.kpi,
                              "target": c.target()} for c in self.criteria]}


@dataclass(frozen=True)
class Evaluation:
    outcomes: dict[str, dict[str, Any]]  # by criterion: passed, reason, value, evidence
    level: int  # 0: not even the first level
    scores: dict[str, float | None]  # by dimension, 0-100
    composite: float


def _outcome(c: Criterion, values: dict[str, float], answer: dict[str, Any] | None,
             rejection: str | None) -> dict[str, Any]:
    """Passed or not, and why: ``met``, ``below-target``, ``no-value``, ``not-met``,
    ``no-evidence`` or ``rejected``."""
    out: dict[str, Any] = {"passed": False, "value": None, "evidence": None}
    if c.kpi is not None:
        value = values.get(c.kpi)
        out["value"] = value
        if value is None:
            out["reason"] = "no-value"
        elif (c.at_least is not None and value < c.at_least) or \
                (c.at_most is not None and value > c.at_most):
            out["reason"] = "below-target"
        else:
            out["reason"] = "met"
    elif not answer or not answer.get("met"):
        out["reason"] = "not-met"
    elif not answer.get("evidence"):
        out["reason"] = "no-evidence"
    else:
        out["reason"] = "met"
        out["evidence"] = answer["evidence"]
    if answer and answer.get("evidence"):
        out["evidence"] = answer["evidence"]
    if out["reason"] == "met" and rejection:
        out["reason"] = "rejected"
        out["comment"] = rejection
    out["passed"] = out["reason"] == "met"
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number
