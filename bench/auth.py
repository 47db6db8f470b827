"""What sign-in and access rules cost: one command, one table (also bench/results/auth.txt).

    python bench/auth.py [--entities 20000] [--requests 3000]

1. Requests: GET of one entity through the whole app in process (httpx's ASGI transport,
   no network), with no credential (the baseline, measured in the same run), an API key,
   a bearer token of the built-in issuer, and a web session; requests per second and
   microseconds added to each.
2. Queries: the store's query of a page of 100, alone and with its count, on SQLite and
   on PostgreSQL, over ``--entities`` incidents of two agencies and as many streetlights:
   unlimited (the baseline), narrowed to one agency's incidents (an officer), and the
   streetlights for the public (internal types hidden); milliseconds per query.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from audit import drop_postgres, fresh_postgres, lamp  # bench/ is first on sys.path
from dothi.app import build_broker, create_app
from dothi.auth import access as auth
from dothi.auth.accounts import Account, Accounts, hash_password, key_hash
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT, EntityQuery, Selector

HERE = Path(__file__).resolve().parent
console = Console(width=150)
KEY = "dothi_bench-operator-key"
ROUNDS = 10


async def request_rates(folder: Path, n: int) -> dict[str, float]:
    accounts = Accounts(folder / "accounts.yaml", auth.Policy.load())
    accounts.add(Account("keys", "operator", "operator", key_hash(KEY)))
    accounts.add(Account("users", "lan", "operator", hash_password("bench-password", 1000)))
    settings = Settings(database_url=f"sqlite:///{folder / 'requests.db'}", context_fetch=False,
                        auth_accounts=folder / "accounts.yaml", auth_key_file=folder / "k.key",
                        auth_url="http://bench", rate_limit=0, history=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            assert (await c.post("/ngsi-ld/v1/entities", json=lamp("r", 1), headers={
                "Authorization": f"Bearer {KEY}"})).status_code == 201
            token = (await c.post("/auth/token", data={
                "grant_type": "client_credentials", "client_secret": KEY})).json()
            login = await c.post("/auth/login", data={"username": "lan",
                                                      "password": "bench-password"})
            cookies = dict(login.cookies)
            ways: dict[str, dict[str, Any]] = {
                "no credential (baseline)": {},
                "API key": {"headers": {"Authorization": f"Bearer {KEY}"}},
                "bearer token (ES256)": {"headers": {
                    "Authorization": f"Bearer {token['access_token']}"}},
                "web session": {"cookies": cookies}}
            path = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:r-1"
            spent = dict.fromkeys(ways, 0.0)
            # In turns, so that whatever else the machine does falls on every way alike.
            for turn in range(ROUNDS + 1):
                for name, how in ways.items():
                    c.cookies.clear()
                    for key, value in how.get("cookies", {}).items():
                        c.cookies.set(key, value)
                    began = time.perf_counter()
                    for _ in range(n // ROUNDS):
                        r = await c.get(path, headers=how.get("headers"))
                    assert r.status_code == 200, (name, r.text)
                    if turn:  # the first turn warms up
                        spent[name] += time.perf_counter() - began
    return {name: ROUNDS * (n // ROUNDS) / t for name, t in spent.items()}


def incidents(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        agency = "transport" if i % 2 else "drainage"
        out.append({"id": f"urn:ngsi-ld:Incident:b-{i}", "type": "Incident",
                    "assignedAgency": {"type": "Property", "value": agency},
                    "ward": {"type": "Property", "value": f"Phường {i % 40}"},
                    "status": {"type": "Property", "value": "assigned"}})
    return out


def query_times(url: str, n: int, repeat: int = 30) -> dict[str, tuple[float, float]]:
    broker = build_broker(Settings(database_url=url, context_fetch=False, history=False))
    try:
        ctx = broker.resolver.core
        rows = incidents(n) + [lamp("q", i) for i in range(n)]
        for start in range(0, len(rows), 2000):
            broker.batch(DEFAULT_TENANT, "upsert", rows[start:start + 2000], lambda _: ctx)
        broker.store.analyze()
        policy = auth.Policy.load()
        officer = auth.Access(auth.Principal("key:o", "officer", agency="transport"), policy)
        public = auth.Access(auth.Principal("anonymous", "public", identified=False), policy)

        def query(type_name: str, access: auth.Access) -> tuple[float, float]:
            """Milliseconds for a page of 100, and for the page with its count."""
            out = []
            for count in (False, True):
                q = EntityQuery(selectors=[Selector(types=parse_type_expr(type_name,
                                                                          ctx.expand))],
                                expand=ctx.expand, limit=100, count=count)
                times = []
                with auth.acting(access):
                    for _ in range(repeat):
                        began = time.perf_counter()
                        result = broker.query(DEFAULT_TENANT, q)
                        times.append(time.perf_counter() - began)
                out.append(statistics.median(times) * 1000)
            assert result.count == (n // 2 if access is officer and type_name == "Incident"
                                    else n), (type_name, result.count)
            return out[0], out[1]

        return {"Incident, unlimited (baseline)": query("Incident", auth.SYSTEM),
                "Incident, one agency's (officer)": query("Incident", officer),
                "Streetlight, unlimited (baseline)": query("Streetlight", auth.SYSTEM),
                "Streetlight, internal types hidden (public)": query("Streetlight", public)}
    finally:
        broker.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rates = asyncio.run(request_rates(folder, args.requests))
        with console.status("Queries on SQLite"):
            sqlite = query_times(f"sqlite:///{folder / 'queries.db'}", args.entities)
        with console.status("Queries on PostgreSQL"):
            name = "dothi_bench_auth"
            try:
                postgres = query_times(fresh_postgres(name), args.entities)
            finally:
                drop_postgres(name)

    base = rates["no credential (baseline)"]
    first = Table(title=f"GET one entity in process, {args.requests} requests each")
    for column in ("credential", "requests/s", "µs added per request"):
        first.add_column(column, justify="right" if column != "credential" else "left")
    for name, rate in rates.items():
        first.add_row(name, f"{rate:,.0f}", "—" if rate == base
                      else f"{(1 / rate - 1 / base) * 1e6:,.0f}")
    second = Table(title=f"A page of 100, alone and with its count, over {args.entities:,} "
                   f"incidents and {args.entities:,} streetlights (median of 30, ms)")
    for column in ("query", "SQLite page", "+ count", "PostgreSQL page", "+ count"):
        second.add_column(column, justify="right" if column != "query" else "left")
    for name in sqlite:
        second.add_row(name, *(f"{v:.1f}" for v in (*sqlite[name], *postgres[name])))
    console.print(first)
    console.print(second)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / "auth.txt", "w") as f:
        Console(file=f, width=150).print(first, second)


if __name__ == "__main__":
    main()
