"""Ranking cities on their accepted assessments, with the method stated, its sensitivity
to the weights shown, and ties explained.

- **Score.** Each dimension's score is the share of its criteria the city passed (0-100;
  the same scale for every dimension, so no further normalisation). The composite is the
  weighted mean of the dimension scores, with the framework's weights.
- **Order.** Higher composite first; on an equal composite (to 0.01), the higher level
  first, then more required criteria passed; cities equal on all three share a rank
  (1, 2, 2, 4).
- **Sensitivity.** The ranking is computed again with equal weights, and with each
  dimension's weight doubled and halved in turn; each city gets its best and worst rank
  over these scenarios.
"""

from __future__ import annotations

from typing import Any

from dothi.kpi.framework import Framework

METHOD = {
    "vi": "Điểm mỗi lĩnh vực là tỷ lệ tiêu chí đạt (0-100). Điểm tổng hợp là trung bình có "
          "trọng số của điểm các lĩnh vực. Bằng điểm tổng hợp thì xét cấp độ, rồi số tiêu chí "
          "bắt buộc đạt; vẫn bằng thì đồng hạng. Độ nhạy: xếp hạng lại với trọng số bằng nhau "
          "và với trọng số từng lĩnh vực nhân đôi, giảm một nửa.",
    "en": "Each dimension's score is the share of its criteria passed (0-100). The composite "
          "is the weighted mean of the dimension scores. On an equal composite, the level "
          "decides, then the required criteria passed; still equal, cities share the rank. "
          "Sensitivity: the ranking again with equal weights, and with each dimension's "
          "weight doubled and halved.",
}


def scenarios(framework: Framework) -> list[dict[str, Any]]:
    stated = {d.id: d.weight for d in framework.dimensions}
    out = [{"id": "stated", "name": {"vi": "Trọng số đã công bố", "en": "Stated weights"},
            "weights": stated},
           {"id": "equal", "name": {"vi": "Trọng số bằng nhau", "en": "Equal weights"},
            "weights": {k: 1.0 for k in stated}}]
    for d in framework.dimensions:
        for factor, vi, en in ((2.0, "nhân đôi", "doubled"), (0.5, "giảm một nửa", "halved")):
            out.append({"id": f"{d.id}×{factor:g}",
                        "name": {"vi": f"{d.name['vi']}: trọng số {vi}",
                                 "en": f"{d.name['en']}: weight {en}"},
                        "weights": {**stated, d.id: d.weight * factor}})
    return out


def rank(framework: Framework, assessments: list[dict[str, Any]]) -> dict[str, Any]:
    """``assessments`` are the states of ``SelfAssessment``; the accepted ones are
    ranked, the others listed as not ranked with their status."""
    accepted = [a for a in assessments if a["status"] == "accepted"]
    required = {c.code for c in framework.criteria if c.required}
    facts = {a["city"]: {"scores": a["scores"], "level": a["level"],
                         "required": sum(1 for code, o in a["outcomes"].items()
                                         if code in required and o["passed"])}
             for a in accepted}
    weightings = scenarios(framework)
    runs = {s["id"]: _order(framework, facts, s["weights"]) for s in weightings}
    stated = runs["stated"]
    rows = []
    for city, place in stated.items():
        ranks = {sid: run[city]["rank"] for sid, run in runs.items()}
        rows.append({"city": city, "rank": place["rank"], "composite": place["composite"],
                     "level": facts[city]["level"], "scores": facts[city]["scores"],
                     "requiredPassed": facts[city]["required"], "tie": place["tie"],
                     "sensitivity": {"best": min(ranks.values()),
                                     "worst": max(ranks.values()), "ranks": ranks}})
    rows.sort(key=lambda r: (r["rank"], r["city"]))
    return {"method": METHOD, "framework": framework.id,
            "scenarios": weightings,
            "rows": rows,
            "notRanked": sorted(({"city": a["city"], "status": a["status"]}
                                 for a in assessments if a["status"] != "accepted"),
                                key=lambda r: r["city"])}


def _order(framework: Framework, facts: dict[str, dict[str, Any]],
           weights: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each city's rank and composite under the weights, and how a tie was settled."""
    composite = {city: framework.composite(f["scores"], weights) for city, f in facts.items()}

    def key(city: str) -> tuple[float, int, int]:
        return (-composite[city], -facts[city]["level"], -facts[city]["required"])

    cities = sorted(facts, key=lambda c: (key(c), c))
    out: dict[str, dict[str, Any]] = {}
    for n, city in enumerate(cities):
        same_score = sorted(c for c in cities if c != city and composite[c] == composite[city])
        rank = n + 1
        if n and key(cities[n - 1]) == key(city):
            rank = out[cities[n - 1]]["rank"]
        tie = None
        if same_score:
            shared = [c for c in same_score if key(c) == key(city)]
            same_level = [c for c in same_score if facts[c]["level"] == facts[city]["level"]]
            tie = {"with": same_score,
                   "settledBy": "shared" if shared else
                   ("requiredPassed" if len(same_level) == len(same_score) else "level")}
        out[city] = {"rank": rank, "composite": composite[city], "tie": tie}
    return out
