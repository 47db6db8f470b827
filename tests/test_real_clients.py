"""A real server process, driven by plain HTTP and by a real NGSI-LD client library
(ngsildclient from PyPI, not written here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server import running_server


def test_serve_port_zero_answers_http(database_url: Callable[[str], str]) -> None:
    with running_server(database_url("s")) as base:
        r = httpx.get(base + "/-/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert "dothi" in httpx.get(base + "/").text


def test_ngsildclient_create_query_delete(database_url: Callable[[str], str]) -> None:
    ngsildclient = pytest.importorskip("ngsildclient")
    with running_server(database_url("c")) as base:
        port = int(base.rsplit(":", 1)[1])
        client = ngsildclient.Client(hostname="127.0.0.1", port=port, verbose=False)
        e = ngsildclient.Entity("AirQualityObserved", "DaNang-HaiChau-01")
        e.prop("pm25", 38.5, unitcode="GQ")
        e.prop("aqi", 104)
        e.loc(16.0612, 108.2272)
        created = client.create(e)
        assert created is not None
        assert client.exists(e.id)
        got = client.get(e.id)
        assert got["pm25"]["value"] == 38.5
        found = client.query(type="AirQualityObserved", q="pm25>30")
        assert [x.id for x in found] == [e.id]
        assert client.count(type="AirQualityObserved") == 1
        client.delete(e)
        assert not client.exists(e.id)
        client.close()


def test_two_workers_share_one_database(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with running_server(tmp_path / "w.db", "--workers", "2") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            r = http.post("/ngsi-ld/v1/jsonldContexts",
                          json={"@context": {"Bin": "https://example.org/Bin"}})
            assert r.status_code == 201
            link = (f'<{base}{r.headers["location"]}>; '
                    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')

            def create(i: int) -> int:
                body = [{"id": f"urn:ngsi-ld:Bin:{i}-{j}", "type": "Bin",
                         "fillingLevel": {"type": "Property", "value": j / 10}}
                        for j in range(10)]
                return http.post("/ngsi-ld/v1/entityOperations/create", json=body,
                                 headers={"Link": link}).status_code

            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(create, range(20)))
            assert statuses == [201] * 20
            counts = {
                http.get("/ngsi-ld/v1/entities", headers={"Link": link},
                         params={"type": "Bin", "count": "true", "limit": "0"}
                         ).headers["NGSILD-Results-Count"]
                for _ in range(10)
            }
            assert counts == {"200"}
            assert "https://example.org/Bin" in http.get("/ngsi-ld/v1/types").json()["typeList"]
