"""@context management, meta endpoints, the landing page and OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from tests.conftest import CORE, streetlight


def test_context_lifecycle(client: TestClient) -> None:
    listed = client.get("/ngsi-ld/v1/jsonldContexts").json()
    assert CORE in listed
    r = client.post("/ngsi-ld/v1/jsonldContexts", json={"@context": {"a": "https://x.org/a"}})
    assert r.status_code == 201
    location = r.headers["location"]
    served = client.get(location)
    assert served.status_code == 200 and served.json() == {"@context": {"a": "https://x.org/a"}}
    details = client.get(location, params={"details": "true"}).json()
    assert details["kind"] == "Hosted"
    hosted = client.get("/ngsi-ld/v1/jsonldContexts", params={"kind": "Hosted"}).json()
    assert len(hosted) == 1 and hosted[0].endswith(location)
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.post("/ngsi-ld/v1/jsonldContexts", json={"no": 1}).status_code == 400
    assert client.delete("/ngsi-ld/v1/jsonldContexts/" + CORE).status_code == 404


def test_core_context_served_offline(client: TestClient) -> None:
    r = client.get("/ngsi-ld/v1/jsonldContexts/" + CORE)
    assert r.status_code == 200
    assert r.json()["@context"]["ngsi-ld"] == "https://uri.etsi.org/ngsi-ld/"


def test_meta_and_landing(client: TestClient) -> None:
    assert client.get("/-/health").json() == {"status": "ok"}
    assert client.get("/-/version").json()["ngsi-ld"] == "1.9.1"
    client.post("/ngsi-ld/v1/entities", json=streetlight())
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Streetlight" in page.text and "/docs" in page.text
    spec = client.get("/openapi.json").json()
    for path in ("/ngsi-ld/v1/entities", "/ngsi-ld/v1/entityOperations/upsert",
                 "/ngsi-ld/v1/types", "/ngsi-ld/v1/jsonldContexts"):
        assert path in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/-/static/docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/-/static/docs/swagger-ui-bundle.js").status_code == 200
    unknown = client.get("/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_context_folder_is_preloaded(tmp_path: Path,
                                     database_url: Callable[[str], str]) -> None:
    folder = tmp_path / "contexts"
    folder.mkdir()
    (folder / "city.jsonld").write_text(json.dumps(
        {"@context": {"Gauge": "https://example.org/Gauge"}}))
    url = "https://example.org/city.jsonld"
    (folder / "manifest.json").write_text(json.dumps({url: "city.jsonld"}))
    settings = Settings(database_url=database_url("c"), context_fetch=False,
                        context_dir=folder)
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    with TestClient(create_app(settings)) as client:
        r = client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Gauge:1",
                                                      "type": "Gauge"}, headers={"Link": link})
        assert r.status_code == 201
        assert client.get("/ngsi-ld/v1/types").json()["typeList"] == ["https://example.org/Gauge"]
