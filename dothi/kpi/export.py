"""A city's assessment report as an XLSX workbook, in Vietnamese or English: the summary
with a radar chart of the dimension scores, the criteria with their outcome and evidence,
the trend of the scores over the periods with a line chart, and the indicator values by
period. Charts are the workbook's own (openpyxl), so they open in Excel and LibreOffice."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import LineChart, RadarChart, Reference
from openpyxl.styles import Font, PatternFill

from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import city_values
from dothi.kpi.framework import Framework
from dothi.kpi.selfassess import SelfAssessment

TEXT = {
    "vi": {"summary": "Tổng quan", "criteria": "Tiêu chí", "trend": "Xu hướng",
           "indicators": "Chỉ số", "city": "Thành phố", "period": "Kỳ đánh giá",
           "framework": "Bộ tiêu chí", "status": "Trạng thái", "version": "Phiên bản",
           "level": "Cấp độ đạt được", "composite": "Điểm tổng hợp",
           "dimension": "Lĩnh vực", "score": "Điểm (0-100)", "weight": "Trọng số",
           "code": "Mã", "required": "Bắt buộc", "name": "Tiêu chí", "value": "Giá trị",
           "target": "Mục tiêu", "passed": "Kết quả", "reason": "Lý do",
           "evidence": "Minh chứng", "comment": "Nhận xét của đơn vị đánh giá",
           "indicator": "Chỉ số", "unit": "Đơn vị", "yes": "Đạt", "no": "Không đạt",
           "radar": "Điểm theo lĩnh vực", "trendChart": "Điểm qua các kỳ",
           "draft": "Dự thảo", "submitted": "Đã nộp", "returned": "Bị trả lại",
           "accepted": "Đã chấp thuận", "met": "đạt", "below-target": "chưa đạt mục tiêu",
           "no-value": "chưa có số liệu", "not-met": "thành phố chưa đáp ứng",
           "no-evidence": "thiếu minh chứng", "rejected": "đơn vị đánh giá không chấp nhận"},
    "en": {"summary": "Summary", "criteria": "Criteria", "trend": "Trend",
           "indicators": "Indicators", "city": "City", "period": "Period",
           "framework": "Framework", "status": "Status", "version": "Version",
           "level": "Level reached", "composite": "Composite score",
           "dimension": "Dimension", "score": "Score (0-100)", "weight": "Weight",
           "code": "Code", "required": "Required", "name": "Criterion", "value": "Value",
           "target": "Target", "passed": "Result", "reason": "Reason",
           "evidence": "Evidence", "comment": "Assessor's comment",
           "indicator": "Indicator", "unit": "Unit", "yes": "Passed", "no": "Failed",
           "radar": "Scores by dimension", "trendChart": "Scores over the periods",
           "draft": "Draft", "submitted": "Submitted", "returned": "Returned",
           "accepted": "Accepted", "met": "met", "below-target": "target not reached",
           "no-value": "no value", "not-met": "not met by the city",
           "no-evidence": "no evidence", "rejected": "rejected by the assessor"},
}
BOLD = Font(bold=True)
HEAD = PatternFill("solid", fgColor="DCE8F5")


def city_workbook(desk: SelfAssessment, catalogue: Catalogue, tenant: str, city: str,
                  period: str, lang: str) -> tuple[dict[str, Any], bytes]:
    """The period's assessment of the city, and its workbook."""
    indicators = {code: {p: v["value"] for p, v in values.items()}
                  for code, values in city_values(desk.broker, tenant, city).items()}
    state = desk.get(tenant, city, period)
    return state, workbook(desk.framework, catalogue, state, desk.trend(tenant, city),
                           indicators, lang)


def workbook(framework: Framework, catalogue: Catalogue, state: dict[str, Any],
             trend: list[dict[str, Any]], indicators: dict[str, dict[str, float]],
             lang: str) -> bytes:
    """``state``: the period's assessment; ``trend``: the city's assessments of every
    period, oldest first; ``indicators``: values by code, then period."""
    t = TEXT[lang]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t["summary"]
    for label, value in (("city", state["city"]), ("period", state["period"]),
                         ("framework", framework.title[lang]),
                         ("status", t[state["status"]]), ("version", state["version"]),
                         ("level", f"{state['level']}: {state['levelName'][lang]}"),
                         ("composite", state["composite"])):
        sheet.append([t[label], value])
        sheet.cell(sheet.max_row, 1).font = BOLD
    sheet.append([])
    first = sheet.max_row + 1
    _header(sheet, [t["dimension"], t["score"], t["weight"]])
    for d in framework.dimensions:
        sheet.append([d.name[lang], state["scores"].get(d.id), d.weight])
    radar = RadarChart()
    radar.type = "filled"
    radar.title = t["radar"]
    radar.y_axis.scaling.min, radar.y_axis.scaling.max = 0, 100
    radar.add_data(Reference(sheet, min_col=2, min_row=first,
                             max_row=first + len(framework.dimensions)), titles_from_data=True)
    radar.set_categories(Reference(sheet, min_col=1, min_row=first + 1,
                                   max_row=first + len(framework.dimensions)))
    sheet.add_chart(radar, "E2")
    _widths(sheet, [34, 40, 10])

    sheet = book.create_sheet(t["criteria"])
    _header(sheet, [t["code"], t["level"], t["dimension"], t["required"], t["name"],
                    t["value"], t["target"], t["passed"], t["reason"], t["evidence"],
                    t["comment"]])
    dims = {d.id: d.name[lang] for d in framework.dimensions}
    for c in framework.criteria:
        out = state["outcomes"].get(c.code, {})
        target = c.target()
        sheet.append([c.code, c.level, dims[c.dimension], t["yes"] if c.required else "",
                      c.name[lang], out.get("value"),
                      (f"≥ {c.at_least:g}" if c.at_least is not None else f"≤ {c.at_most:g}")
                      if target else "", t["yes"] if out.get("passed") else t["no"],
                      t.get(out.get("reason", ""), out.get("reason", "")),
                      out.get("evidence") or "", out.get("comment") or ""])
    _widths(sheet, [10, 8, 28, 10, 70, 12, 10, 12, 28, 40, 40])

    sheet = book.create_sheet(t["trend"])
    _header(sheet, [t["period"], t["composite"], *(d.name[lang] for d in framework.dimensions),
                    t["level"]])
    for past in trend:
        sheet.append([past["period"], past["composite"],
                      *(past["scores"].get(d.id) for d in framework.dimensions),
                      past["level"]])
    if trend:
        line = LineChart()
        line.title = t["trendChart"]
        line.y_axis.scaling.min, line.y_axis.scaling.max = 0, 100
        line.add_data(Reference(sheet, min_col=2, max_col=2 + len(framework.dimensions),
                                min_row=1, max_row=1 + len(trend)), titles_from_data=True)
        line.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=1 + len(trend)))
        sheet.add_chart(line, "A" + str(len(trend) + 4))
    _widths(sheet, [14, 16] + [22] * len(framework.dimensions) + [14])

    sheet = book.create_sheet(t["indicators"])
    periods = sorted({p for values in indicators.values() for p in values})
    _header(sheet, [t["code"], t["indicator"], t["unit"], *periods])
    for code in sorted(indicators):
        indicator = catalogue.indicators.get(code)
        name = "" if indicator is None else \
            indicator.name_vi if lang == "vi" and indicator.name_vi else indicator.name
        sheet.append([code, name,
                      indicator.unit if indicator else "",
                      *(indicators[code].get(p) for p in periods)])
    _widths(sheet, [18, 44, 24] + [12] * len(periods))

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _header(sheet: Any, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[sheet.max_row]:
        cell.font, cell.fill = BOLD, HEAD


def _widths(sheet: Any, widths: list[int]) -> None:
    for n, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + n)].width = width
