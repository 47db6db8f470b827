"""The maturity framework as data: the shipped file loads, a file with a mistake is
refused with the reason; a city's level and scores follow the rules (a required criterion
failed stops the level, a level above one not reached is not reached); cities are ranked
with ties settled and explained, and the sensitivity to the weights shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dothi.kpi.catalogue import Catalogue
from dothi.kpi.framework import FRAMEWORK, Framework
from dothi.kpi.ranking import rank

CATALOGUE = Catalogue.load()


@pytest.fixture(scope="module")
def framework() -> Framework:
    return Framework.load(None, CATALOGUE)


def test_the_shipped_framework(framework: Framework) -> None:
    assert [lv.name["vi"] for lv in framework.levels] == [
        "Xây dựng nền tảng", "Liên kết hệ thống", "Đổi mới quản trị"]
    assert len(framework.dimensions) == 5
    assert all(c.code.startswith("DT-") for c in framework.criteria)
    assert framework.targets()["EN: EN: AQ: 1C"] == {"atMost": 25.0}


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["criteria"][0].update(kpi="XX: 1"), "No indicator"),
    (lambda d: d["criteria"][0].update(dimension="sport"), "no dimension 'sport'"),
    (lambda d: d["criteria"][0].update(level=4), "level 4 is not defined"),
    (lambda d: d["criteria"][2].pop("at_least"), "a kpi takes at_least or at_most"),
    (lambda d: d["criteria"][1].update(code="DT-1.01"), "repeated"),
    (lambda d: d["criteria"][0].update(name={"vi": "Chỉ tiếng Việt"}), "vi and en"),
    (lambda d: d["levels"][0].update(optional_to_pass=9), "asks 9 optional criteria of 3"),
    (lambda d: d["dimensions"][0].update(weight=-1), "non-negative"),
    (lambda d: d["levels"].pop(0), "numbered 1, 2"),
])
def test_a_wrong_file_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    data = yaml.safe_load(FRAMEWORK.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "framework.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises((ValueError, KeyError), match=message):
        Framework.load(path, CATALOGUE)


def answers(*codes: str) -> dict[str, dict[str, Any]]:
    return {c: {"met": True, "evidence": f"https://a.vn/{c}"} for c in codes}


LEVEL1 = answers("DT-1.01", "DT-1.02", "DT-1.04", "DT-1.05", "DT-1.08")
VALUES = {"EC: ICT: ICT: 4C": 97.0, "EC: ICT: ICT: 5C": 60.0}


def test_levels_follow_the_rules(framework: Framework) -> None:
    assert framework.evaluate({}, {}, {}).level == 0
    assert framework.evaluate(VALUES, LEVEL1, {}).level == 1
    # Only one optional criterion of level 1 (it asks two): not reached.
    without = {k: v for k, v in LEVEL1.items() if k != "DT-1.08"}
    assert framework.evaluate(VALUES, without, {}).level == 0
    # Declared met without evidence fails, as the circular says.
    bare = {**LEVEL1, "DT-1.01": {"met": True}}
    one = framework.evaluate(VALUES, bare, {})
    assert one.outcomes["DT-1.01"]["reason"] == "no-evidence" and one.level == 0
    # Every criterion of level 3 passed, but level 2 is not: level 1 only.
    top = {**LEVEL1, **answers("DT-3.01")}
    values = {**VALUES, "EC: ICT: D: 1A": 80.0, "EN: E: E: 1C": 25.0}
    assert framework.evaluate(values, top, {}).level == 1
    level2 = {**top, **answers("DT-2.02", "DT-2.03")}
    values |= {"EC: ICT: T: 2C": 30.0, "EC: I: T: 2A": 61.0}
    full = framework.evaluate(values, level2, {})
    assert full.level == 3
    rejected = framework.evaluate(values, level2, {"DT-2.03": "the warnings are SMS only"})
    assert rejected.level == 1 and rejected.outcomes["DT-2.03"]["comment"]
    assert full.scores["environment"] == 50.0  # 2 of 4: no PM2.5, no green areas
    assert full.composite == pytest.approx(
        sum(s for s in full.scores.values() if s is not None) / 5, abs=0.01)


def assessed(framework: Framework, city: str, codes: dict[str, Any],
             values: dict[str, float], status: str = "accepted") -> dict[str, Any]:
    ev = framework.evaluate(values, codes, {})
    return {"city": city, "status": status, "scores": ev.scores, "level": ev.level,
            "outcomes": ev.outcomes}


def test_ties_are_settled_and_explained(framework: Framework) -> None:
    hue = assessed(framework, "hue", LEVEL1, VALUES)
    # Same criteria passed, other names: equal on everything, they share the rank.
    twin = assessed(framework, "vinh", LEVEL1, VALUES)
    # The same composite with one required criterion fewer and one optional more.
    other = {k: v for k, v in LEVEL1.items() if k != "DT-1.05"} | answers("DT-3.01")
    lower = assessed(framework, "hoian", other, VALUES)
    assert lower["level"] == 0
    ranking = rank(framework, [hue, twin, lower, {"city": "cantho", "status": "submitted"}])
    rows = {r["city"]: r for r in ranking["rows"]}
    assert rows["hue"]["composite"] == rows["hoian"]["composite"]
    assert (rows["hue"]["rank"], rows["vinh"]["rank"], rows["hoian"]["rank"]) == (1, 1, 3)
    assert rows["hue"]["tie"] == {"with": ["hoian", "vinh"], "settledBy": "shared"}
    assert rows["hoian"]["tie"] == {"with": ["hue", "vinh"], "settledBy": "level"}
    assert ranking["notRanked"] == [{"city": "cantho", "status": "submitted"}]


def test_sensitivity_shows_a_rank_that_depends_on_the_weights(
        framework: Framework) -> None:
    # One more criterion each: of infrastructure's 4 criteria, of governance's 3.
    infra = assessed(framework, "hue", LEVEL1 | answers("DT-2.02"), VALUES)
    gov = assessed(framework, "vinh", LEVEL1 | answers("DT-3.01"), VALUES)
    rows = {r["city"]: r for r in rank(framework, [infra, gov])["rows"]}
    assert rows["vinh"]["rank"] == 1
    assert rows["hue"]["sensitivity"]["best"] == 1
    assert rows["hue"]["sensitivity"]["ranks"]["infrastructure×2"] == 1
    assert rows["vinh"]["sensitivity"]["worst"] == 2
