"""OGC API - Features: dothi against pygeoapi on the same 100,000 features, in one run.

    python bench/ogc.py [--features 100000] [--seconds 10] [--clients 8] [--work DIR]

With ``--work DIR`` the GeoPackage, the SQLite database and both PostgreSQL databases are
kept, and a later run with the same DIR and feature count measures again without
importing (the import column then says "kept").

The layer: a grid of small planning-zone polygons over Đà Nẵng with four fields, written
as a GeoPackage. dothi imports it (``dothi import``) into SQLite and into PostgreSQL +
PostGIS and serves it (``dothi serve``, one process). pygeoapi (the reference Python
implementation, installed from PyPI into its own virtualenv under bench/results/, not
committed) serves the same GeoPackage loaded into PostGIS by GDAL's ``ogr2ogr``, through
its PostgreSQL provider, the one of its providers that takes CQL2 filters, under uvicorn
(one process). Every server answers the same two requests first, and their
``numberMatched`` must agree, else the run stops.

Measured for each: requests/s with ``--clients`` concurrent clients for ``--seconds``,
for a bbox query (a random ~300 m box, limit 100) and for a CQL2 text filter
(``landUse = 'green' AND far > 2`` inside a random ~1 km box, limit 100).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy
import pyogrio.raw
import run  # bench/ is the script's folder, first on sys.path
import shapely
from rich.table import Table

HERE = Path(__file__).resolve().parent
PG = os.environ.get("DOTHI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
USES = ["residential", "commercial", "green", "public"]
X0, Y0 = 108.10, 15.95  # the grid's south-west corner


def write_layer(path: Path, n: int) -> None:
    side = int(n ** 0.5) + 1
    step = 0.0015
    shapes, codes, uses, fars, heights = [], [], [], [], []
    for k in range(n):
        i, j = divmod(k, side)
        shapes.append(shapely.box(X0 + i * step, Y0 + j * step, X0 + (i + 0.9) * step,
                                  Y0 + (j + 0.9) * step))
        codes.append(f"Z{k:06d}")
        uses.append(USES[k % 4])
        fars.append(round(0.5 + (k % 7) * 0.5, 1))
        heights.append(12 + 3 * (k % 9))
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb(shapes), dtype=object),
                      [numpy.array(codes), numpy.array(uses), numpy.array(fars),
                       numpy.array(heights)],
                      fields=["code", "landUse", "far", "maxHeight"], geometry_type="Polygon",
                      crs="EPSG:4326", layer="zones")


def box(rng: random.Random, size: float, n: int) -> tuple[float, float, float, float]:
    extent = (int(n ** 0.5) + 1) * 0.0015
    x = X0 + rng.uniform(0, extent - size)
    y = Y0 + rng.uniform(0, extent - size)
    return x, y, x + size, y + size


def bbox_params(rng: random.Random, n: int) -> dict[str, str]:
    return {"bbox": ",".join(f"{v:.6f}" for v in box(rng, 0.003, n)), "limit": "100"}


def filter_params(rng: random.Random, n: int, dialect: str = "cql2-text") -> dict[str, str]:
    """The same filter in each server's language: CQL2 text for dothi; pygeoapi 0.21
    takes only its older ``cql-text`` (INTERSECTS, its geometry column's own name)."""
    x0, y0, x1, y1 = box(rng, 0.01, n)
    polygon = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    if dialect == "cql-text":
        return {"filter": f"landUse = 'green' AND far > 2 AND INTERSECTS(geom, {polygon})",
                "filter-lang": "cql-text", "limit": "100"}
    return {"filter": f"landUse = 'green' AND far > 2 AND S_INTERSECTS(geometry, {polygon})",
            "filter-lang": "cql2-text", "limit": "100"}


def rate(url: str, make: Any, n: int, seconds: float, clients: int) -> tuple[float, int]:
    """Requests/s over ``seconds`` with ``clients`` threads, and the errors seen."""
    stop = time.monotonic() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(k: int) -> None:
        rng = random.Random(k)
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < stop:
                r = http.get(url, params=make(rng, n))
                if r.status_code == 200:
                    counts[k] += 1
                else:
                    errors[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started), sum(errors)


def matched(url: str, params: dict[str, str]) -> int:
    r = httpx.get(url, params=params, timeout=120)
    r.raise_for_status()
    return int(r.json()["numberMatched"])


def pygeoapi_venv() -> Path:
    venv = HERE / "results" / "pygeoapi-venv"
    done = venv / ".installed"  # written once everything below is in
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # Its Starlette app needs starlette, which pygeoapi does not pull in itself.
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "pygeoapi==0.21.0",
                        "psycopg2-binary", "sqlalchemy", "geoalchemy2", "uvicorn",
                        "starlette"],
                       check=True)
        done.touch()
    return venv


def pg_url(name: str) -> str:
    return PG.rsplit("/", 1)[0] + "/" + name


def pg_database(name: str) -> None:
    """A new, empty database ``name`` with PostGIS."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg_url(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def analyze(name: str) -> None:
    """VACUUM ANALYZE a freshly loaded database, so that its query plans do not depend on
    whether autovacuum has got round to it yet (pygeoapi's CQL2 rate varied 84-159 req/s
    between runs without this)."""
    import psycopg

    with psycopg.connect(pg_url(name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


CONFIG = """server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: none}}
logging: {{level: ERROR}}
metadata:
  identification: {{title: bench, description: bench, keywords: [bench], keywords_type: theme,
                   terms_of_service: 'https://example.org', url: 'https://example.org'}}
  license: {{name: CC-BY 4.0, url: 'https://creativecommons.org/licenses/by/4.0/'}}
  provider: {{name: bench, url: 'https://example.org'}}
  contact: {{name: bench, position: bench, address: bench, city: bench,
            stateorprovince: bench, postalcode: '0', country: VN, phone: '0', fax: '0',
            email: bench@example.org, url: 'https://example.org', hours: '0',
            instructions: none, role: pointOfContact}}
resources:
  zones:
    type: collection
    title: zones
    description: zones
    keywords: [zones]
    extents:
      spatial: {{bbox: [-180, -90, 180, 90], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}
    providers:
      - type: feature
        name: PostgreSQL
        data: {{host: 127.0.0.1, port: 5432, dbname: {db}, user: postgres,
               search_path: [public]}}
        id_field: fid
        table: zones
        geom_field: geom
"""


def start_pygeoapi(venv: Path, work: Path, db: str) -> tuple[subprocess.Popen[str], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = work / "pygeoapi.yml"
    config.write_text(CONFIG.format(port=port, db=db))
    openapi = work / "openapi.yml"
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run([str(venv / "bin" / "pygeoapi"), "openapi", "generate", str(config),
                    "--output-file", str(openapi)], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([str(venv / "bin" / "uvicorn"), "pygeoapi.starlette_app:APP",
                             "--host", "127.0.0.1", "--port", str(port), "--log-level",
                             "warning"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/conformance", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)  # the bench waits for a server it started; no test does this
    proc.kill()
    raise SystemExit("pygeoapi did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--work", type=Path, help="keep the data here and reuse it")
    args = parser.parse_args()
    if shutil.which("ogr2ogr") is None:
        raise SystemExit("needs GDAL's ogr2ogr (Debian gdal-bin) to load pygeoapi's table")
    n = args.features
    table = Table(title=f"OGC API - Features, {n:,} polygons, {args.clients} clients, "
                        f"{args.seconds:.0f} s each (1 server process each)")
    for column in ("server", "import", "bbox req/s", "CQL2 req/s", "errors"):
        table.add_column(column, justify="right" if column != "server" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        loaded = work / f"loaded-{n}"  # written once all three stores hold the layer
        kept = loaded.exists()
        gpkg = work / "zones.gpkg"
        pg_name, py_db = "dothi_bench_ogc", "dothi_bench_pygeoapi"
        pg_dothi = pg_url(pg_name)
        if not kept:
            (work / "ogc.db").unlink(missing_ok=True)
            write_layer(gpkg, n)
            pg_database(pg_name)
        servers: list[tuple[str, str, str, subprocess.Popen[str], str]] = []
        try:
            for label, db in (("dothi, SQLite", str(work / "ogc.db")),
                              ("dothi, PostgreSQL", pg_dothi)):
                took = "kept"
                if not kept:
                    started = time.monotonic()
                    subprocess.run([sys.executable, "-m", "dothi.cli", "import", str(gpkg),
                                    "--db", db, "--type", "PlanningZone", "--layer", "zones"],
                                   check=True, capture_output=True)
                    took = f"{time.monotonic() - started:.0f} s"
                proc, url = run.start_server(Path(db) if "://" not in db else db, 1)  # type: ignore[arg-type]
                servers.append((label, took, url + "/ogc", proc, "cql2-text"))
            took = "kept"
            if not kept:
                pg_database(py_db)
                started = time.monotonic()
                subprocess.run(["ogr2ogr", "-f", "PostgreSQL",
                                f"PG:host=127.0.0.1 user=postgres dbname={py_db}", str(gpkg),
                                "-nln", "zones", "-lco", "GEOMETRY_NAME=geom", "-lco",
                                "FID=fid", "-lco", "LAUNDER=NO", "-overwrite"], check=True,
                               capture_output=True)
                took = f"{time.monotonic() - started:.0f} s (ogr2ogr)"
                for name in (pg_name, py_db):  # fresh tables: plans from statistics, not chance
                    analyze(name)
                loaded.touch()
            proc, url = start_pygeoapi(pygeoapi_venv(), work, py_db)
            servers.append(("pygeoapi 0.21, PostgreSQL", took, url, proc, "cql-text"))

            for make in (bbox_params, filter_params):
                seen = {label: matched(f"{url}/collections/zones/items",
                                       make(random.Random(7), n, dialect)
                                       if make is filter_params else make(random.Random(7), n))
                        for label, _, url, _, dialect in servers}
                if len(set(seen.values())) != 1 or 0 in seen.values():
                    raise SystemExit(f"the servers disagree ({make.__name__}): {seen}")
            for label, imported, url, _, dialect in servers:
                items = f"{url}/collections/zones/items"
                bbox_rate, e1 = rate(items, bbox_params, n, args.seconds, args.clients)
                cql_rate, e2 = rate(items, lambda rng, n, d=dialect: filter_params(rng, n, d),
                                    n, args.seconds, args.clients)
                table.add_row(label, imported, f"{bbox_rate:.0f}", f"{cql_rate:.0f}",
                              str(e1 + e2))
        finally:
            for _, _, _, proc, _ in servers:
                proc.terminate()
                proc.wait(timeout=30)
    run.show_and_save(table, "ogc.txt")


if __name__ == "__main__":
    main()
