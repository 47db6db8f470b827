"""The demo city's registers: illustrative plans, projects, a certified smart building, a
smart urban area and two sandboxes (one ending soon), registered through the registry
itself so that they get their identifiers, lifecycles and history as real ones would."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dothi.registry.registry import Registry

NOTE = " (minh họa / illustrative)"


def _box(west: float, south: float, east: float, north: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


def register_demo(registry: Registry, tenant: str, today: date) -> list[str]:
    """The identifiers registered, in order."""
    by = "official (demo)"

    def make(key: str, body: dict, moves: tuple[tuple[str, str | None], ...] = ()) -> str:
        rid = registry.create(tenant, key, body, by=by, today=today)["registryId"]
        for to, decision in moves:
            registry.move(tenant, rid, to, decision=decision, by=by)
        return rid

    general = make("plan", {
        "name": "Quy hoạch chung thành phố" + NOTE, "level": "general", "scale": "1/25.000",
        "agency": "Sở Xây dựng", "location": _box(107.95, 15.95, 108.35, 16.20),
        "approvingDecision": "QĐ minh họa 01/QĐ-TTg", "approvalDate": "2023-06-15"},
        (("consultation", None), ("appraisal", None), ("approved", "QĐ minh họa 01/QĐ-TTg")))
    riverside = make("plan", {
        "name": "Quy hoạch phân khu ven sông Hàn" + NOTE, "level": "zoning",
        "scale": "1/2.000", "agency": "Sở Xây dựng",
        "description": "Phân khu hai bờ sông Hàn, đang lấy ý kiến người dân.",
        "location": _box(108.211, 16.054, 108.235, 16.080)}, (("consultation", None),))
    registry.add_document(tenant, riverside, {
        "title": "Thuyết minh tóm tắt", "url": "http://127.0.0.1:1026/planning/consultations"},
        by=by)
    hoa_xuan = make("project", {
        "name": "Khu đô thị sinh thái Hòa Xuân" + NOTE, "investor": "Công ty minh họa A",
        "investment": 4_500_000_000_000, "plan": general, "startDate": "2024-03-01",
        "location": _box(108.205, 15.995, 108.235, 16.015)},
        (("approved", "QĐ minh họa 12/QĐ-UBND"), ("underConstruction", None)))
    make("project", {
        "name": "Khu phố đi bộ Bạch Đằng" + NOTE, "investor": "Ban quản lý dự án minh họa",
        "plan": riverside, "location": _box(108.2225, 16.060, 108.2250, 16.075)})
    tower = make("building", {
        "name": "Trung tâm Hành chính thành phố" + NOTE, "owner": "Ủy ban nhân dân thành phố",
        "address": "24 Trần Phú, Hải Châu", "bmsServiceGroup": "demo-bms",
        "bimReference": "http://127.0.0.1:1026/ngsi-ld/v1/entities?type=Building",
        "location": _box(108.2215, 16.0765, 108.2228, 16.0778)},
        (("underConstruction", None), ("operating", None)))
    registry.apply_for_certification(tenant, tower, {"evidence": [
        {"title": "Báo cáo BMS", "url": "http://127.0.0.1:1026/iot/about"}]}, by=by)
    registry.assess(tenant, tower, {"scores": {
        "bms": {"score": 90, "note": "BMS gửi dữ liệu lên nền tảng"},
        "energy": {"score": 80, "note": ""}, "safety": {"score": 75, "note": ""},
        "bim": {"score": 60, "note": "Mô hình chưa cập nhật phần cải tạo"},
        "data": {"score": 85, "note": ""}}}, by="assessor (demo)",
        now=datetime.combine(today, datetime.min.time()))
    make("area", {"name": "Khu đô thị thông minh Hòa Xuân" + NOTE,
                  "developer": "Công ty minh họa A", "project": hoa_xuan,
                  "location": _box(108.205, 15.995, 108.235, 16.015)})
    shuttle = make("sandbox", {
        "name": "Thử nghiệm xe buýt tự hành bán đảo Sơn Trà" + NOTE,
        "sandboxKind": "technology", "participants": ["Công ty công nghệ minh họa B"],
        "startDate": (today - timedelta(days=150)).isoformat(),
        "endDate": (today + timedelta(days=20)).isoformat(),
        "location": _box(108.24, 16.08, 108.30, 16.12)},
        (("approved", "QĐ minh họa 7/QĐ-UBND"), ("active", None)))
    registry.add_report(tenant, shuttle, {"period": "Quý 3/2026",
                                          "summary": "1.240 chuyến, không sự cố."}, by=by)
    make("sandbox", {
        "name": "Thử nghiệm thanh toán vé gửi xe qua mã QR" + NOTE, "sandboxKind": "service",
        "participants": ["Ngân hàng minh họa C", "Công ty đỗ xe minh họa D"],
        "startDate": (today - timedelta(days=200)).isoformat(),
        "endDate": (today + timedelta(days=165)).isoformat(),
        "location": _box(108.215, 16.060, 108.225, 16.072)},
        (("approved", None), ("active", None)))
    registry.check_windows(tenant, today)
    return [r["registryId"] for r in registry.search(tenant)]
