"""``dothi users ...`` and ``dothi keys ...``: the built-in issuer's users and the API keys
of devices and machine clients (``dothi.auth.accounts``), edited on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, hash_password, key_hash, new_key
from dothi.settings import Settings

console = Console(stderr=True)
users_app = typer.Typer(help="The built-in sign-in's users (DOTHI_AUTH_ACCOUNTS)",
                        no_args_is_help=True)
keys_app = typer.Typer(help="API keys of devices and machine clients (DOTHI_AUTH_ACCOUNTS)",
                       no_args_is_help=True)

AccountsOption = typer.Option(None, "--accounts", help="The accounts file (default: "
                              "DOTHI_AUTH_ACCOUNTS, dothi-accounts.yaml)")
RoleOption = typer.Option(..., help="system-admin, city-admin, operator, officer, assessor, "
                          "citizen or public (or a role of DOTHI_AUTH_POLICY)")
TitleOption = typer.Option(None, help="A full name or description")
TenantOption = typer.Option(None, "--tenant", help="Only this tenant (repeat for several; "
                            "default: every tenant)")
AgencyOption = typer.Option(None, help="Only the internal entities (incidents...) of this "
                            "agency")
AreaOption = typer.Option(None, help="Only the internal entities of this area (ward)")
TypesOption = typer.Option(None, help="Only writes of these entity types (comma separated)")


def _accounts(path: Path | None) -> Accounts:
    settings = Settings()
    return Accounts(path or settings.auth_accounts, Policy.load(settings.auth_policy))


def _account(kind: str, name: str, role: str, secret: str, title: str | None,
             tenant: list[str] | None, agency: str | None, area: str | None,
             types: str | None) -> Account:
    return Account(kind, name, role, secret, title, tuple(tenant) if tenant else None,
                   agency, area,
                   tuple(t.strip() for t in types.split(",") if t.strip()) if types else None)


def _add(accounts: Accounts, account: Account) -> None:
    try:
        accounts.add(account)
    except ValueError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None


def _remove(path: Path | None, kind: str, name: str, what: str, done: str) -> None:
    if not _accounts(path).remove(kind, name):
        console.print(f"{what}: there is none", style="red", markup=False)
        raise typer.Exit(1)
    console.print(f"{what} {done}.", markup=False)


def _table(accounts: Accounts, kind: str, title: str) -> None:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True)
    for column in ("role", "title", "tenants", "agency", "area", "types"):
        table.add_column(column, overflow="fold")
    for a in accounts.all():
        if a.kind == kind:
            table.add_row(a.name, a.role, a.title or "", ", ".join(a.tenants or ["every"]),
                          a.agency or "", a.area or "", ", ".join(a.types or ["any"]))
    Console().print(table)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="The user name they sign in with"),
    role: str = RoleOption, title: str | None = TitleOption,
    tenant: list[str] | None = TenantOption, agency: str | None = AgencyOption,
    area: str | None = AreaOption, types: str | None = TypesOption,
    password_stdin: bool = typer.Option(False, help="Read the password from standard input "
                                        "instead of asking"),
    accounts: Path | None = AccountsOption,
) -> None:
    """Add a user (or set an existing user's role, scope and password)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        console.print("A password has at least 10 characters", style="red")
        raise typer.Exit(2)
    held = _accounts(accounts)
    _add(held, _account("users", name, role, hash_password(password), title, tenant, agency,
                        area, types))
    console.print(f"User {name} ({role}) saved in {held.path}.", markup=False)


@users_app.command("list")
def users_list(accounts: Path | None = AccountsOption) -> None:
    """The users, as a table (never their passwords)."""
    _table(_accounts(accounts), "users", "Users")


@users_app.command("remove")
def users_remove(name: str = typer.Argument(...),
                 accounts: Path | None = AccountsOption) -> None:
    """Remove a user: they can no longer sign in (tokens already given expire by
    themselves, within DOTHI_AUTH_TOKEN_LIFETIME)."""
    _remove(accounts, "users", name, f"User {name}", "removed")


@keys_app.command("add")
def keys_add(
    name: str = typer.Argument(..., help="Who or what holds the key (a device, a vendor)"),
    role: str = RoleOption, title: str | None = TitleOption,
    tenant: list[str] | None = TenantOption, agency: str | None = AgencyOption,
    area: str | None = AreaOption, types: str | None = TypesOption,
    accounts: Path | None = AccountsOption,
) -> None:
    """Make a new API key and print it, once: only its hash is kept. The holder sends it
    as Authorization: Bearer <key>, or trades it at /auth/token for a token."""
    key = new_key()
    held = _accounts(accounts)
    _add(held, _account("keys", name, role, key_hash(key), title, tenant, agency, area,
                        types))
    console.print(f"API key {name} ({role}) saved in {held.path}. It is shown once:",
                  markup=False)
    print(key)


@keys_app.command("list")
def keys_list(accounts: Path | None = AccountsOption) -> None:
    """The API keys' holders, as a table (never the keys)."""
    _table(_accounts(accounts), "keys", "API keys")


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(...),
                accounts: Path | None = AccountsOption) -> None:
    """Revoke an API key: refused from the next request on, in every server process."""
    _remove(accounts, "keys", name, f"API key {name}", "revoked")
