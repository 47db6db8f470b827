"""Signing in: the built-in issuer's tokens (password and API-key grants, discovery, keys),
a city's own OpenID Connect provider's tokens, web sessions with their anti-forgery
token, and keys revoked on the command line."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dothi.app import create_app
from dothi.cli import app as cli
from tests.auth.conftest import PASSWORD, Instance, accounts_file, secured_settings
from tests.conftest import streetlight

E = "/ngsi-ld/v1/entities"
SECRET = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def sqlite_secured(tmp_path: Path) -> Iterator[Instance]:
    keys = accounts_file(tmp_path / "accounts.yaml")
    settings = secured_settings(f"sqlite:///{tmp_path / 'signin.db'}", tmp_path)
    with TestClient(create_app(settings)) as client:
        yield Instance(client, settings, keys)


def token(client: TestClient, **form: str) -> Any:
    return client.post("/auth/token", data=form)


def me(client: TestClient, bearer: str) -> Any:
    return client.get("/auth/me", headers={"Authorization": f"Bearer {bearer}"})


def test_tokens_for_a_password_or_an_api_key(sqlite_secured: Instance) -> None:
    c = sqlite_secured.client
    r = token(c, grant_type="password", username="lan", password=PASSWORD)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    issued = r.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
    who = me(c, issued["access_token"]).json()
    assert (who["subject"], who["role"], who["identified"]) == ("user:lan", "operator", True)
    assert c.post(E, json=streetlight(), headers={
        "Authorization": f"Bearer {issued['access_token']}"}).status_code == 201
    r = token(c, grant_type="client_credentials", client_id="officer",
              client_secret=sqlite_secured.keys["officer"])
    assert me(c, r.json()["access_token"]).json()["agency"] == "transport"
    # Refusals, in OAuth 2's words.
    for form, status, error in (
            ({"grant_type": "password", "username": "lan", "password": "sai"}, 400,
             "invalid_grant"),
            ({"grant_type": "password", "username": "ai-đó", "password": PASSWORD}, 400,
             "invalid_grant"),
            ({"grant_type": "password"}, 400, "invalid_request"),
            ({"grant_type": "client_credentials", "client_secret": "dothi_guess"}, 401,
             "invalid_client"),
            ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type")):
        r = token(c, **form)
        assert (r.status_code, r.json()["error"]) == (status, error), form
    assert c.post("/auth/token", json={"grant_type": "password"}).status_code == 400


def test_tokens_that_are_not_valid_are_refused(sqlite_secured: Instance, tmp_path: Path) -> None:
    s = sqlite_secured
    good = token(s.client, grant_type="password", username="lan",
                 password=PASSWORD).json()["access_token"]
    head, body, signature = good.split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    forged = jwt.utils.base64url_encode(json.dumps(
        {**claims, "dothi_role": "system-admin"}).encode()).decode()
    issuer = s.client.app.state.authenticator.issuer  # type: ignore[attr-defined]
    key = issuer._key
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, key,
                         algorithm="ES256")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = jwt.encode({**claims, "iss": "https://idp.example.vn"}, other,
                          algorithm="RS256")
    session = issuer.issue(s.client.app.state.authenticator.accounts.user(  # type: ignore[attr-defined]
        "lan", PASSWORD), "dothi-web")[0]
    for bad in (f"{head}.{forged}.{signature}", expired, stranger, session, "dothi_nokey",
                good[:-4]):
        r = s.client.post(E, json=streetlight(9), headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"] == 'Bearer realm="dothi"'
        assert r.headers["content-type"] == "application/problem+json"
    assert s.client.post(E, json=streetlight(9), headers={
        "Authorization": "Basic bGFuOnNhaQ=="}).status_code == 401
    assert s.client.get(f"{E}/urn:ngsi-ld:Streetlight:dn-9").status_code == 404


def test_discovery_and_keys_check_the_issuers_tokens(sqlite_secured: Instance) -> None:
    c = sqlite_secured.client
    found = c.get("/.well-known/openid-configuration").json()
    assert found["issuer"] == "http://testserver"
    assert found["token_endpoint"] == "http://testserver/auth/token"
    keys = jwt.PyJWKSet.from_dict(c.get("/auth/jwks.json").json())
    issued = token(c, grant_type="password", username="lan",
                   password=PASSWORD).json()["access_token"]
    kid = jwt.get_unverified_header(issued)["kid"]
    claims = jwt.decode(issued, keys[kid], algorithms=["ES256"], audience="dothi",
                        issuer=found["issuer"])
    assert (claims["sub"], claims["dothi_role"]) == ("user:lan", "operator")


class _Keys(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("published", ["file", "url"])
def test_a_citys_own_provider(tmp_path: Path, published: str) -> None:
    """Keycloak-like tokens (RS256, roles in realm_access.roles) from the city's provider,
    its keys in a file (offline) or at a URL."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    server = None
    if published == "file":
        (tmp_path / "jwks.json").write_text(jwks)
        where = str(tmp_path / "jwks.json")
    else:
        handler = type("Keys", (_Keys,), {"body": jwks.encode()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        Thread(target=server.serve_forever, daemon=True).start()
        where = f"http://127.0.0.1:{server.server_address[1]}/certs"
    accounts_file(tmp_path / "accounts.yaml")
    settings = secured_settings(f"sqlite:///{tmp_path / 'idp.db'}", tmp_path,
                                auth_issuer="https://sso.danang.gov.vn/realms/dothi",
                                auth_jwks=where, auth_audience="dothi",
                                auth_role_claim="realm_access.roles")
    now = int(time.time())
    claims = {"iss": "https://sso.danang.gov.vn/realms/dothi", "aud": "dothi",
              "sub": "f3a1", "iat": now, "exp": now + 300,
              "realm_access": {"roles": ["offline_access", "operator"]},
              "dothi_area": "Hải Châu"}

    def sign(**change: Any) -> str:
        return jwt.encode({**claims, **change}, key, algorithm="RS256",
                          headers={"kid": "k1"})

    try:
        with TestClient(create_app(settings)) as c:
            who = me(c, sign()).json()
            assert (who["subject"], who["role"], who["area"]) == ("oidc:f3a1", "operator",
                                                                  "Hải Châu")
            assert me(c, sign(realm_access={"roles": ["offline_access"]})).json()["role"] \
                == "citizen"
            assert me(c, sign(aud="another-app")).status_code == 401
            assert me(c, sign(exp=now - 600)).status_code == 401
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def test_web_sessions_need_their_anti_forgery_token(sqlite_secured: Instance) -> None:
    c = sqlite_secured.client
    r = c.get("/ioc/dashboard", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/auth/login?next=/ioc/dashboard")
    assert "Đăng nhập" in c.get(r.headers["location"]).text
    r = c.post("/auth/login", data={"username": "lan", "password": "sai",
                                    "next": "/ioc/dashboard"})
    assert r.status_code == 401 and "Sai tên đăng nhập" in r.text
    assert "dothi_session" not in c.cookies
    r = c.post("/auth/login", data={"username": "lan", "password": PASSWORD,
                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/ioc/dashboard", follow_redirects=False).status_code == 200
    assert c.get("/auth/me").json()["subject"] == "user:lan"
    light = streetlight(5)
    assert c.post(E, json=light).status_code == 403  # no anti-forgery token
    assert c.post(E, json=light, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert c.post(E, json=light, headers={
        "X-CSRF-Token": c.cookies["dothi_csrf"]}).status_code == 201
    # Another site's page cannot sign someone in either.
    r = c.post("/auth/login", data={"username": "lan", "password": PASSWORD},
               headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    c.get("/auth/logout")
    assert c.get("/auth/me").json()["identified"] is False


def test_keys_made_and_revoked_on_the_command_line(sqlite_secured: Instance) -> None:
    s = sqlite_secured
    accounts = str(s.settings.auth_accounts)
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "add", "flood-gauges", "--role", "officer",
                               "--types", "Streetlight", "--accounts", accounts])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("dothi_") and key not in Path(accounts).read_text()
    bearer = {"Authorization": f"Bearer {key}"}
    assert s.client.post(E, json=streetlight(6), headers=bearer).status_code == 201
    listed = runner.invoke(cli, ["keys", "list", "--accounts", accounts])
    assert "flood-gauges" in listed.stdout and key not in listed.stdout
    assert runner.invoke(cli, ["keys", "revoke", "flood-gauges", "--accounts",
                               accounts]).exit_code == 0
    assert s.client.post(E, json=streetlight(7), headers=bearer).status_code == 401
    assert runner.invoke(cli, ["keys", "revoke", "flood-gauges", "--accounts",
                               accounts]).exit_code == 1
    user = runner.invoke(cli, ["users", "add", "hoa", "--role", "boss", "--password-stdin",
                               "--accounts", accounts], input="mot-mat-khau-dai\n")
    assert user.exit_code == 2 and "Unknown role" in user.output


def test_settings_show_no_secrets(tmp_path: Path) -> None:
    accounts_file(tmp_path / "accounts.yaml")
    settings = secured_settings(f"sqlite:///{tmp_path / 's.db'}", tmp_path,
                                official_keys="so-bi-mat", personal_data_key=SECRET)
    with TestClient(create_app(settings)) as c:
        assert c.get("/-/settings").status_code == 401
        r = c.get("/-/settings", headers={"Authorization": "Bearer so-bi-mat"})
        assert r.status_code == 200
        assert "so-bi-mat" not in r.text and SECRET not in r.text
        assert r.json()["official_keys"] == "***"


def test_password_guessing_is_slowed_down(sqlite_secured: Instance) -> None:
    """Each password tried costs a PBKDF2: one address gets 20 tries at once, then one
    every 3 s, whichever way it signs in."""
    c = sqlite_secured.client
    for _ in range(20):
        r = token(c, grant_type="password", username="lan", password="sai")
        assert r.json()["error"] == "invalid_grant"
    r = token(c, grant_type="password", username="lan", password=PASSWORD)
    assert (r.status_code, r.json()["error"]) == (429, "slow_down")
    assert 1 <= int(r.headers["retry-after"]) <= 3
    r = c.post("/auth/login", data={"username": "minh", "password": PASSWORD})
    assert r.status_code == 429 and "Too many tries" in r.text
    # API keys cost no such hashing and are not slowed down.
    r = token(c, grant_type="client_credentials", client_secret=sqlite_secured.keys["citizen"])
    assert r.status_code == 200
