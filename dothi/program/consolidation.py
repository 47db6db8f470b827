"""The national report of a request: the units' reports side by side (who submitted,
on time or late, who is overdue; each indicator per unit with its range; the tasks'
progress per unit; what each unit wrote), and the same as a DOCX document with a bar
chart per indicator, in Vietnamese or English."""

from __future__ import annotations

import io
import statistics
from datetime import date
from pathlib import Path
from typing import Any

from docx import Document
from docx.shared import Cm, Pt
from PIL import Image, ImageDraw, ImageFont

from dothi.program.reports import Reporting
from dothi.program.tasks import today

SENT = ("submitted", "accepted")
FONTS = ("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
WORDS = {
    "vi": {"report": "Báo cáo tổng hợp", "period": "Kỳ báo cáo", "due": "Hạn nộp",
           "made": "Lập ngày", "summary": "Tình hình nộp báo cáo", "unit": "Đơn vị",
           "status": "Trạng thái", "submitted": "Ngày nộp", "late": "Trễ hạn (ngày)",
           "overdue": "Quá hạn, chưa nộp", "asked": "Số đơn vị được yêu cầu",
           "onTime": "Nộp đúng hạn", "lateCount": "Nộp trễ hạn",
           "missing": "Chưa nộp", "indicators": "Chỉ số", "value": "Giá trị",
           "mean": "Trung bình", "range": "Khoảng", "tasks": "Tiến độ nhiệm vụ",
           "taskCount": "Số nhiệm vụ", "done": "Hoàn thành", "overdueTasks": "Quá hạn",
           "progress": "Tiến độ bình quân (%)", "texts": "Nội dung báo cáo của các đơn vị",
           "none": "Chưa có đơn vị nào nộp.", "days": "ngày"},
    "en": {"report": "Consolidated report", "period": "Period", "due": "Due",
           "made": "Made on", "summary": "Submissions", "unit": "Unit",
           "status": "Status", "submitted": "Submitted", "late": "Late (days)",
           "overdue": "Overdue, not submitted", "asked": "Units asked",
           "onTime": "Submitted on time", "lateCount": "Submitted late",
           "missing": "Not submitted", "indicators": "Indicators", "value": "Value",
           "mean": "Mean", "range": "Range", "tasks": "Progress of the tasks",
           "taskCount": "Tasks", "done": "Done", "overdueTasks": "Overdue",
           "progress": "Mean progress (%)", "texts": "What the units reported",
           "none": "No unit has submitted yet.", "days": "days"},
}


def consolidate(reporting: Reporting, tenant: str, key: str,
                on: date | None = None) -> dict[str, Any]:
    request = reporting.request(tenant, key)
    template = reporting.template(request["template"])
    every = reporting.reports_of(tenant, key)
    rows = reporting.rows(request, every, on)
    reports = {unit: r for unit, r in every.items() if r.get("status") in SENT}
    indicators = []
    for code in template.indicators:
        indicator = reporting.computer.catalogue.indicator(code)
        values = {u: r["indicators"][code]["value"] for u, r in reports.items()
                  if code in (r.get("indicators") or {})}
        numbers = list(values.values())
        indicators.append({
            "code": code, "name": indicator.name, "nameVi": indicator.name_vi or None,
            "unit": indicator.unit, "direction": indicator.direction, "values": values,
            "mean": statistics.fmean(numbers) if numbers else None,
            "min": min(numbers) if numbers else None, "max": max(numbers) if numbers else None})
    tasks = {}
    for unit, report in reports.items():
        items = report.get("tasks") or []
        tasks[unit] = {"count": len(items),
                       "done": sum(1 for t in items if t.get("status") == "done"),
                       "overdue": sum(1 for t in items if t.get("flag") == "overdue"),
                       "progress": statistics.fmean(float(t.get("progress") or 0)
                                                    for t in items) if items else None}
    texts = {s.key: {"title": s.title, "units": {u: (r.get("sections") or {}).get(s.key, "")
                                                 for u, r in reports.items()}}
             for s in template.sections if s.kind == "text"}
    counts = {"asked": len(rows),
              "onTime": sum(1 for r in rows if r["submittedAt"] and not r["late"]),
              "late": sum(1 for r in rows if r["late"]),
              "overdue": sum(1 for r in rows if r["overdue"]),
              "missing": sum(1 for r in rows if not r["submittedAt"]),
              "accepted": sum(1 for r in rows if r["status"] == "accepted")}
    return {"request": {k: request[k] for k in ("key", "title", "period", "dueDate", "kind",
                                                "units")},
            "on": (on or today()).isoformat(), "counts": counts, "units": rows,
            "indicators": indicators, "tasks": tasks, "texts": texts}


def national_docx(national: dict[str, Any], lang: str) -> bytes:
    """The consolidated report as a DOCX document."""
    w = WORDS[lang]
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Times New Roman"  # the administrative documents' typeface
    style.font.size = Pt(12)
    request = national["request"]
    doc.add_heading(f"{w['report']}: {request['title'][lang]}", level=0)
    doc.add_paragraph(f"{w['period']}: {request['period']}    {w['due']}: "
                      f"{request['dueDate']}    {w['made']}: {national['on']}")

    doc.add_heading(w["summary"], level=1)
    counts = national["counts"]
    doc.add_paragraph(
        f"{w['asked']}: {counts['asked']}; {w['onTime']}: {counts['onTime']}; "
        f"{w['lateCount']}: {counts['late']}; {w['missing']}: {counts['missing']} "
        f"({w['overdue'].lower()}: {counts['overdue']}).")
    _table(doc, [w["unit"], w["status"], w["submitted"], w["late"]], [
        [f"{r['name']} ({r['unit']})",
         w["overdue"] if r["overdue"] else r["statusTitle"][lang],
         (r["submittedAt"] or "")[:10],
         str(r["lateDays"]) if r["late"] else ""] for r in national["units"]])

    names = {r["unit"]: r["name"] for r in national["units"]}
    doc.add_heading(w["indicators"], level=1)
    if not any(i["values"] for i in national["indicators"]):
        doc.add_paragraph(w["none"])
    for item in national["indicators"]:
        if not item["values"]:
            continue
        title = (item["nameVi"] if lang == "vi" and item["nameVi"] else item["name"])
        doc.add_heading(f"{item['code']}: {title} ({item['unit']})", level=2)
        _table(doc, [w["unit"], w["value"]], [
            [names.get(u, u), _number(v)] for u, v in sorted(item["values"].items())])
        doc.add_paragraph(f"{w['mean']}: {_number(item['mean'])}; {w['range']}: "
                          f"{_number(item['min'])} – {_number(item['max'])}")
        doc.add_picture(io.BytesIO(bar_chart(
            [(names.get(u, u), v) for u, v in sorted(item["values"].items())])),
            width=Cm(15))

    doc.add_heading(w["tasks"], level=1)
    _table(doc, [w["unit"], w["taskCount"], w["done"], w["overdueTasks"], w["progress"]], [
        [names.get(u, u), str(t["count"]), str(t["done"]), str(t["overdue"]),
         _number(t["progress"])] for u, t in sorted(national["tasks"].items())])

    doc.add_heading(w["texts"], level=1)
    for section in national["texts"].values():
        doc.add_heading(section["title"][lang], level=2)
        for unit, text in sorted(section["units"].items()):
            paragraph = doc.add_paragraph()
            paragraph.add_run(f"{names.get(unit, unit)}: ").bold = True
            paragraph.add_run(text or "—")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _table(doc: Any, header: list[str], rows: list[list[str]]) -> None:
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Light Grid Accent 1"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def bar_chart(bars: list[tuple[str, float]], width: int = 1200) -> bytes:
    """Horizontal bars, one per unit, as a PNG."""
    font = _font(26)
    row, left, right = 56, 380, 160
    height = row * len(bars) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top = max((v for _, v in bars), default=0) or 1
    for n, (label, value) in enumerate(bars):
        y = 20 + n * row
        span = max(0.0, value) / top * (width - left - right)
        draw.text((10, y + 10), label[:28], fill="#222", font=font)
        draw.rectangle((left, y + 8, left + span, y + row - 8), fill="#1f6fb2")
        draw.text((left + span + 10, y + 10), _number(value), fill="#222", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _font(size: int) -> Any:
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)
