"""The demo's assessments: Đà Nẵng over three years and three other cities for 2026, so
that ``make demo`` shows a full report (values, levels, radar, trend) and a ranking.

The figures in ``demo-values.csv`` are illustrative, not official statistics; so are the
evidence links, on the reserved ``.invalid`` domain. Đà Nẵng's 2026 values are computed
from the demo city's own entities where dothi has a method, and taken from the file for
the rest; each city declares the criteria it meets, submits, and the demo assessor
accepts, except Hải Phòng's, returned for a missing document."""

from __future__ import annotations

from pathlib import Path

from dothi.broker.broker import Broker
from dothi.gis.assessment import Assessor
from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import Computer, read_raw
from dothi.kpi.selfassess import SelfAssessment

VALUES = Path(__file__).with_name("demo-values.csv")
FOUNDATION = ("DT-1.01", "DT-1.02", "DT-1.04", "DT-1.05", "DT-1.08")
# What each city declares met, by period; the review: accept, or return with a comment.
DECLARED = {
    ("danang", "2024"): (FOUNDATION[:3] + ("DT-1.05",), None),
    ("danang", "2025"): (FOUNDATION + ("DT-2.02",), None),
    ("danang", "2026"): (FOUNDATION + ("DT-2.02", "DT-2.03", "DT-3.01"), None),
    ("hue", "2026"): (FOUNDATION + ("DT-2.02", "DT-2.03"), None),
    ("cantho", "2026"): (FOUNDATION, None),
    ("haiphong", "2026"): (FOUNDATION + ("DT-2.02",),
                           "Bổ sung quyết định phê duyệt đề án đô thị thông minh / "
                           "Add the decision approving the smart-city scheme"),
}


def assess_demo(broker: Broker, catalogue: Catalogue, desk: SelfAssessment,
                assessor: Assessor, tenant: str) -> int:
    """Computes, enters and reviews the demo's assessments; returns how many."""
    computer = Computer(broker, catalogue, assessor, desk.framework.targets())
    computer.store(tenant, computer.compute(tenant, "danang", "2026"))
    computer.store(tenant, computer.from_raw(read_raw(VALUES), VALUES.name))
    for (city, period), (codes, returned) in DECLARED.items():
        for code in codes:
            desk.answer(tenant, city, period, code, True,
                        f"https://{city}.demo.invalid/minh-chung/{code}.pdf", None,
                        "demo city officer")
        desk.submit(tenant, city, period, "demo city officer")
        desk.review(tenant, city, period, "return" if returned else "accept", returned,
                    None, "demo assessor")
    return len(DECLARED)
