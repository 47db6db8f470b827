"""Who a request is from: its credential to a principal, and the ASGI middleware that
runs each request with that principal's access (``dothi.auth.access``) and audit actor.

A request shows at most one credential:

- ``Authorization: Bearer <token>``: a JWT of the built-in issuer or of the city's own
  OpenID Connect provider (``dothi.auth.tokens``);
- ``Authorization: Bearer <API key>``: a device's or machine client's key
  (``dothi.auth.accounts``), or one of the officials' and assessors' keys of
  ``DOTHI_OFFICIAL_KEYS`` and ``DOTHI_ASSESSOR_KEYS`` (``official#N`` as a city
  administrator, ``assessor#N`` as an assessor);
- the web session cookie that signing in on ``/auth/login`` sets. A request that changes
  something with it must also carry the session's anti-forgery token in ``X-CSRF-Token``
  (the pages' scripts read it from the ``dothi_csrf`` cookie), so another site's page
  cannot act with a signed-in person's cookie.

No credential: the anonymous principal, with the role ``DOTHI_AUTH_ANONYMOUS``. A
credential that is not valid is refused with 401 before anything runs; an expired web
session is treated as no credential, so the open pages still open.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from http.cookies import SimpleCookie

import jwt
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from dothi.auth import access as auth
from dothi.auth.accounts import Accounts
from dothi.auth.tokens import WEB_AUDIENCE, External, Issuer, Verifier
from dothi.errors import DothiError, Forbidden, NotAuthenticated
from dothi.settings import Settings, listed
from dothi.store import audit

SESSION_COOKIE = "dothi_session"
CSRF_COOKIE = "dothi_csrf"
CSRF_HEADER = "x-csrf-token"
LOGIN_PATH = "/auth/login"
VERIFIED_MAX = 10_000  # tokens remembered once checked (the table is emptied when full)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CHALLENGE = (b"www-authenticate", b'Bearer realm="dothi"')


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.policy = auth.Policy.load(settings.auth_policy)
        self.anonymous = auth.Principal(
            "anonymous", self.policy.check_role(settings.auth_anonymous), identified=False)
        url = settings.auth_url or f"http://{settings.host}:{settings.port}"
        self.issuer = Issuer.from_settings(url, settings.auth_key, settings.auth_key_file,
                                           settings.auth_token_lifetime)
        external = None
        if settings.auth_issuer and settings.auth_jwks:
            external = External(settings.auth_issuer, settings.auth_jwks,
                                settings.auth_audience)
        self.verifier = Verifier(self.issuer, external, self.policy, settings.auth_role_claim)
        self.accounts = Accounts(settings.auth_accounts, self.policy)
        self.session_lifetime = settings.auth_session_lifetime
        self._verified: dict[str, tuple[float, dict, auth.Principal]] = {}
        self._legacy = [(key, auth.Principal(f"official#{n}", "city-admin"))
                        for n, key in enumerate(listed(settings.official_keys), 1)]
        self._legacy += [(key, auth.Principal(f"assessor#{n}", "assessor"))
                         for n, key in enumerate(listed(settings.assessor_keys), 1)]

    def access(self, principal: auth.Principal) -> auth.Access:
        return auth.Access(principal, self.policy)

    def identify(self, headers: Headers, method: str, path: str = "/") -> auth.Principal:
        header = headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise NotAuthenticated("Authorization takes Bearer <token or API key>")
            return self.bearer(value.strip())
        # Signing in again needs no earlier session (nor its anti-forgery token).
        session = self.session(headers) if path != LOGIN_PATH else None
        if session is None:
            return self.anonymous
        claims, principal = session
        if method not in SAFE_METHODS:
            given = headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given, self.issuer.csrf(claims)):
                raise Forbidden("A change made with a web session needs its anti-forgery "
                                f"token in {CSRF_HEADER} (the {CSRF_COOKIE} cookie)")
        return principal

    def bearer(self, value: str) -> auth.Principal:
        for key, principal in self._legacy:
            if hmac.compare_digest(value, key):
                return principal
        found = self.accounts.by_key(value)
        if found is not None:
            return found
        if value.count(".") == 2:
            return self._checked(value, lambda: ({}, self.verifier.principal(value)))[1]
        raise NotAuthenticated("That API key is not known here")

    def _checked(self, token: str, check: Callable[[], tuple[dict, auth.Principal]]
                 ) -> tuple[dict, auth.Principal]:
        """A token's claims and principal, checked once and then remembered until the
        token expires (a signature check costs more than the rest of a small request)."""
        now = time.time()
        found = self._verified.get(token)
        if found is not None and found[0] > now:
            return found[1], found[2]
        claims, principal = check()
        expires = claims.get("exp") or jwt.decode(
            token, options={"verify_signature": False}).get("exp", now)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (float(expires), claims, principal)
        return claims, principal

    def needs_thread(self, headers: Headers) -> bool:
        """Whether identifying the request may wait on the network (a city provider's
        keys to fetch): a bearer token not yet checked, with such a provider trusted."""
        if self.verifier.external is None:
            return False
        value = headers.get("authorization", "").partition(" ")[2].strip()
        return value.count(".") == 2 and value not in self._verified

    def session(self, headers: Headers) -> tuple[dict, auth.Principal] | None:
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no session
            return None
        morsel = cookies.get(SESSION_COOKIE)
        if morsel is None:
            return None
        def check() -> tuple[dict, auth.Principal]:
            claims = self.issuer.decode(morsel.value, WEB_AUDIENCE)
            return claims, self.verifier.principal_of(claims)

        try:
            return self._checked("session:" + morsel.value, check)
        except Exception:  # expired or not ours: no session
            return None


class Authenticate:
    """ASGI middleware: each HTTP request runs with the access of the principal its
    credential names (``dothi.auth.access.current``), and what it writes is logged as
    done by that principal from the client's address."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authn = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if self.authn.needs_thread(headers):
                # A token of another issuer may need its keys fetched: not on the loop.
                principal = await asyncio.to_thread(self.authn.identify, headers,
                                                    scope["method"], scope["path"])
            else:
                principal = self.authn.identify(headers, scope["method"], scope["path"])
        except DothiError as exc:
            await _refuse(send, exc)
            return
        who = principal.subject if principal.identified else "anonymous"
        with auth.acting(self.authn.access(principal)), \
                audit.acting(who, client_address(scope)):
            await self.app(scope, receive, send)


async def _refuse(send: Send, exc: DothiError) -> None:
    body = orjson.dumps(exc.to_problem())
    headers = [(b"content-type", b"application/problem+json"),
               (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append(CHALLENGE)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
