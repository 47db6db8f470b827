"""A small, deterministic demo city: Đà Nẵng, Vietnam, as NGSI-LD entities.

The demo is what a new user sees first (``dothi demo`` loads it into the broker), so it has to
look like a real city: real street alignments, real landmarks, plausible sensor readings. It is
also a test fixture, so it must be byte-for-byte reproducible: every random choice comes from a
seeded ``random.Random`` and every timestamp is derived from ``REFERENCE_TIME`` rather than the
wall clock.

Shapes follow the FIWARE Smart Data Models (attribute names, enums and units as in the schemas
under ``shared/data/smart-data-models``), in NGSI-LD *normalized* form. Coordinates are GeoJSON
``[longitude, latitude]`` in WGS 84. They were placed from general public map knowledge (the
positions of well-known landmarks and the alignment of major streets), good to roughly 100-300 m:
enough for a demo and for geo-query examples, not for surveying.

Every entity carries only the NGSI-LD core @context: the platform must work offline, so the
Smart Data Models' own remote contexts are not referenced and their terms expand through the core
context's default vocabulary.
"""

from __future__ import annotations

import json
import math
import random
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dothi.ioc.aqi import Index, Method, hourly_index

AQI_METHOD = Method.shipped()

__all__ = [
    "CORE_CONTEXT",
    "DISTRICTS",
    "REFERENCE_TIME",
    "SEED",
    "air_quality_history",
    "build_demo_city",
    "write_demo_file",
]

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"

# 18:00 in Đà Nẵng (UTC+7) on a late-November weekday: after sunset, so street lights are on,
# in the evening traffic peak, and in the middle of the central-coast flood season (Oct-Nov),
# which makes every sensor family show something interesting.
REFERENCE_TIME = datetime(2026, 11, 24, 11, 0, 0, tzinfo=UTC)
SEED = 20261124
HISTORY_HOURS = 30 * 24  # the air-quality stations' history: a month of hourly readings
HISTORY_UNITS = {"pm25": "GQ", "pm10": "GQ", "no2": "GQ", "o3": "GQ", "co": "GP",
                 "temperature": "CEL", "relativeHumidity": None, "airQualityIndex": None}

Coord = tuple[float, float]  # (lon, lat)
Entity = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# Geography
# ---------------------------------------------------------------------------------------------

# Approximate centre lines of the five streets that carry demo street lights, north to south or
# east to west. Each is a hand-simplified trace of the real alignment.
STREETS: dict[str, dict[str, Any]] = {
    "bach-dang": {
        "vi": "Đường Bạch Đằng",
        "en": "Bach Dang Street",
        "count": 24,
        # West bank of the Hàn river, from the 3 Tháng 2 junction down to the Chăm museum.
        "line": [
            (108.2228, 16.0835),
            (108.2236, 16.0780),
            (108.2240, 16.0720),
            (108.2244, 16.0680),
            (108.2245, 16.0640),
            (108.2243, 16.0606),
        ],
        "height": 10.0,
        "category": "sidewalk",
    },
    "tran-phu": {
        "vi": "Đường Trần Phú",
        "en": "Tran Phu Street",
        "count": 20,
        # One block west of Bạch Đằng: Administrative Centre, Chợ Hàn, the cathedral.
        "line": [
            (108.2218, 16.0810),
            (108.2226, 16.0760),
            (108.2230, 16.0720),
            (108.2232, 16.0667),
            (108.2233, 16.0612),
        ],
        "height": 8.0,
        "category": "road",
    },
    "vo-nguyen-giap": {
        "vi": "Đường Võ Nguyên Giáp",
        "en": "Vo Nguyen Giap Street",
        "count": 34,
        # Coastal road behind Phạm Văn Đồng and Mỹ Khê beaches, heading south-east.
        "line": [
            (108.2500, 16.0840),
            (108.2468, 16.0740),
            (108.2465, 16.0660),
            (108.2470, 16.0580),
            (108.2482, 16.0500),
            (108.2500, 16.0420),
            (108.2525, 16.0340),
            (108.2555, 16.0260),
        ],
        "height": 12.0,
        "category": "sidewalk",
    },
    "nguyen-van-linh": {
        "vi": "Đường Nguyễn Văn Linh",
        "en": "Nguyen Van Linh Street",
        "count": 24,
        # From the west end of Cầu Rồng to the airport.
        "line": [
            (108.2243, 16.0612),
            (108.2190, 16.0608),
            (108.2140, 16.0603),
            (108.2090, 16.0597),
            (108.2045, 16.0590),
        ],
        "height": 12.0,
        "category": "centralIsland",
    },
    "2-thang-9": {
        "vi": "Đường 2 Tháng 9",
        "en": "2 September Street",
        "count": 28,
        # Riverside boulevard from the Chăm museum south past Asia Park.
        "line": [
            (108.2240, 16.0598),
            (108.2238, 16.0540),
            (108.2243, 16.0480),
            (108.2245, 16.0420),
            (108.2240, 16.0360),
            (108.2232, 16.0300),
        ],
        "height": 10.0,
        "category": "road",
    },
}

# Simplified outlines of the six former urban districts (quận). Traced by hand from the
# well-known layout: the Hàn river separates Hải Châu (west bank) from Sơn Trà and Ngũ Hành Sơn
# (east bank); Thanh Khê and Liên Chiểu follow the shore of Đà Nẵng bay to the north-west; Cẩm Lệ
# lies south-west of Hải Châu. Neighbouring outlines share vertices where they meet on land.
# Population: 2009 Population and Housing Census, General Statistics Office of Vietnam, as
# tabulated per district by citypopulation.de (census reference date 1 April 2009).
DISTRICTS: dict[str, dict[str, Any]] = {
    "hai-chau": {
        "vi": "Hải Châu",
        "en": "Hai Chau",
        "population": 189561,
        "ring": [
            (108.2135, 16.0845),
            (108.2190, 16.0880),
            (108.2222, 16.0950),
            (108.2238, 16.0850),
            (108.2245, 16.0720),
            (108.2250, 16.0612),
            (108.2268, 16.0520),
            (108.2277, 16.0470),
            (108.2268, 16.0360),
            (108.2255, 16.0260),
            (108.2180, 16.0240),
            (108.2120, 16.0300),
            (108.2030, 16.0340),
            (108.1960, 16.0420),
            (108.1950, 16.0520),
            (108.2040, 16.0600),
            (108.2085, 16.0650),
            (108.2110, 16.0750),
        ],
    },
    "thanh-khe": {
        "vi": "Thanh Khê",
        "en": "Thanh Khe",
        "population": 174557,
        "ring": [
            (108.2135, 16.0845),
            (108.2110, 16.0750),
            (108.2085, 16.0650),
            (108.2040, 16.0600),
            (108.1950, 16.0520),
            (108.1880, 16.0540),
            (108.1780, 16.0570),
            (108.1730, 16.0640),
            (108.1745, 16.0775),
            (108.1830, 16.0775),
            (108.1950, 16.0800),
            (108.2060, 16.0830),
        ],
    },
    "son-tra": {
        "vi": "Sơn Trà",
        "en": "Son Tra",
        "population": 127682,
        "ring": [
            (108.2310, 16.0450),
            (108.2297, 16.0600),
            (108.2290, 16.0720),
            (108.2278, 16.0860),
            (108.2250, 16.0970),
            (108.2230, 16.1080),
            (108.2150, 16.1180),
            (108.2250, 16.1330),
            (108.2600, 16.1520),
            (108.2950, 16.1500),
            (108.3250, 16.1380),
            (108.3380, 16.1200),
            (108.3100, 16.1050),
            (108.2800, 16.0980),
            (108.2650, 16.0950),
            (108.2520, 16.0850),
            (108.2480, 16.0700),
            (108.2497, 16.0470),
        ],
    },
    "ngu-hanh-son": {
        "vi": "Ngũ Hành Sơn",
        "en": "Ngu Hanh Son",
        "population": 63067,
        "ring": [
            (108.2310, 16.0450),
            (108.2497, 16.0470),
            (108.2520, 16.0360),
            (108.2570, 16.0250),
            (108.2640, 16.0120),
            (108.2725, 16.0000),
            (108.2800, 15.9870),
            (108.2870, 15.9720),
            (108.2650, 15.9690),
            (108.2450, 15.9750),
            (108.2350, 16.0000),
            (108.2280, 16.0150),
            (108.2290, 16.0300),
            (108.2305, 16.0380),
        ],
    },
    "lien-chieu": {
        "vi": "Liên Chiểu",
        "en": "Lien Chieu",
        "population": 128353,
        "ring": [
            (108.1745, 16.0775),
            (108.1600, 16.0840),
            (108.1450, 16.0950),
            (108.1300, 16.1080),
            (108.1190, 16.1230),
            (108.1230, 16.1450),
            (108.1450, 16.1650),
            (108.1400, 16.1950),
            (108.1150, 16.2000),
            (108.0850, 16.1800),
            (108.0700, 16.1400),
            (108.0850, 16.1000),
            (108.1100, 16.0700),
            (108.1400, 16.0550),
            (108.1600, 16.0530),
            (108.1730, 16.0640),
        ],
    },
    "cam-le": {
        "vi": "Cẩm Lệ",
        "en": "Cam Le",
        "population": 87691,
        "ring": [
            (108.1730, 16.0640),
            (108.1600, 16.0530),
            (108.1560, 16.0400),
            (108.1550, 16.0150),
            (108.1700, 15.9950),
            (108.2000, 15.9880),
            (108.2300, 15.9880),
            (108.2350, 16.0000),
            (108.2280, 16.0150),
            (108.2255, 16.0260),
            (108.2180, 16.0240),
            (108.2120, 16.0300),
            (108.2030, 16.0340),
            (108.1960, 16.0420),
            (108.1950, 16.0520),
            (108.1880, 16.0540),
            (108.1780, 16.0570),
        ],
    },
}

# Points of interest: (slug, vi name, en name, categories, street address or None, lon, lat).
POINTS_OF_INTEREST: list[tuple[str, str, str, list[str], str | None, float, float]] = [
    ("cau-rong", "Cầu Rồng", "Dragon Bridge", ["bridge", "landmark"],
     "Nguyễn Văn Linh – Võ Văn Kiệt", 108.2272, 16.0612),
    ("cau-song-han", "Cầu Sông Hàn", "Han River Bridge", ["bridge", "landmark"],
     "Lê Duẩn – Phạm Văn Đồng", 108.2268, 16.0719),
    ("cau-tran-thi-ly", "Cầu Trần Thị Lý", "Tran Thi Ly Bridge", ["bridge", "landmark"],
     "Trần Thị Lý – Ngũ Hành Sơn", 108.2300, 16.0477),
    ("cau-thuan-phuoc", "Cầu Thuận Phước", "Thuan Phuoc Bridge", ["bridge", "landmark"],
     "Đường 3 Tháng 2", 108.2225, 16.0950),
    ("cau-nguyen-van-troi", "Cầu Nguyễn Văn Trỗi", "Nguyen Van Troi Bridge", ["bridge"],
     "Đường Nguyễn Văn Trỗi", 108.2290, 16.0522),
    ("cau-tinh-yeu", "Cầu Tình Yêu", "Love Lock Bridge", ["landmark", "pedestrianArea"],
     "Đường Trần Hưng Đạo", 108.2300, 16.0626),
    ("cho-han", "Chợ Hàn", "Han Market", ["market", "shopping"],
     "119 Trần Phú", 108.2243, 16.0681),
    ("cho-con", "Chợ Cồn", "Con Market", ["market", "shopping"],
     "290 Hùng Vương", 108.2141, 16.0678),
    ("cho-dem-son-tra", "Chợ đêm Sơn Trà", "Son Tra Night Market", ["market", "food"],
     "Mai Hắc Đế – Lý Nam Đế", 108.2322, 16.0627),
    ("nha-tho-chinh-toa", "Nhà thờ Chính tòa Đà Nẵng", "Da Nang Cathedral",
     ["placeOfWorship", "landmark"], "156 Trần Phú", 108.2232, 16.0667),
    ("bao-tang-dieu-khac-cham", "Bảo tàng Điêu khắc Chăm", "Museum of Cham Sculpture",
     ["museum"], "02 Đường 2 Tháng 9", 108.2236, 16.0604),
    ("trung-tam-hanh-chinh", "Trung tâm Hành chính thành phố Đà Nẵng",
     "Da Nang Administrative Centre", ["governmentBuilding"], "24 Trần Phú", 108.2233, 16.0776),
    ("ga-da-nang", "Ga Đà Nẵng", "Da Nang Railway Station", ["transportHub", "railwayStation"],
     "Đường Hải Phòng", 108.2093, 16.0716),
    ("san-bay-quoc-te-da-nang", "Sân bay quốc tế Đà Nẵng", "Da Nang International Airport",
     ["transportHub", "airport"], None, 108.2021, 16.0556),
    ("ben-xe-trung-tam", "Bến xe Trung tâm Đà Nẵng", "Da Nang Central Bus Station",
     ["transportHub", "busStation"], "201 Tôn Đức Thắng", 108.1720, 16.0573),
    ("cong-vien-chau-a", "Công viên Châu Á", "Asia Park", ["park", "amusementPark"],
     "01 Phan Đăng Lưu", 108.2263, 16.0397),
    ("cung-the-thao-tien-son", "Cung Thể thao Tiên Sơn", "Tien Son Sports Palace",
     ["sportsVenue"], "Đường Phan Đăng Lưu", 108.2238, 16.0363),
    ("benh-vien-da-nang", "Bệnh viện Đà Nẵng", "Da Nang Hospital", ["hospital"],
     "124 Hải Phòng", 108.2165, 16.0725),
    ("ngu-hanh-son", "Ngũ Hành Sơn", "Marble Mountains", ["naturalSite", "placeOfWorship"],
     "Đường Huyền Trân Công Chúa", 108.2638, 16.0036),
    ("lang-da-my-nghe-non-nuoc", "Làng đá mỹ nghệ Non Nước", "Non Nuoc Stone Carving Village",
     ["craftVillage", "shopping"], "Đường Huyền Trân Công Chúa", 108.2618, 16.0015),
    ("bai-bien-non-nuoc", "Bãi biển Non Nước", "Non Nuoc Beach", ["beach"],
     "Đường Trường Sa", 108.2700, 16.0010),
    ("bai-bien-my-khe", "Bãi biển Mỹ Khê", "My Khe Beach", ["beach"],
     "Đường Võ Nguyên Giáp", 108.2472, 16.0598),
    ("cong-vien-bien-dong", "Công viên Biển Đông", "East Sea Park", ["park"],
     "Võ Nguyên Giáp – Phạm Văn Đồng", 108.2466, 16.0710),
    ("chua-linh-ung-bai-but", "Chùa Linh Ứng Bãi Bụt", "Linh Ung Pagoda (Son Tra)",
     ["placeOfWorship", "landmark"], "Đường Hoàng Sa, bán đảo Sơn Trà", 108.2777, 16.1003),
    ("ban-dao-son-tra", "Bán đảo Sơn Trà", "Son Tra Peninsula", ["naturalSite", "naturePark"],
     None, 108.2770, 16.1180),
    ("bai-bien-xuan-thieu", "Bãi biển Xuân Thiều", "Xuan Thieu Beach", ["beach"],
     "Đường Nguyễn Tất Thành", 108.1540, 16.0880),
    ("dai-hoc-bach-khoa", "Trường Đại học Bách khoa – Đại học Đà Nẵng",
     "University of Science and Technology – The University of Da Nang", ["university"],
     "54 Nguyễn Lương Bằng", 108.1499, 16.0738),
    ("deo-hai-van", "Đèo Hải Vân", "Hai Van Pass", ["naturalSite", "viewpoint"],
     "Quốc lộ 1A", 108.1306, 16.1931),
    ("ba-na-hills", "Sun World Bà Nà Hills", "Sun World Ba Na Hills", ["amusementPark"],
     "Thôn An Sơn, xã Hòa Ninh", 107.9960, 15.9977),
]

# Air-quality stations: (slug, area served, lon, lat, traffic exposure 0..1).
AIR_QUALITY_STATIONS: list[tuple[str, str, float, float, float]] = [
    ("hai-chau-trung-tam", "Hải Châu – Trần Phú", 108.2228, 16.0745, 0.7),
    ("le-duan", "Hải Châu – Lê Duẩn", 108.2180, 16.0705, 0.9),
    ("nguyen-van-linh", "Hải Châu – Nguyễn Văn Linh", 108.2120, 16.0600, 0.9),
    ("hoa-cuong", "Hải Châu – Hòa Cường", 108.2205, 16.0380, 0.5),
    ("thanh-khe-an-khe", "Thanh Khê – An Khê", 108.1890, 16.0600, 0.6),
    ("hoa-khanh", "Liên Chiểu – Hòa Khánh", 108.1450, 16.0760, 1.0),
    ("lien-chieu-hoa-minh", "Liên Chiểu – Hòa Minh", 108.1650, 16.0640, 0.6),
    ("son-tra-an-hai", "Sơn Trà – An Hải", 108.2360, 16.0660, 0.5),
    ("son-tra-tho-quang", "Sơn Trà – Thọ Quang", 108.2420, 16.0930, 0.4),
    ("my-khe", "Ngũ Hành Sơn – Mỹ Khê", 108.2455, 16.0520, 0.3),
    ("hoa-hai", "Ngũ Hành Sơn – Hòa Hải", 108.2560, 16.0080, 0.3),
    ("cam-le-hoa-tho", "Cẩm Lệ – Hòa Thọ Đông", 108.1980, 16.0150, 0.6),
]

# Flood sensors. River gauges on the Hàn banks measure the river stage (metres above the river
# bed); street sensors in low-lying wards measure water depth above the road surface. Both use
# the FloodMonitoring model, whose thresholds are relative to the sensor's own reference.
# (slug, label, kind, lon, lat)
FLOOD_SENSORS: list[tuple[str, str, str, float, float]] = [
    ("han-thuan-phuoc-tay", "Sông Hàn – bờ tây, Thuận Phước", "river", 108.2225, 16.0900),
    ("han-thuan-phuoc-dong", "Sông Hàn – bờ đông, Nại Hiên Đông", "river", 108.2276, 16.0900),
    ("han-song-han-tay", "Sông Hàn – bờ tây, cầu Sông Hàn", "river", 108.2239, 16.0740),
    ("han-song-han-dong", "Sông Hàn – bờ đông, cầu Sông Hàn", "river", 108.2290, 16.0740),
    ("han-cau-rong-tay", "Sông Hàn – bờ tây, cầu Rồng", "river", 108.2243, 16.0630),
    ("han-cau-rong-dong", "Sông Hàn – bờ đông, cầu Rồng", "river", 108.2296, 16.0630),
    ("han-tran-thi-ly-tay", "Sông Hàn – bờ tây, cầu Trần Thị Lý", "river", 108.2275, 16.0460),
    ("han-tran-thi-ly-dong", "Sông Hàn – bờ đông, cầu Trần Thị Lý", "river", 108.2312, 16.0460),
    ("han-chau-a", "Sông Hàn – Công viên Châu Á", "river", 108.2263, 16.0380),
    ("han-hoa-xuan", "Sông Hàn – Hòa Xuân", "river", 108.2250, 16.0200),
    ("hoa-xuan", "Hòa Xuân (Cẩm Lệ)", "street", 108.2225, 16.0110),
    ("khue-trung", "Khuê Trung (Cẩm Lệ)", "street", 108.2080, 16.0290),
    ("hoa-phat", "Hòa Phát (Cẩm Lệ)", "street", 108.1800, 16.0420),
    ("hoa-minh", "Hòa Minh (Liên Chiểu)", "street", 108.1680, 16.0600),
    ("hoa-khanh-nam", "Hòa Khánh Nam (Liên Chiểu)", "street", 108.1500, 16.0620),
    ("an-khe", "An Khê (Thanh Khê)", "street", 108.1860, 16.0640),
    ("hoa-cuong-nam", "Hòa Cường Nam (Hải Châu)", "street", 108.2190, 16.0290),
    ("nai-hien-dong", "Nại Hiên Đông (Sơn Trà)", "street", 108.2330, 16.0870),
    ("an-hai-tay", "An Hải Tây (Sơn Trà)", "street", 108.2340, 16.0580),
    ("my-an", "Mỹ An (Ngũ Hành Sơn)", "street", 108.2400, 16.0450),
]

# Roads carrying traffic counters, with an approximate centre line; counters are placed on
# short segments of these lines. (slug, vi name, line, counters, free-flow speed km/h)
TRAFFIC_ROADS: list[tuple[str, str, list[Coord], int, float]] = [
    ("nguyen-van-linh", "Đường Nguyễn Văn Linh", STREETS["nguyen-van-linh"]["line"], 4, 50.0),
    ("bach-dang", "Đường Bạch Đằng", STREETS["bach-dang"]["line"], 3, 40.0),
    ("2-thang-9", "Đường 2 Tháng 9", STREETS["2-thang-9"]["line"], 3, 50.0),
    ("vo-nguyen-giap", "Đường Võ Nguyên Giáp", STREETS["vo-nguyen-giap"]["line"], 4, 50.0),
    ("tran-phu", "Đường Trần Phú", STREETS["tran-phu"]["line"], 2, 40.0),
    ("pham-van-dong", "Đường Phạm Văn Đồng",
     [(108.2296, 16.0718), (108.2380, 16.0716), (108.2463, 16.0713)], 3, 50.0),
    ("vo-van-kiet", "Đường Võ Văn Kiệt",
     [(108.2305, 16.0613), (108.2390, 16.0616), (108.2468, 16.0619)], 3, 50.0),
    ("le-duan", "Đường Lê Duẩn",
     [(108.2240, 16.0720), (108.2195, 16.0712), (108.2150, 16.0704)], 2, 40.0),
    ("dien-bien-phu", "Đường Điện Biên Phủ",
     [(108.2110, 16.0690), (108.2000, 16.0668), (108.1880, 16.0650)], 2, 50.0),
    ("ngo-quyen", "Đường Ngô Quyền",
     [(108.2330, 16.0900), (108.2335, 16.0760), (108.2340, 16.0620), (108.2348, 16.0500)],
     2, 50.0),
    ("ton-duc-thang", "Đường Tôn Đức Thắng",
     [(108.1760, 16.0585), (108.1620, 16.0650), (108.1480, 16.0730)], 2, 60.0),
]

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQ = 111_320.0


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(ts: datetime) -> dict[str, str]:
    """NGSI-LD typed DateTime value, so that brokers can compare it in q= filters."""
    return {"@type": "DateTime", "@value": _iso(ts)}


def _prop(value: Any, unit: str | None = None, observed: datetime | None = None) -> dict[str, Any]:
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        attr["unitCode"] = unit
    if observed is not None:
        attr["observedAt"] = _iso(observed)
    return attr


def _rel(obj: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj}


def _lang(vi: str, en: str) -> dict[str, Any]:
    return {"type": "LanguageProperty", "languageMap": {"vi": vi, "en": en}}


def _geo(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry}


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}


def _address(street: str | None) -> dict[str, Any]:
    value: dict[str, Any] = {"addressLocality": "Đà Nẵng", "addressCountry": "VN"}
    if street:
        value["streetAddress"] = street
    return _prop(value)


def slugify(text: str) -> str:
    """ASCII slug of a Vietnamese name: NGSI-LD ids must be URIs, so no diacritics."""
    text = text.replace("Đ", "D").replace("đ", "d")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = []
    for ch in ascii_text.lower():
        out.append(ch if ch.isalnum() else "-")
    return "-".join(part for part in "".join(out).split("-") if part)


def _urn(entity_type: str, suffix: str) -> str:
    return f"urn:ngsi-ld:{entity_type}:danang-{suffix}"


def _to_metres(lon: float, lat: float, lat0: float) -> tuple[float, float]:
    # Equirectangular projection: plenty accurate over a city a few tens of km across.
    return (lon * _M_PER_DEG_LON_EQ * math.cos(math.radians(lat0)), lat * _M_PER_DEG_LAT)


def along(line: Sequence[Coord], fractions: Sequence[float],
          offsets_m: Sequence[float]) -> list[Coord]:
    """Points at given fractions of a polyline's length, shifted sideways by offsets_m metres.

    Street lights stand on the kerbs, not on the centre line, so each point is pushed
    perpendicular to the local segment direction (positive = left of travel direction).
    """
    lat0 = line[0][1]
    xy = [_to_metres(lon, lat, lat0) for lon, lat in line]
    seg_len = [math.dist(xy[k], xy[k + 1]) for k in range(len(xy) - 1)]
    total = sum(seg_len)
    kx = _M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    out: list[Coord] = []
    for frac, off in zip(fractions, offsets_m, strict=True):
        target = min(max(frac, 0.0), 1.0) * total
        k = 0
        while k < len(seg_len) - 1 and target > seg_len[k]:
            target -= seg_len[k]
            k += 1
        t = target / seg_len[k] if seg_len[k] else 0.0
        (x0, y0), (x1, y1) = xy[k], xy[k + 1]
        dx, dy = x1 - x0, y1 - y0
        norm = math.hypot(dx, dy) or 1.0
        x = x0 + t * dx - off * dy / norm
        y = y0 + t * dy + off * dx / norm
        out.append((x / kx, y / _M_PER_DEG_LAT))
    return out


def point_in_ring(lon: float, lat: float, ring: Sequence[Coord]) -> bool:
    """Even-odd ray casting; rings may be open or closed (no shapely for this one test)."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def district_of(lon: float, lat: float) -> str | None:
    """Slug of the former district whose simplified outline contains the point, if any."""
    for slug, district in DISTRICTS.items():
        if point_in_ring(lon, lat, district["ring"]):
            return slug
    return None


def _closed(ring: Sequence[Coord]) -> list[list[float]]:
    coords = [[round(lon, 6), round(lat, 6)] for lon, lat in ring]
    if coords[0] != coords[-1]:
        coords.append(list(coords[0]))
    return coords


def _base(entity_type: str, suffix: str) -> Entity:
    return {"id": _urn(entity_type, suffix), "type": entity_type}


def _finish(entity: Entity) -> Entity:
    entity["@context"] = [CORE_CONTEXT]
    return entity


# ---------------------------------------------------------------------------------------------
# Builders, one per entity family
# ---------------------------------------------------------------------------------------------


def _streetlights(rng: random.Random, now: datetime) -> list[Entity]:
    entities: list[Entity] = []
    # Lamps switched on at 17:30 local time, half an hour before the reference instant.
    switched_on = now - timedelta(minutes=30)
    for slug, street in STREETS.items():
        code = "".join(word[0] for word in slug.split("-")).upper()
        group_id = _urn("StreetlightGroup", slug)
        line = street["line"]
        entities.append(_finish({
            **_base("StreetlightGroup", slug),
            "name": _lang(street["vi"], street["en"]),
            "location": _geo({"type": "LineString",
                              "coordinates": [[lon, lat] for lon, lat in line]}),
            "areaServed": _prop(street["vi"]),
            "powerState": _prop("on"),
            "switchingMode": _prop(["night-ON"]),
            "illuminanceLevel": _prop(1.0),
            "circuitId": _prop(f"DN-{code}-C01"),
            "dateLastSwitchingOn": _prop(_dt(switched_on)),
        }))
        n = street["count"]
        fractions = [(k + 0.5 + rng.uniform(-0.15, 0.15)) / n for k in range(n)]
        # Alternate kerbs so both sides of the carriageway are lit, roughly 12 m from centre.
        offsets = [(12.0 if k % 2 == 0 else -12.0) + rng.uniform(-2.0, 2.0) for k in range(n)]
        for k, (lon, lat) in enumerate(along(line, fractions, offsets), start=1):
            roll = rng.random()
            if roll < 0.05:
                status, power = "defectiveLamp", "off"
            elif roll < 0.07:
                status, power = "brokenLantern", "off"
            elif roll < 0.09:
                status, power = "columnIssue", "on"
            else:
                # A few lamps run dimmed: the city's energy-saving pilot.
                status, power = "ok", ("low" if rng.random() < 0.12 else "on")
            level = {"on": 1.0, "low": 0.5, "off": 0.0}[power]
            rated = 150 if street["height"] >= 12 else 100  # LED lantern rating in watts
            consumption = round(rated * level * rng.uniform(0.93, 1.02), 1) if level else 0.0
            lamp_changed = now - timedelta(days=rng.randint(20, 1400), minutes=rng.randint(0, 600))
            entities.append(_finish({
                **_base("Streetlight", f"{slug}-{k:03d}"),
                "location": _geo(_point(lon, lat)),
                "status": _prop(status),
                "powerState": _prop(power, observed=now),
                "illuminanceLevel": _prop(level, observed=now),
                "powerConsumption": _prop(consumption, "WTT", now),
                "dateLastLampChange": _prop(_dt(lamp_changed)),
                "dateLastSwitchingOn": _prop(_dt(switched_on)),
                "lanternHeight": _prop(street["height"], "MTR"),
                "locationCategory": _prop(street["category"]),
                "controllingMethod": _prop("group"),
                "circuit": _prop(f"DN-{code}-C01"),
                "streetPoleNum": _prop(f"{code}-{k:03d}"),
                "areaServed": _prop(street["vi"]),
                "refStreetlightGroup": _rel(group_id),
            }))
    return entities


def demo_aqi(pm25: float, pm10: float, no2: float, o3: float, co_mg: float) -> Index:
    """The VN_AQI of a station whose readings held steady for the last hours (the demo has
    one reading per station; dothi.ioc.aqi recomputes it from history once sensors report)."""
    found = hourly_index(AQI_METHOD, {"pm25": [pm25] * 3, "pm10": [pm10] * 3,
                                      "no2": [no2], "o3": [o3], "co": [co_mg * 1000]})
    assert found is not None
    return found


def _air_quality(rng: random.Random, now: datetime) -> list[Entity]:
    entities: list[Entity] = []
    for slug, area, lon, lat, traffic in AIR_QUALITY_STATIONS:
        # Evening peak: pollutant levels scale with how much traffic the site is exposed to.
        pm25 = round(rng.uniform(12, 22) + 22 * traffic * rng.uniform(0.6, 1.2), 1)
        pm10 = round(pm25 * rng.uniform(1.5, 2.0), 1)
        no2 = round(rng.uniform(10, 20) + 35 * traffic * rng.uniform(0.6, 1.2), 1)
        o3 = round(rng.uniform(25, 60) - 10 * traffic, 1)
        co = round(rng.uniform(0.3, 0.6) + 0.9 * traffic * rng.uniform(0.6, 1.2), 2)
        aqi = demo_aqi(pm25, pm10, no2, o3, co)
        entities.append(_finish({
            **_base("AirQualityObserved", f"aq-{slug}"),
            "location": _geo(_point(lon, lat)),
            "address": _address(None),
            "areaServed": _prop(area),
            "dateObserved": _prop(_dt(now)),
            "pm25": _prop(pm25, "GQ", now),
            "pm10": _prop(pm10, "GQ", now),
            "no2": _prop(no2, "GQ", now),
            "o3": _prop(o3, "GQ", now),
            "co": _prop(co, "GP", now),
            # November evening on the central coast: mild and humid.
            "temperature": _prop(round(rng.uniform(22.5, 25.5), 1), "CEL", now),
            "relativeHumidity": _prop(round(rng.uniform(0.78, 0.92), 2), None, now),
            "airQualityIndex": _prop(aqi.aqi, None, now),
            "airQualityLevel": _prop(aqi.level.name),
            "typeofLocation": _prop("outdoor"),
            "reliability": _prop(round(rng.uniform(0.85, 0.98), 2)),
        }))
    return entities


def air_quality_history(hours: int = HISTORY_HOURS) -> list[Entity]:
    """The stations' hourly readings of the ``hours`` before the demo's reference time, as
    NGSI-LD temporal entities (``POST /temporal/entities`` bodies): a month of history for
    the charts and the open-data downloads. Levels follow each site's traffic, with morning
    and evening peaks, and the AQI is computed from them as the stations' own is."""
    rng = random.Random(SEED + 1)
    out: list[Entity] = []
    for slug, _area, _lon, _lat, traffic in AIR_QUALITY_STATIONS:
        series: dict[str, list[dict[str, Any]]] = {name: [] for name in HISTORY_UNITS}
        for k in range(hours, 0, -1):
            when = REFERENCE_TIME - timedelta(hours=k)
            local_hour = (when.hour + 7) % 24
            peak = 1.0 + 0.8 * math.exp(-((local_hour - 8) ** 2) / 4) \
                + 1.0 * math.exp(-((local_hour - 18) ** 2) / 5) - 0.4 * (local_hour < 5)
            pm25 = round(rng.uniform(14, 22) + 18 * traffic * peak * rng.uniform(0.7, 1.2), 1)
            pm10 = round(pm25 * rng.uniform(1.5, 2.0), 1)
            no2 = round(rng.uniform(8, 16) + 28 * traffic * peak * rng.uniform(0.7, 1.2), 1)
            o3 = round(max(5.0, rng.uniform(20, 45) + 25 * math.sin(
                math.pi * (local_hour - 6) / 12) * (6 <= local_hour <= 18) - 8 * traffic), 1)
            co = round(rng.uniform(0.3, 0.5) + 0.7 * traffic * peak * rng.uniform(0.7, 1.2), 2)
            values = {
                "pm25": pm25, "pm10": pm10, "no2": no2, "o3": o3, "co": co,
                "temperature": round(24 + 3 * math.sin(math.pi * (local_hour - 9) / 12)
                                     + rng.uniform(-0.8, 0.8), 1),
                "relativeHumidity": round(min(0.98, 0.85 - 0.08 * math.sin(
                    math.pi * (local_hour - 9) / 12) + rng.uniform(-0.04, 0.04)), 2),
                "airQualityIndex": demo_aqi(pm25, pm10, no2, o3, co).aqi,
            }
            for name, value in values.items():
                series[name].append(_prop(value, HISTORY_UNITS[name], when))
        out.append({"id": _urn("AirQualityObserved", f"aq-{slug}"),
                    "type": "AirQualityObserved", **series})
    return out


def _flood(rng: random.Random, now: datetime) -> list[Entity]:
    entities: list[Entity] = []
    for k, (slug, label, kind, lon, lat) in enumerate(FLOOD_SENSORS, start=1):
        if kind == "river":
            # Ultrasonic gauge on a bank structure; levels in metres above the river bed.
            reference = round(rng.uniform(6.5, 8.0), 2)
            alert, danger = round(reference - 3.2, 2), round(reference - 2.2, 2)
            current = round(rng.uniform(alert - 1.6, alert + 0.5), 2)
        else:
            # Kerb-side sensor; levels in metres of water above the road surface.
            reference = round(rng.uniform(2.8, 3.2), 2)
            alert, danger = 0.2, 0.4
            current = round(max(0.0, rng.uniform(-0.25, 0.5)), 2)
        measured = round(reference - current, 2)
        status = "Danger" if current >= danger else "Alert" if current >= alert else "Normal"
        entities.append(_finish({
            **_base("FloodMonitoring", f"flood-{slug}"),
            "name": _prop(label),
            "location": _geo(_point(lon, lat)),
            "stationID": _prop(f"DN-FL-{k:03d}"),
            "referenceLevel": _prop(reference, "MTR"),
            "measuredDistance": _prop(measured, "MTR", now),
            "currentLevel": _prop(current, "MTR", now),
            "alertLevel": _prop(alert, "MTR"),
            "dangerLevel": _prop(danger, "MTR"),
            "floodLevelStatus": _prop(status, observed=now),
            "observationDateTime": _prop(_dt(now)),
        }))
    return entities


def _traffic(rng: random.Random, now: datetime) -> list[Entity]:
    entities: list[Entity] = []
    start = now - timedelta(minutes=15)
    for slug, name, line, counters, free_speed in TRAFFIC_ROADS:
        for k in range(counters):
            frac = (k + 0.5) / counters
            # A ~160 m detection zone centred on the counter, as a LineString along the road.
            lat0 = line[0][1]
            length = sum(math.dist(_to_metres(*line[j], lat0), _to_metres(*line[j + 1], lat0))
                         for j in range(len(line) - 1))
            half = 80.0 / length
            pts = along(line, [frac - half, frac, frac + half], [0.0, 0.0, 0.0])
            lane = 1 + k % 2
            occupancy = round(rng.uniform(0.12, 0.72), 2)
            speed = round(max(6.0, free_speed * (1.05 - occupancy) * rng.uniform(0.8, 1.1)), 1)
            # Motorbike-dominated flow: many vehicles per lane in a 15-minute window.
            intensity = int(rng.uniform(180, 420) * (0.6 + occupancy))
            congested = speed < 18.0 and occupancy > 0.45
            entities.append(_finish({
                **_base("TrafficFlowObserved", f"traffic-{slug}-{k + 1:02d}"),
                "location": _geo({"type": "LineString",
                                  "coordinates": [[round(x, 6), round(y, 6)] for x, y in pts]}),
                "address": _address(name),
                "laneId": _prop(lane),
                "laneDirection": _prop("forward" if lane == 1 else "backward"),
                "dateObserved": _prop(_dt(now)),
                "dateObservedFrom": _prop(_dt(start)),
                "dateObservedTo": _prop(_dt(now)),
                "intensity": _prop(intensity, None, now),
                "averageVehicleSpeed": _prop(speed, "KMH", now),
                "occupancy": _prop(occupancy, None, now),
                "congested": _prop(congested, None, now),
            }))
    return entities


# Where waste containers go: ward-level clusters (lon, lat, spread in metres, count, origin).
_WASTE_CLUSTERS: list[tuple[float, float, float, int, str]] = [
    (108.2220, 16.0700, 450, 12, "household"),   # Hải Châu centre
    (108.2160, 16.0480, 500, 8, "household"),    # Hòa Thuận / Bình Thuận
    (108.1950, 16.0680, 500, 10, "household"),   # Thanh Khê
    (108.2380, 16.0650, 450, 8, "hostelry"),     # An Hải, hotels near the beach
    (108.2430, 16.0480, 400, 6, "hostelry"),     # Mỹ An
    (108.1550, 16.0700, 600, 10, "household"),   # Liên Chiểu, Hòa Khánh
    (108.2050, 16.0220, 600, 8, "household"),    # Cẩm Lệ
    (108.2390, 16.0860, 400, 6, "municipal"),    # Thọ Quang fishing port area
    (108.2560, 16.0120, 400, 4, "hostelry"),     # Hòa Hải resorts
]


def _waste(rng: random.Random, now: datetime) -> list[Entity]:
    entities: list[Entity] = []
    k = 0
    kinds = ["organic", "inorganic", "plastic", "paper"]
    for lon0, lat0, spread, count, origin in _WASTE_CLUSTERS:
        placed = 0
        for _attempt in range(count * 50):  # bounded: a cluster centre off land cannot hang
            if placed == count:
                break
            dx, dy = rng.uniform(-spread, spread), rng.uniform(-spread, spread)
            lon = lon0 + dx / (_M_PER_DEG_LON_EQ * math.cos(math.radians(lat0)))
            lat = lat0 + dy / _M_PER_DEG_LAT
            district = district_of(lon, lat)
            if district is None:  # keep bins on land inside the city outline, not in the river
                continue
            placed += 1
            k += 1
            # Filling grows with time since the last morning round; a few bins are overdue.
            emptied = now - timedelta(hours=rng.uniform(6, 40))
            hours = (now - emptied).total_seconds() / 3600
            filling = round(min(1.0, hours / 40 * rng.uniform(0.6, 1.3)), 2)
            roll = rng.random()
            status = "ok" if roll < 0.9 else "lidOpen" if roll < 0.96 else "dropped"
            capacity = 660 if origin != "household" or rng.random() < 0.3 else 240
            entities.append(_finish({
                **_base("WasteContainer", f"waste-{k:03d}"),
                "location": _geo(_point(lon, lat)),
                "fillingLevel": _prop(filling, None, now),
                "status": _prop(status, observed=now),
                "storedWasteKind": _prop(kinds[rng.randrange(len(kinds))]
                                         if origin != "hostelry" else "organic"),
                "storedWasteOrigin": _prop(origin),
                "category": _prop(["fixed"] if capacity == 660 else ["portable"]),
                "binCapacity": _prop(capacity, "LTR"),
                "temperature": _prop(round(rng.uniform(23.0, 29.0), 1), "CEL", now),
                "dateLastEmptying": _prop(_dt(emptied)),
                "nextActuationDeadline": _prop(_dt(emptied + timedelta(hours=48))),
                "serialNumber": _prop(f"DN-WC-{k:04d}"),
                "areaServed": _prop(DISTRICTS[district]["vi"]),
            }))
        if placed < count:
            raise RuntimeError(f"waste cluster at {lon0},{lat0} lies outside every district")
    return entities


def _points_of_interest() -> list[Entity]:
    entities: list[Entity] = []
    for slug, vi, en, categories, street, lon, lat in POINTS_OF_INTEREST:
        entities.append(_finish({
            **_base("PointOfInterest", slug),
            "name": _lang(vi, en),
            "category": _prop(categories),
            "address": _address(street),
            "location": _geo(_point(lon, lat)),
        }))
    return entities


def _districts() -> list[Entity]:
    entities: list[Entity] = []
    census = datetime(2009, 4, 1, tzinfo=UTC)
    for slug, district in DISTRICTS.items():
        entities.append(_finish({
            **_base("AdministrativeArea", slug),
            "name": _lang(f"Quận {district['vi']} (cũ)", f"{district['en']} (former district)"),
            "description": _prop(
                f"Former urban district (quận) {district['vi']} of Đà Nẵng. Vietnam's 2025 "
                "local-government reform abolished the district level; the outline is kept as "
                "a reference zone. Simplified boundary, not survey-grade."),
            "administrativeLevel": _prop("formerDistrict"),
            "location": _geo({"type": "Polygon", "coordinates": [_closed(district["ring"])]}),
            "population": {
                **_prop(district["population"], observed=census),
                "source": _prop("2009 Population and Housing Census, General Statistics "
                                "Office of Vietnam"),
            },
        }))
    return entities


def build_demo_city() -> list[Entity]:
    """The full demo city, in a stable order, every entity with the core @context."""
    # Imported here: dothi.demo_plans builds on this module's helpers.
    from dothi.demo_plans import plan_entities

    rng = random.Random(SEED)
    now = REFERENCE_TIME
    return [
        *_districts(),
        *_points_of_interest(),
        *_streetlights(rng, now),
        *_air_quality(rng, now),
        *_flood(rng, now),
        *_traffic(rng, now),
        *_waste(rng, now),
        *plan_entities(),
    ]


def write_demo_file(path: str | Path) -> Path:
    """Write the demo city as one JSON array (UTF-8, Vietnamese text kept readable)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(build_demo_city(), ensure_ascii=False, indent=1) + "\n",
                      encoding="utf-8")
    return target


if __name__ == "__main__":  # pragma: no cover - convenience for eyeballing the data
    import sys

    out = write_demo_file(sys.argv[1] if len(sys.argv) > 1 else "danang-demo.json")
    print(out)
