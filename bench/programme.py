"""What the national programme costs a national instance: one command, one table (also
bench/results/programme.txt).

    python bench/programme.py [--items 100] [--backend sqlite|postgresql]

The 34 provinces each submit an action plan of ``--items`` tasks and their annual report,
through the whole app in process (httpx's ASGI transport, no network). Then:

1. the hourly check of every task and request: the week's first (which also writes the
   digest), one when nothing changed, and one when every flag changes (a year later);
   the baseline, in the same run, is reading the same tasks' JSON from a plain SQLite
   table and flagging them in Python, which is the least any check must do;
2. the consolidated national report (JSON and DOCX), the dashboard's overview and the
   weekly digest, each the median of 5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from audit import drop_postgres, fresh_postgres  # bench/ is first on sys.path
from dothi.app import create_app
from dothi.program.tasks import flag, today
from dothi.program.units import provinces
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT

HERE = Path(__file__).resolve().parent
console = Console(width=150)
KEY = {"Authorization": "Bearer bench-ministry"}
TEXTS = {"overview": "Năm 2026 tỉnh vận hành nền tảng dữ liệu đô thị và trung tâm IOC.",
         "difficulties": "Thiếu nhân lực."}


def item(n: int) -> dict[str, Any]:
    return {"code": str(n), "refParent": "urn:ngsi-ld:ProgrammeTask:DT950-4.1",
            "name": f"Nhiệm vụ {n}", "description": "Triển khai hạng mục",
            "startDate": (today() - timedelta(days=n % 200)).isoformat(),
            "deadline": (today() + timedelta(days=30 + n % 300)).isoformat(),
            "responsiblePerson": "Giám đốc Sở", "responsibility": "Sở chủ trì",
            "authority": "UBND tỉnh", "expectedProduct": "Hạng mục vận hành",
            "leadAgency": "Sở Khoa học và Công nghệ"}


async def timed(fn: Callable[[], Awaitable[Any]], rounds: int = 5) -> float:
    """The median of ``rounds`` calls, in ms."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def run(database_url: str, items: int) -> dict[str, str]:
    settings = Settings(database_url=database_url, context_fetch=False, rate_limit=0,
                        official_keys="bench-ministry", program_check_interval=1e9)
    app = create_app(settings)
    out: dict[str, str] = {}
    units = sorted(provinces())
    async with app.router.lifespan_context(app):
        desk = app.state.programme
        await asyncio.to_thread(desk.tasks.load, DEFAULT_TENANT)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers=KEY, timeout=600) as c:
            r = await c.post("/program/calendar/2026")
            assert r.status_code == 201, r.text
            start = time.perf_counter()
            for unit in units:
                r = await c.put(f"/program/plans/{unit}/2026",
                                json={"items": [item(n) for n in range(items)]})
                assert r.status_code == 200, r.text
            took = time.perf_counter() - start
            out["34 action plans"] = f"{took:.1f} s ({34 * items / took:,.0f} tasks/s)"
            start = time.perf_counter()
            for unit in units:
                r = await c.put(f"/program/reports/annual-2026/{unit}", json={
                    "sections": TEXTS,
                    "indicators": {"EC: ICT: ICT: 4C": 90, "EN: EN: AQ: 1C": 25}})
                assert r.status_code == 200, r.text
                r = await c.post(f"/program/reports/annual-2026/{unit}/submit")
                assert r.status_code == 200, r.text
            took = time.perf_counter() - start
            out["34 reports (draft and submit)"] = f"{took * 1000 / 34:.0f} ms per report"

            tasks = await asyncio.to_thread(desk.tasks.find, DEFAULT_TENANT)
            out["tasks"] = f"{len(tasks):,}"
            for name in ("first check of the week (writes the digest)",
                         "check, nothing changed"):
                start = time.perf_counter()
                done = await asyncio.to_thread(desk.check, DEFAULT_TENANT)
                out[name] = f"{(time.perf_counter() - start) * 1000:,.0f} ms " \
                    f"({len(done['flagged'])} flags written)"
            later = today() + timedelta(days=400)
            start = time.perf_counter()
            done = await asyncio.to_thread(desk.check, DEFAULT_TENANT, later)
            out["check, every flag changes"] = \
                f"{(time.perf_counter() - start) * 1000:,.0f} ms ({len(done['flagged']):,} " \
                "flags written)"
            out["baseline: flag the same tasks from a plain SQLite table"] = \
                f"{baseline(tasks):,.0f} ms"

            for name, path in (("national report (JSON)", "/program/requests/annual-2026/"
                                "national"),
                               ("national report (DOCX)", "/program/requests/annual-2026/"
                                "national.docx"),
                               ("dashboard overview", "/program/overview?request="
                                "annual-2026"),
                               ("weekly digest", "/program/digest")):
                async def get(path: str = path) -> None:
                    r = await c.get(path)
                    assert r.status_code == 200, r.text

                out[name] = f"{await timed(get):,.0f} ms"
    return out


def baseline(tasks: list[dict[str, Any]]) -> float:
    """Read the tasks' JSON from a plain SQLite table and flag each: ms."""
    with tempfile.TemporaryDirectory() as folder:
        conn = sqlite3.connect(Path(folder) / "raw.db")
        conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, doc TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)",
                         [(t["id"], json.dumps(t)) for t in tasks])
        conn.commit()
        start = time.perf_counter()
        day = today()
        flags = [flag(json.loads(doc), day) for (doc,) in conn.execute("SELECT doc FROM t")]
        took = (time.perf_counter() - start) * 1000
        conn.close()
    assert len(flags) == len(tasks)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100, help="tasks in each plan")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.backend == "sqlite":
            url = f"sqlite:///{Path(folder) / 'national.db'}"
            results = asyncio.run(run(url, args.items))
        else:
            url = fresh_postgres("dothi_bench_programme")
            try:
                results = asyncio.run(run(url, args.items))
            finally:
                drop_postgres("dothi_bench_programme")
    table = Table(title=f"The national programme on {args.backend}: 34 provinces, "
                  f"{args.items} tasks in each plan")
    table.add_column("step")
    table.add_column("figure", justify="right")
    for name, figure in results.items():
        table.add_row(name, figure)
    console.print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / f"programme-{args.backend}.txt", "w") as f:
        Console(file=f, width=150).print(table)


if __name__ == "__main__":
    sys.exit(main())
