"""The built-in issuer's users and the API keys of devices and machine clients, in one
YAML file (``DOTHI_AUTH_ACCOUNTS``, by default ``dothi-accounts.yaml``) that
``dothi users ...`` and ``dothi keys ...`` edit. Passwords are kept as salted PBKDF2
hashes and keys as SHA-256 hashes, never as given; the file is written 0600.

A city that has its own identity provider (OpenID Connect) needs no users here: its
tokens are trusted through ``DOTHI_AUTH_JWKS`` (``dothi.auth.tokens``). API keys stay
useful there too, for devices and integrations that cannot sign in.

Every server process reads the file again when it changes, so a key added or revoked on
the command line takes effect without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dothi.auth.access import Policy, Principal, type_iri

PBKDF2_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256 (2023)
KEY_PREFIX = "dothi_"
KINDS = ("users", "keys")


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "pbkdf2-sha256${}${}${}".format(
        iterations, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2-sha256":
            return False
        given = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                    int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(given, base64.b64decode(digest))


def key_hash(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    """A user (``kind`` "users") or an API key ("keys"), with the role and the scope it
    acts in; ``secret`` is the password's or the key's hash."""

    kind: str
    name: str
    role: str
    secret: str
    title: str | None = None
    tenants: tuple[str, ...] | None = None
    agency: str | None = None
    area: str | None = None
    types: tuple[str, ...] | None = None

    @property
    def subject(self) -> str:
        return ("user:" if self.kind == "users" else "key:") + self.name

    def principal(self) -> Principal:
        return Principal(self.subject, self.role,
                         frozenset(self.tenants) if self.tenants is not None else None,
                         self.agency, self.area,
                         frozenset(type_iri(t) for t in self.types)
                         if self.types is not None else None)

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role,
                               "password" if self.kind == "users" else "key": self.secret}
        for name in ("title", "agency", "area"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("tenants", "types"):
            if getattr(self, name) is not None:
                out[name] = list(getattr(self, name))
        return out


class Accounts:
    def __init__(self, path: Path, policy: Policy) -> None:
        self.path = path
        self.policy = policy
        self._lock = threading.Lock()
        self._seen: tuple[float, int] | None = None
        self._accounts: dict[tuple[str, str], Account] = {}
        self._by_key: dict[str, Account] = {}

    def _fresh(self) -> None:
        """Read the file again if it changed since it was last read."""
        try:
            stat = self.path.stat()
            seen: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen == self._seen and (seen is not None or not self._accounts):
                return
            accounts = self._read() if seen is not None else {}
            self._accounts = accounts
            self._by_key = {a.secret: a for a in accounts.values() if a.kind == "keys"}
            self._seen = seen

    def _read(self) -> dict[tuple[str, str], Account]:
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        accounts = {}
        for kind in KINDS:
            for name, spec in (data.get(kind) or {}).items():
                secret = spec.get("password" if kind == "users" else "key")
                if not isinstance(secret, str):
                    raise ValueError(f"{self.path}: {kind} {name} has no hashed "
                                     f"{'password' if kind == 'users' else 'key'}")
                accounts[(kind, str(name))] = Account(
                    kind, str(name), self.policy.check_role(str(spec.get("role"))), secret,
                    spec.get("title"), _names(spec.get("tenants")), spec.get("agency"),
                    spec.get("area"), _names(spec.get("types")))
        return accounts

    def all(self) -> list[Account]:
        self._fresh()
        return sorted(self._accounts.values(), key=lambda a: (a.kind, a.name))

    def user(self, name: str, password: str) -> Principal | None:
        """The user's principal if the password is theirs."""
        self._fresh()
        account = self._accounts.get(("users", name))
        if account is None:
            # As slow as a wrong password, so the answer's time does not say who exists.
            hashlib.pbkdf2_hmac("sha256", password.encode(), b"0" * 16, PBKDF2_ITERATIONS)
            return None
        return account.principal() if password_matches(password, account.secret) else None

    def by_key(self, key: str) -> Principal | None:
        if not key.startswith(KEY_PREFIX):
            return None
        self._fresh()
        account = self._by_key.get(key_hash(key))
        return account.principal() if account is not None else None

    def add(self, account: Account) -> None:
        self.policy.check_role(account.role)
        self._fresh()
        self._accounts[(account.kind, account.name)] = account
        self._write()

    def remove(self, kind: str, name: str) -> bool:
        self._fresh()
        found = self._accounts.pop((kind, name), None)
        if found is not None:
            self._write()
        return found is not None

    def _write(self) -> None:
        data = {kind: {a.name: a.to_yaml() for a in self._accounts.values() if a.kind == kind}
                for kind in KINDS}
        text = ("# dothi's users and API keys: edit with `dothi users` and `dothi keys`.\n"
                "# Passwords and keys are kept as hashes only.\n"
                + yaml.safe_dump(data, allow_unicode=True, sort_keys=True))
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, self.path)
        self._seen = None  # read back on next use


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)

