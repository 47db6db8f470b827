"""An instance that enforces sign-in (an anonymous request is the public), with one API key
per role and users who sign in with a password, for the tests of dothi.auth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, hash_password, key_hash
from dothi.settings import Settings

ROLES = ("public", "citizen", "reporter", "assessor", "officer", "operator", "city-admin",
         "system-admin")
PASSWORD = "mật-khẩu-thử-nghiệm"


@dataclass
class Instance:
    client: TestClient
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)  # account name -> key

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        """The headers of a request by ``who`` (a role, or another account's name)."""
        if who == "public":
            return dict(extra)
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}


def accounts_file(path: Path) -> dict[str, str]:
    """One key per role (named after it), two officers of different agencies and a key
    that may write streetlights only; users (fewer PBKDF2 rounds, for speed) with their
    roles."""
    accounts = Accounts(path, Policy.load())
    keys: dict[str, str] = {}

    def key(name: str, role: str, **scope: object) -> None:
        keys[name] = f"dothi_test-{name}"
        accounts.add(Account("keys", name, role, key_hash(keys[name]), **scope))  # type: ignore[arg-type]

    agencies = {"officer": "transport", "reporter": "48"}  # 48: Đà Nẵng, a province
    for role in ROLES[1:]:
        key(role, role, agency=agencies.get(role))
    key("drainage-officer", "officer", agency="drainage")
    key("ward-officer", "officer", area="Hải Châu")
    key("lights-vendor", "officer", types=("Streetlight",))
    key("tenant-a-admin", "city-admin", tenants=("urn:ngsi-ld:tenant:a",))
    for name, role in (("lan", "operator"), ("minh", "officer")):
        accounts.add(Account("users", name, role, hash_password(PASSWORD, 1000),
                             agency="transport" if role == "officer" else None))
    return keys


def secured_settings(database_url: str, folder: Path, **extra: object) -> Settings:
    # The tests' notification receivers listen on loopback.
    return Settings(database_url=database_url, context_fetch=False, auth_anonymous="public",
                    auth_accounts=folder / "accounts.yaml", auth_key_file=folder / "auth.key",
                    auth_url="http://testserver", auth_private_endpoints="127.0.0.0/8",
                    **extra)  # type: ignore[arg-type]


@pytest.fixture
def secured(database_url, tmp_path: Path) -> Iterator[Instance]:  # type: ignore[no-untyped-def]
    keys = accounts_file(tmp_path / "accounts.yaml")
    settings = secured_settings(database_url("test"), tmp_path)
    with TestClient(create_app(settings)) as client:
        yield Instance(client, settings, keys)
