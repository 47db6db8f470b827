"""``dothi program ...``: the national programme on the command line. The national
instance loads its tasks, issues the annual request, checks what is late and exports the
national report; a province's instance sends its report and indicator values up
(``send``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table

from dothi.errors import DothiError
from dothi.settings import for_database

console = Console(stderr=True)
program_app = typer.Typer(help="The national smart-city programme: tasks, plans, reports",
                          no_args_is_help=True)
DbOption = typer.Option(None, "--db", help="Database URL or SQLite file path (DOTHI_DATABASE_URL)")
TenantOption = typer.Option("urn:ngsi-ld:tenant:default", "--tenant", help="NGSILD-Tenant")
SYSTEM = "cli"


@contextmanager
def _programme(db: str | None) -> Iterator[Any]:
    from dothi.app import build_broker
    from dothi.gis.assessment import Assessor, Rules
    from dothi.kpi.catalogue import Catalogue
    from dothi.kpi.compute import Computer
    from dothi.kpi.framework import Framework
    from dothi.program.desk import Programme

    settings = for_database(db)
    catalogue = Catalogue.load(settings.kpi_methods)
    targets = Framework.load(settings.kpi_framework, catalogue).targets()
    broker = build_broker(settings)
    try:
        assessor = Assessor(broker, Rules.load(settings.planning_assessment))
        yield Programme(broker, Computer(broker, catalogue, assessor, targets),
                        settings.program_templates)
    finally:
        broker.store.close()


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(message, style="red", markup=False, soft_wrap=True)
    return typer.Exit(code)


@program_app.command("load-tasks")
def load_tasks(
    file: Path | None = typer.Argument(None, help="A file in the Decision 950 appendix's "
                                       "structure (default: the shipped decision-950.yaml)"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Load the national programme's tasks (the appendix of Decision 950: seven groups of
    priority tasks) into this instance; tasks loaded before keep their progress."""
    from dothi.program.tasks import DECISION_950

    with _programme(db) as desk:
        try:
            loaded = desk.tasks.load(tenant, file or DECISION_950)
        except DothiError as exc:
            raise _fail(exc.detail) from None
    table = Table(title=f"{len(loaded)} tasks loaded")
    for column in ("code", "task", "lead agency", "deadline", "flag"):
        table.add_column(column)
    for t in loaded:
        table.add_row(t["code"], t["name"]["vi"], t["leadAgency"], t["deadline"], t["flag"])
    Console().print(table)


@program_app.command("calendar")
def calendar(
    year: int = typer.Option(..., help="The year reported on"),
    units: str | None = typer.Option(None, help="Units asked, comma separated (default: "
                                     "the 34 provinces)"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Issue the annual report request of a year, due on the template's day."""
    from dothi.settings import listed

    with _programme(db) as desk:
        try:
            made = desk.reporting.calendar(tenant, year, listed(units) if units else None,
                                           SYSTEM)
        except DothiError as exc:
            raise _fail(exc.detail) from None
    console.print(f"{made['key']}: {made['title']['vi']}, due {made['dueDate']}, "
                  f"{len(made['units'])} units", markup=False, soft_wrap=True)


@program_app.command("check")
def check(
    on: str | None = typer.Option(None, help="The day to check as (YYYY-MM-DD; default "
                                  "today)"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Flag overdue and at-risk tasks and overdue reports, and write the week's digest if
    it is not written yet."""
    with _programme(db) as desk:
        try:
            done = desk.check(tenant, date.fromisoformat(on) if on else None)
        except (DothiError, ValueError) as exc:
            raise _fail(getattr(exc, "detail", str(exc))) from None
    console.print(f"{done['tasks']} tasks checked, {len(done['flagged'])} flags changed",
                  markup=False, soft_wrap=True)
    for tid, flag in sorted(done["flagged"].items()):
        console.print(f"  {tid}: {flag}", markup=False, soft_wrap=True)
    for key, overdue in done["overdueReports"].items():
        console.print(f"  {key}: overdue {', '.join(overdue) or 'none'}", markup=False,
                      soft_wrap=True)
    if done["digest"]:
        console.print(f"digest of {done['digest']} written", markup=False, soft_wrap=True)


@program_app.command("digest")
def digest(
    lang: str = typer.Option("vi", help="vi or en"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Print this week's digest: overdue and at-risk tasks, what is due soon, reports."""
    if lang not in ("vi", "en"):
        raise _fail("--lang is vi or en")
    with _programme(db) as desk:
        print(desk.digest(tenant)["text"][lang])


@program_app.command("export")
def export(
    request: str = typer.Option(..., help="The request's key (annual-2026)"),
    out: Path = typer.Option(..., help="The DOCX document to write"),
    lang: str = typer.Option("vi", help="vi or en"),
    on: str | None = typer.Option(None, help="As of this day (YYYY-MM-DD; default today)"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Write the consolidated national report of a request as a DOCX document."""
    from dothi.program.consolidation import consolidate, national_docx

    if lang not in ("vi", "en"):
        raise _fail("--lang is vi or en")
    with _programme(db) as desk:
        try:
            national = consolidate(desk.reporting, tenant, request,
                                   date.fromisoformat(on) if on else None)
        except (DothiError, ValueError) as exc:
            raise _fail(getattr(exc, "detail", str(exc))) from None
    out.write_bytes(national_docx(national, lang))
    c = national["counts"]
    console.print(f"{request}: {c['asked']} asked, {c['onTime']} on time, {c['late']} late, "
                  f"{c['overdue']} overdue; written to {out}", markup=False, soft_wrap=True)


@program_app.command("send")
def send(
    request: str = typer.Option(..., help="The national request's key (annual-2026)"),
    unit: str = typer.Option(..., help="This province's code (48) or ministry's name"),
    city: str = typer.Option(..., help="This instance's city, as its indicator values "
                             "name it (danang)"),
    national: str = typer.Option(..., envvar="DOTHI_PROGRAM_NATIONAL_URL",
                                 help="The national instance's URL"),
    api_key: str = typer.Option(..., envvar="DOTHI_PROGRAM_NATIONAL_KEY",
                                help="The key the national instance gave this unit"),
    sections: Path | None = typer.Option(None, help="A YAML or JSON file: each text "
                                         "section's key and text (else this instance's "
                                         "own draft, where it holds the same request)"),
    db: str | None = DbOption, tenant: str = TenantOption,
) -> None:
    """Send this unit's report to the national instance and submit it: the texts (of
    this instance's draft, or the file), and this instance's indicator values of the
    period for the indicators the report asks for, with their provenance."""
    from dothi.kpi.compute import city_values
    from dothi.program.reports import report_id

    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=national.rstrip("/"), headers=headers, timeout=30) as http:
        asked = http.get(f"/program/requests/{request}")
        if asked.status_code != 200:
            raise _fail(f"the national instance: {_detail(asked)}", 1)
        template = asked.json()["templateSections"]
        period = asked.json()["period"]
        codes = [c for s in template["sections"] if s["kind"] == "indicators"
                 for c in s["indicators"]]
        with _programme(db) as desk:
            local = desk.reporting.reports.get(tenant, report_id(request, unit)) or {}
            values = city_values(desk.broker, tenant, city)
        texts = _read_sections(sections) if sections else local.get("sections") or {}
        indicators: dict[str, Any] = {
            code: {"value": values[code][period]["value"],
                   "provenance": values[code][period]["provenance"]}
            for code in codes if period in values.get(code, {})}
        indicators.update(local.get("indicators") or {})
        draft = http.put(f"/program/reports/{request}/{unit}",
                         json={"sections": texts, "indicators": indicators})
        if draft.status_code != 200:
            raise _fail(f"the draft was refused: {_detail(draft)}", 1)
        submitted = http.post(f"/program/reports/{request}/{unit}/submit")
        if submitted.status_code != 200:
            raise _fail(f"the report was not submitted: {_detail(submitted)}", 1)
    report = submitted.json()
    console.print(f"{unit}: {request} submitted (version {report['version']}), "
                  f"{len(indicators)} indicator values, "
                  + (f"late by {report['lateDays']} days" if report["late"] else "on time"),
                  markup=False, soft_wrap=True)


def _read_sections(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(f"{path}: each section's key and its text")
    return {str(k): str(v) for k, v in data.items()}


def _detail(response: httpx.Response) -> str:
    try:
        return f"{response.status_code} {json.loads(response.text).get('detail')}"
    except (ValueError, AttributeError):
        return f"{response.status_code} {response.text[:300]}"
