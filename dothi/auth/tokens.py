"""Bearer tokens (JWT, RFC 7519): those of the built-in issuer, and those of a city's own
OpenID Connect provider.

The built-in issuer signs with an ECDSA P-256 key (ES256) kept in ``DOTHI_AUTH_KEY`` (PEM)
or in a 0600 key file made on first start (``DOTHI_AUTH_KEY_FILE``); every process of an
instance must share it. It publishes its public key as a JWK Set (``/auth/jwks.json``) and
an OpenID discovery document, so other instances and services can check its tokens too.
Its tokens are short-lived (``DOTHI_AUTH_TOKEN_LIFETIME``): a revoked user or key stops
working when the tokens already handed out expire.

A city's provider (Keycloak, an e-government SSO...) is trusted with ``DOTHI_AUTH_ISSUER``
(its ``iss``), ``DOTHI_AUTH_JWKS`` (the URL or file of its keys, so an offline instance can
hold them in a file) and ``DOTHI_AUTH_AUDIENCE``. Its tokens say the role in the claim
``DOTHI_AUTH_ROLE_CLAIM`` (a dotted path such as ``realm_access.roles``; a list names the
first role the policy knows, in the policy's order) and may narrow it with the claims
``dothi_tenants``, ``dothi_agency``, ``dothi_area`` and ``dothi_types``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dothi.auth.access import Policy, Principal, type_iri
from dothi.errors import NotAuthenticated

ALGORITHM = "ES256"
AUDIENCE = "dothi"
WEB_AUDIENCE = "dothi-web"  # session cookies: never accepted as a bearer token
LEEWAY_S = 30


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, url: str, key: ec.EllipticCurvePrivateKey, lifetime_s: int) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self.lifetime_s = lifetime_s
        numbers = key.public_key().public_numbers()
        self._public = {"kty": "EC", "crv": "P-256",
                        "x": _b64(numbers.x.to_bytes(32, "big")),
                        "y": _b64(numbers.y.to_bytes(32, "big"))}
        # RFC 7638 thumbprint: the members in order, no spaces.
        self.kid = _b64(hashlib.sha256(json.dumps(
            self._public, sort_keys=True, separators=(",", ":")).encode()).digest())
        der = key.private_bytes(serialization.Encoding.DER,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        self._csrf_key = hashlib.sha256(b"dothi-csrf\x00" + der).digest()

    @classmethod
    def from_settings(cls, url: str, key_pem: str | None, key_file: Path,
                      lifetime_s: int) -> Issuer:
        if key_pem:
            pem = key_pem.encode()
        elif key_file.exists():
            pem = key_file.read_bytes()
        else:
            made = ec.generate_private_key(ec.SECP256R1())
            pem = made.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("The issuer's key must be an EC P-256 private key (PEM)")
        return cls(url, key, lifetime_s)

    def issue(self, principal: Principal, audience: str = AUDIENCE,
              lifetime_s: int | None = None) -> tuple[str, int]:
        """A signed token for ``principal``, and how many seconds it lasts."""
        lifetime = lifetime_s or self.lifetime_s
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": principal.subject, "aud": audience,
                                  "iat": now, "nbf": now, "exp": now + lifetime,
                                  "jti": secrets.token_urlsafe(16),
                                  "dothi_role": principal.role}
        for name in ("tenants", "types"):
            if getattr(principal, name) is not None:
                claims["dothi_" + name] = sorted(getattr(principal, name))
        for name in ("agency", "area"):
            if getattr(principal, name) is not None:
                claims["dothi_" + name] = getattr(principal, name)
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, lifetime

    def decode(self, token: str, audience: str = AUDIENCE) -> dict[str, Any]:
        return jwt.decode(token, self._key.public_key(), algorithms=[ALGORITHM],
                          audience=audience, issuer=self.url, leeway=LEEWAY_S,
                          options={"require": ["exp", "iat", "sub", "jti"]})

    def csrf(self, session: dict[str, Any]) -> str:
        """The anti-forgery token of a web session: the page's scripts send it back in a
        header, which another site's page cannot read or forge."""
        return _b64(hmac.new(self._csrf_key, str(session["jti"]).encode(),
                             hashlib.sha256).digest())

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}


class External:
    """A city's own OpenID Connect provider, whose tokens this instance trusts."""

    def __init__(self, issuer: str, jwks: str, audience: str | None) -> None:
        self.issuer = issuer
        self.audience = audience
        if jwks.startswith(("http://", "https://")):
            self._client: jwt.PyJWKClient | None = jwt.PyJWKClient(jwks, lifespan=600,
                                                                   timeout=5)
            self._set = None
        else:
            self._client = None
            self._set = jwt.PyJWKSet.from_json(Path(jwks).read_text(encoding="utf-8"))

    def decode(self, token: str) -> dict[str, Any]:
        if self._client is not None:
            key = self._client.get_signing_key_from_jwt(token)
        else:
            assert self._set is not None
            kid = jwt.get_unverified_header(token).get("kid")
            found = [k for k in self._set.keys if kid is None or k.key_id == kid]
            if not found:
                raise jwt.InvalidKeyError(f"No key {kid} in the issuer's key set")
            key = found[0]
        return jwt.decode(token, key, algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                          audience=self.audience, issuer=self.issuer, leeway=LEEWAY_S,
                          options={"require": ["exp", "sub"],
                                   "verify_aud": self.audience is not None})


class Verifier:
    """Bearer tokens to principals."""

    def __init__(self, own: Issuer, external: External | None, policy: Policy,
                 role_claim: str) -> None:
        self.own = own
        self.external = external
        self.policy = policy
        self.role_claim = role_claim

    def principal(self, token: str) -> Principal:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            if issuer == self.own.url:
                return self.principal_of(self.own.decode(token))
            if self.external is not None and issuer == self.external.issuer:
                claims = self.external.decode(token)
                return _principal(claims, "oidc:" + str(claims["sub"]), self._role(claims))
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise NotAuthenticated(f"The bearer token is not valid: {exc}") from None
        raise NotAuthenticated(f"Tokens of issuer {issuer!r} are not trusted here")

    def principal_of(self, claims: dict[str, Any]) -> Principal:
        """The principal of a token the built-in issuer signed (checked already)."""
        return _principal(claims, str(claims["sub"]),
                          self.policy.check_role(str(claims["dothi_role"])))

    def _role(self, claims: dict[str, Any]) -> str:
        value: Any = claims
        for part in self.role_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        named = [value] if isinstance(value, str) else list(value or [])
        for role in self.policy.roles:  # the policy's order: the strongest first
            if role in named:
                return role
        return "citizen" if "citizen" in self.policy.roles else "public"


def _principal(claims: dict[str, Any], subject: str, role: str) -> Principal:
    def names(name: str) -> frozenset[str] | None:
        value = claims.get(name)
        if value is None:
            return None
        return frozenset([value] if isinstance(value, str) else map(str, value))

    types = names("dothi_types")
    return Principal(subject, role, names("dothi_tenants"), claims.get("dothi_agency"),
                     claims.get("dothi_area"),
                     frozenset(type_iri(t) for t in types) if types is not None else None)
