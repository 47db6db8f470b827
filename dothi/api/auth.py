"""Signing in (``dothi.auth``): the built-in issuer's OAuth 2 token endpoint and OpenID
discovery, its keys, the web pages' sign-in form and session, and who is signed in."""

from __future__ import annotations

import html
import math
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import PROBLEMS, Router, json_response
from dothi.api.ratelimit import Buckets
from dothi.auth import access as auth
from dothi.auth.signin import CSRF_COOKIE, SESSION_COOKIE, Authenticator
from dothi.auth.tokens import WEB_AUDIENCE

router = Router(tags=["Sign-in"])
GUESSES_BURST = 20
GUESSES_EVERY_S = 3.0
FORM = "application/x-www-form-urlencoded"
MAX_FORM = 4096
OAUTH_ERROR = {"type": "object", "properties": {
    "error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"]}
TOKEN = {"type": "object", "properties": {
    "access_token": {"type": "string"}, "token_type": {"type": "string"},
    "expires_in": {"type": "integer"}}, "required": ["access_token", "token_type"]}


def _authn(request: Request) -> Authenticator:
    return request.app.state.authenticator  # type: ignore[no-any-return]


async def _form(request: Request) -> dict[str, str] | None:
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM:
        return None
    raw = await request.body()
    if len(raw) > MAX_FORM:
        return None
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


def _guess(request: Request, username: str) -> float:
    """A password tried: each costs the server a PBKDF2 (a third of a second of a core), so
    one address, and one user name from anywhere, get GUESSES_BURST at once and then one
    every GUESSES_EVERY_S. 0, or the seconds to wait."""
    guesses: Buckets = request.app.state.guesses
    now = time.monotonic()
    client = request.client.host if request.client else "unknown"
    return max(guesses.take("address:" + client, now), guesses.take("user:" + username, now))


def _oauth_error(status: int, error: str, description: str,
                 extra: dict[str, str] | None = None) -> Response:
    headers = {"Cache-Control": "no-store", **(extra or {})}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="dothi"'
    return Response(orjson.dumps({"error": error, "error_description": description}),
                    status_code=status, media_type="application/json", headers=headers)


@router.get("/.well-known/openid-configuration",
            summary="OpenID Connect discovery of the built-in issuer")
async def discovery(request: Request) -> Response:
    url = _authn(request).issuer.url
    return json_response({
        "issuer": url, "jwks_uri": f"{url}/auth/jwks.json",
        "token_endpoint": f"{url}/auth/token",
        "grant_types_supported": ["password", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "response_types_supported": ["token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "dothi_role",
                             "dothi_tenants", "dothi_agency", "dothi_area", "dothi_types"]})


@router.get("/auth/jwks.json", summary="The built-in issuer's public keys (JWK Set)")
async def jwks(request: Request) -> Response:
    return json_response(_authn(request).issuer.jwks())


@router.post("/auth/token", summary="A bearer token, for a user's password or an API key "
             "(OAuth 2 password and client_credentials grants, form-encoded)",
             openapi_extra={"requestBody": {"required": True, "content": {FORM: {"schema": {
                 "type": "object", "properties": {
                     "grant_type": {"type": "string",
                                    "enum": ["password", "client_credentials"]},
                     "username": {"type": "string"}, "password": {"type": "string"},
                     "client_id": {"type": "string"}, "client_secret": {"type": "string"}},
                 "required": ["grant_type"]}}}}},
             responses={200: {"content": {"application/json": {"schema": TOKEN}}},
                        400: {"description": "Not a valid request (OAuth 2 error)",
                              "content": {"application/json": {"schema": OAUTH_ERROR},
                                          **PROBLEMS[400]["content"]}},
                        401: {"description": "Unknown user, password or key (OAuth 2 error)",
                              "content": {"application/json": {"schema": OAUTH_ERROR},
                                          **PROBLEMS[401]["content"]}},
                        429: {"description": "Too many passwords tried (OAuth 2 error)",
                              "content": {"application/json": {"schema": OAUTH_ERROR},
                                          **PROBLEMS[429]["content"]}}})
async def token(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _oauth_error(400, "invalid_request", f"The token endpoint takes a {FORM} "
                            f"body of at most {MAX_FORM} bytes")
    authn = _authn(request)
    grant = form.get("grant_type")
    principal: auth.Principal | None
    if grant == "password":
        if not form.get("username") or not form.get("password"):
            return _oauth_error(400, "invalid_request", "username and password are needed")
        wait = _guess(request, form["username"])
        if wait:
            return _oauth_error(429, "slow_down", f"Too many passwords tried: wait "
                                f"{math.ceil(wait)} s", {"Retry-After": str(math.ceil(wait))})
        principal = await run_in_threadpool(authn.accounts.user, form["username"],
                                            form["password"])
        if principal is None:
            return _oauth_error(400, "invalid_grant", "Unknown user or wrong password")
    elif grant == "client_credentials":
        principal = authn.accounts.by_key(form.get("client_secret", ""))
        if principal is None:
            return _oauth_error(401, "invalid_client", "client_secret is not a known API key")
    else:
        return _oauth_error(400, "unsupported_grant_type",
                            "grant_type is password or client_credentials")
    issued, lifetime = authn.issuer.issue(principal)
    return Response(orjson.dumps({"access_token": issued, "token_type": "Bearer",
                                  "expires_in": lifetime}),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/auth/me", summary="Who the request is from: role, actions and scope")
async def me(request: Request) -> Response:
    access = auth.current()
    principal = access.principal
    policy = _authn(request).policy
    role = policy.role(principal.role)
    body: dict[str, Any] = {**principal.to_doc(), "identified": principal.identified,
                            "title": role.title, "may": sorted(role.may)}
    return json_response(body, headers={"Cache-Control": "no-store"})


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another site's)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/auth/login", include_in_schema=False)
async def login_page(request: Request) -> HTMLResponse:
    return _login_html(_next(request.query_params.get("next")), None, 200)


@router.post("/auth/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await _form(request) or {}
    target = _next(form.get("next"))
    origin = request.headers.get("origin")
    if origin is not None and origin != str(request.base_url).rstrip("/"):
        return _login_html(target, "Yêu cầu từ trang khác / A request from another site", 403)
    authn = _authn(request)
    wait = _guess(request, form.get("username", ""))
    if wait:
        return _login_html(target, f"Thử quá nhiều lần, hãy đợi {math.ceil(wait)} giây / Too "
                           f"many tries: wait {math.ceil(wait)} s", 429)
    principal = await run_in_threadpool(authn.accounts.user, form.get("username", ""),
                                        form.get("password", ""))
    if principal is None:
        return _login_html(target, "Sai tên đăng nhập hoặc mật khẩu / Wrong user name or "
                           "password", 401)
    session, lifetime = authn.issuer.issue(principal, WEB_AUDIENCE, authn.session_lifetime)
    claims = authn.issuer.decode(session, WEB_AUDIENCE)
    response = RedirectResponse(target, 303)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, session, max_age=lifetime, httponly=True,
                        samesite="lax", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, authn.issuer.csrf(claims), max_age=lifetime,
                        httponly=False, samesite="strict", secure=secure, path="/")
    return response


@router.get("/auth/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def _login_html(target: str, error: str | None, status: int) -> HTMLResponse:
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(LOGIN.format(next=html.escape(target), error=problem),
                        status_code=status, headers={"Cache-Control": "no-store"})


LOGIN = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Đăng nhập / Sign in — dothi</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem;
color:#1d2733}} label{{display:block;margin:.8rem 0 .2rem}} .en{{color:#5b6775}}
input{{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}}
button{{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem}} .error{{color:#b3261e}}
</style></head><body>
<h1>Đăng nhập <span class="en">/ Sign in</span></h1>
{error}
<form method="post" action="/auth/login">
<input type="hidden" name="next" value="{next}">
<label for="username">Tên đăng nhập <span class="en">/ User name</span></label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Mật khẩu <span class="en">/ Password</span></label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Đăng nhập / Sign in</button>
</form>
</body></html>"""
