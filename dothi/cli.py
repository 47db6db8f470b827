"""The ``dothi`` command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dothi.auth.commands import keys_app, users_app
from dothi.program.commands import program_app
from dothi.settings import Settings, for_database

app = typer.Typer(help="dothi: open smart-city platform (NGSI-LD broker and services)",
                  no_args_is_help=True)
contexts_app = typer.Typer(help="Manage the @context cache", no_args_is_help=True)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
history_app = typer.Typer(help="Attribute history (temporal API)", no_args_is_help=True)
app.add_typer(contexts_app, name="contexts")
app.add_typer(db_app, name="db")
app.add_typer(history_app, name="history")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(program_app, name="program")
admin_app = typer.Typer(help="Vietnam's administrative units (34 provinces, 3,321 wards)",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin-units")
console = Console(stderr=True)


@app.callback()
def _as_user() -> None:
    """What a command writes is logged in the audit log as done by the system user who
    ran it, from this machine (a server's own work is logged as the system's)."""
    import getpass

    from dothi.store import audit

    audit.set_actor(f"cli:{getpass.getuser()}", "local")

# A stopping server lets requests in flight finish for this long, then cuts what is still
# open: the dashboards' live streams never end by themselves (their pages reconnect, to
# another process if there is one).
SHUTDOWN_GRACE_S = 5

DbOption = typer.Option(None, "--db", help="Database URL or SQLite file path (DOTHI_DATABASE_URL)")


@app.command()
def serve(
    db: str | None = DbOption,
    host: str | None = typer.Option(None, help="Bind address (DOTHI_HOST, default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port, 0 for any free one (DOTHI_PORT, 1026)"),
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes sharing the database (DOTHI_WORKERS, default 1)"),
    anonymous: str | None = typer.Option(
        None, help="The role of a request without a credential (DOTHI_AUTH_ANONYMOUS, "
        "default public; system-admin opens everything, for a lab or a conformance suite)"),
) -> None:
    """Serve the NGSI-LD API and the landing page."""
    import os
    import socket

    import uvicorn

    from dothi.store import audit

    audit.set_actor("system", "local")  # requests name their own actors
    settings = for_database(db, host=host, port=port, workers=workers, auth_anonymous=anonymous)
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    # Listening before announcing: a client that read the line below is queued, not refused.
    sock.listen(2048)
    bound = sock.getsockname()[1]
    # Tests and scripts read this line to learn the port chosen for --port 0.
    print(f"dothi serving on http://{settings.host}:{bound} ({settings.database_url}, "
          f"{settings.workers} worker{'s' if settings.workers > 1 else ''}, requests without "
          f"a credential: {settings.auth_anonymous})", flush=True)
    if settings.workers == 1:
        from dothi.app import create_app

        config = uvicorn.Config(create_app(settings, serving=True), log_level="warning",
                                access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    # Workers are fresh processes that build their app from the environment.
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            os.environ[f"DOTHI_{name.upper()}"] = str(value)
    config = uvicorn.Config("dothi.app:app_from_env", factory=True, workers=settings.workers,
                            log_level="warning", access_log=False,
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    Multiprocess(config, sockets=[sock]).run()


def _read_entities(path: Path) -> list[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


@app.command()
def load(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                       help="NGSI-LD JSON / JSON-LD files (arrays or objects)"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
    batch: int = typer.Option(1000, min=1, help="Entities per transaction"),
) -> None:
    """Upsert entities from files into the store, with a progress bar."""
    from dothi.app import build_broker

    settings = for_database(db)
    broker = build_broker(settings)
    entities: list[Any] = []
    for path in files:
        entities.extend(_read_entities(path))
    failed = 0
    with Progress(
        TextColumn("[bold]Loading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("load", total=len(entities))
        for start in range(0, len(entities), batch):
            chunk = entities[start : start + batch]
            result = broker.batch(
                tenant, "upsert", chunk,
                lambda item: broker.resolver.active(
                    item.get("@context") if isinstance(item, dict) else None
                ),
            )
            for eid, err in result.errors:
                failed += 1
                console.print(f"[red]{eid}: {err.detail}")
            progress.advance(task, len(chunk))
    broker.store.analyze()
    broker.store.close()
    console.print(f"Loaded {len(entities) - failed} entities, {failed} failed.")
    if failed:
        raise typer.Exit(1)


@app.command("import")
def import_layer(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="GeoJSON, Shapefile (.shp or .zip), GeoPackage, KML or CSV"),
    layer: str | None = typer.Option(None, help="Layer name (default: the file's name)"),
    entity_type: str = typer.Option("GisFeature", "--type",
                                    help="NGSI-LD type of the features (e.g. PlanningZone)"),
    crs: str | None = typer.Option(
        None, help="CRS of the coordinates when the file does not say, or says wrong: e.g. "
        "EPSG:5899 (VN-2000 TM-3 107°45'), EPSG:3405 (VN-2000 UTM 48N)"),
    repair: bool = typer.Option(False, "--repair/--no-repair",
                                help="Make invalid geometries valid (flagged) instead of "
                                "refusing them"),
    source_layer: str | None = typer.Option(None, help="Layer inside a GeoPackage or KML"),
    title: str | None = typer.Option(None, help="Title of the layer"),
    field: list[str] = typer.Option([], help="SRC=NAME: the file's field SRC becomes attribute "
                                    "NAME (e.g. MA_O=zoneCode); repeatable"),
    datetime_field: str | None = typer.Option(
        None, "--datetime", help="The field holding each feature's date or time (OGC API's "
        "datetime filter uses it)"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Import a GIS file as a layer of entities, reprojected to WGS 84, with a progress bar.
    Each refused feature is listed with its number and why; exit status 1 if any was."""
    from dothi.app import build_broker
    from dothi.gis.importer import LayerImporter

    rename = {}
    for item in field:
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            console.print(f"--field {item!r}: give SRC=NAME", style="red", markup=False)
            raise typer.Exit(2)
        rename[src] = dst
    broker = build_broker(for_database(db))
    try:
        with Progress(TextColumn("[bold]Importing"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("import", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = LayerImporter(broker, tenant).run(
                file, layer=layer, entity_type=entity_type, crs=crs, repair=repair,
                source_layer=source_layer, title=title, rename=rename,
                temporal=datetime_field, progress=advance)
    except ValueError as exc:
        console.print(f"Cannot import {file.name}: {exc}", style="red", markup=False,
                      soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        broker.store.close()
    for n, reason in report.repaired:
        console.print(f"feature {n}: repaired ({reason})", style="yellow", markup=False)
    for n, reason in report.refused:
        console.print(f"feature {n}: refused, {reason}", style="red", markup=False)
    console.print(
        f"Layer {report.layer}: {report.imported} of {report.features} features imported as "
        f"{report.entity_type} from {report.source_crs}; {len(report.repaired)} repaired, "
        f"{len(report.refused)} refused, {report.removed} removed (no longer in the file).",
        markup=False, soft_wrap=True)
    if report.refused:
        raise typer.Exit(1)


@admin_app.command("load")
def admin_units_load(
    province: str | None = typer.Option(None, help="Only this province, by its official code "
                                        "(e.g. 48 for Đà Nẵng)"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Load the provinces and wards after the 2025 reform, with their official codes, as
    AdministrativeArea entities (representative points: the dataset has no boundaries)."""
    from dothi.app import build_broker
    from dothi.gis import admin_units

    broker = build_broker(for_database(db))
    try:
        with Progress(TextColumn("[bold]Loading"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:
            task = progress.add_task("units", total=None)
            loaded, errors = admin_units.load(
                broker, tenant, province,
                lambda done, total: progress.update(task, completed=done, total=total))
    except ValueError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    finally:
        broker.store.close()
    for error in errors:
        console.print(error, style="red", markup=False)
    console.print(f"Loaded {loaded} administrative units. Boundaries: none in the dataset; "
                  "`dothi admin-units boundaries FILE --code-field FIELD` adds them.",
                  markup=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)


@admin_app.command("boundaries")
def admin_units_boundaries(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="GeoJSON, Shapefile, GeoPackage or KML of boundaries"),
    code_field: str = typer.Option(..., help="The field holding the official code"),
    level: str = typer.Option("ward", help="ward or province"),
    crs: str | None = typer.Option(None, help="CRS when the file does not say (EPSG:...)"),
    repair: bool = typer.Option(False, "--repair/--no-repair",
                                help="Make invalid polygons valid instead of refusing them"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Put a file's boundary polygons on the administrative units, matched by official
    code."""
    from dothi.app import build_broker
    from dothi.gis.admin_units import import_boundaries

    if level not in ("ward", "province"):
        console.print("--level is ward or province", style="red")
        raise typer.Exit(2)
    broker = build_broker(for_database(db))
    try:
        report = import_boundaries(broker, tenant, file, code_field, level=level, crs=crs,
                                   repair=repair)
    except ValueError as exc:
        console.print(f"Cannot read {file.name}: {exc}", style="red", markup=False,
                      soft_wrap=True)
        raise typer.Exit(2) from None
    finally:
        broker.store.close()
    for n, reason in report.unknown + report.refused:
        console.print(f"feature {n}: {reason}", style="red", markup=False, soft_wrap=True)
    console.print(f"{report.matched} boundaries set from {report.source_crs}; "
                  f"{len(report.unknown)} not matched, {len(report.refused)} refused.",
                  markup=False, soft_wrap=True)
    if report.unknown or report.refused:
        raise typer.Exit(1)


@app.command()
def demo(
    db: str | None = DbOption,
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve after loading"),
    port: int | None = typer.Option(None, help="Port for serving (default 1026)"),
    simulate_city: bool = typer.Option(
        True, "--simulate/--no-simulate",
        help="Keep the city alive: its sensors report and its street lights obey commands"),
    mqtt: str | None = typer.Option(
        None, help="MQTT broker for the simulated devices (default: DOTHI_IOT_MQTT_URL, else "
        "mqtt://127.0.0.1:1883 if one answers there, else measures go over HTTP)"),
    start: str | None = typer.Option(
        None, help="The simulated city's start, ISO 8601 in its local time (default: now); "
        "2026-10-11T08:25 with --speed 60 plays a downpour that floods two wards"),
    speed: float = typer.Option(1.0, min=0.001, help="Simulated seconds per real second"),
) -> None:
    """Load the Đà Nẵng demo city, then serve it with its sensors reporting."""
    import tempfile

    from dothi.demo import write_demo_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo-city.json"
        write_demo_file(path)
        load([path], db=db, tenant="urn:ngsi-ld:tenant:default", batch=1000)
    _demo_history(db)
    _demo_registry(db)
    _demo_assessments(db)
    simulator_key = _demo_accounts()
    if not serve_after:
        return
    settings = for_database(db, port=port)
    if simulate_city and settings.port == 0:
        console.print("No simulation with --port 0: the simulated devices need the port.")
        simulate_city = False
    broker = mqtt or settings.iot_mqtt_url or _local_mqtt()
    if broker:
        # serve() builds its settings (and its workers theirs) from the environment.
        import os

        os.environ["DOTHI_IOT_MQTT_URL"] = broker
    if simulate_city:
        try:
            when = _city_time(start)
        except ValueError as exc:
            console.print(f"--start: {exc}", style="red", markup=False)
            raise typer.Exit(2) from None
        _start_demo_simulation(settings.port, broker, when, speed, simulator_key)
    serve(db=db, host=None, port=port, workers=None, anonymous=None)


def _demo_history(db: str | None) -> None:
    """A month of the air-quality stations' hourly readings, for charts and downloads."""
    from dothi.app import build_broker
    from dothi.demo import air_quality_history

    broker = build_broker(for_database(db))
    try:
        stations = air_quality_history()
        with Progress(TextColumn("[bold]Air-quality history"), BarColumn(),
                      MofNCompleteColumn(), console=console) as progress:
            task = progress.add_task("stations", total=len(stations))
            for body in stations:
                broker.temporal.upsert("urn:ngsi-ld:tenant:default", body,
                                       broker.resolver.core)
                progress.advance(task)
    finally:
        broker.store.close()


def _demo_registry(db: str | None) -> None:
    """Illustrative records of every register, with their lifecycles."""
    from dothi.app import build_broker
    from dothi.demo import REFERENCE_TIME
    from dothi.registry.demo import register_demo
    from dothi.registry.registry import Registers, Registry

    settings = for_database(db)
    broker = build_broker(settings)
    try:
        registry = Registry(broker, Registers.load(settings.registry_registers,
                                                   settings.registry_certification),
                            settings.registry_province)
        with console.status("Registering the demo's plans, projects and sandboxes"):
            registered = register_demo(registry, "urn:ngsi-ld:tenant:default",
                                       REFERENCE_TIME.date())
    finally:
        broker.store.close()
    console.print(f"{len(registered)} records in the registers: /registry", markup=False)


def _demo_assessments(db: str | None) -> None:
    """The demo's indicators, data quality scores and self-assessments, for the report."""
    from dothi.app import build_broker
    from dothi.gis.assessment import Assessor, Rules
    from dothi.kpi.catalogue import Catalogue
    from dothi.kpi.demo import assess_demo
    from dothi.kpi.framework import Framework
    from dothi.kpi.quality import QualityRater
    from dothi.kpi.selfassess import SelfAssessment

    settings = for_database(db)
    tenant = "urn:ngsi-ld:tenant:default"
    broker = build_broker(settings)
    try:
        with console.status("Assessing the demo cities"):
            catalogue = Catalogue.load(settings.kpi_methods)
            desk = SelfAssessment(broker, Framework.load(settings.kpi_framework, catalogue))
            count = assess_demo(broker, catalogue, desk,
                                Assessor(broker, Rules.load(settings.planning_assessment)),
                                tenant)
            rater = QualityRater(broker, settings.kpi_quality)
            rater.store(tenant, rater.rate(tenant))
    finally:
        broker.store.close()
    console.print(f"{count} self-assessments of the demo cities; the report: /kpi/report",
                  markup=False)


# The demo's people, one per role that signs in, all with DEMO_PASSWORD: a demo on a
# laptop, never a city's instance (`dothi users add` makes real users).
DEMO_USERS = (("quantri", "city-admin", "Quản trị đô thị (demo)", None),
              ("vanhanh", "operator", "Điều hành viên IOC (demo)", None),
              ("thoatnuoc", "officer", "Công ty Thoát nước (demo)", "drainage"),
              ("thamdinh", "assessor", "Chuyên gia đánh giá (demo)", None))
DEMO_PASSWORD = "dothi-demo-2026"


def _demo_accounts() -> str:
    """The demo's users, in the accounts file (DOTHI_AUTH_ACCOUNTS), unless they are
    there already, and a new API key for its simulated devices' provisioning (returned)."""
    from dothi.auth.access import Policy
    from dothi.auth.accounts import Account, Accounts, hash_password, key_hash, new_key

    settings = Settings()
    accounts = Accounts(settings.auth_accounts, Policy.load(settings.auth_policy))
    held = {a.name for a in accounts.all() if a.kind == "users"}
    for name, role, title, agency in DEMO_USERS:
        if name not in held:
            accounts.add(Account("users", name, role, hash_password(DEMO_PASSWORD), title,
                                 agency=agency))
    key = new_key()
    accounts.add(Account("keys", "demo-simulator", "city-admin", key_hash(key),
                         "The demo city's simulated devices (dothi demo)"))
    console.print("Sign in at /auth/login as " + ", ".join(
        f"{name} ({role})" for name, role, _, _ in DEMO_USERS)
        + f", password {DEMO_PASSWORD}", markup=False)
    return key


def _city_time(text: str | None, city: str = "danang") -> datetime | None:
    """An ISO 8601 time, in the city's time zone unless it gives an offset."""
    from dothi.simulate import get_city

    if text is None:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=get_city(city).tz)


def _local_mqtt() -> str | None:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=0.5):
            return "mqtt://127.0.0.1:1883"
    except OSError:
        return None


def _start_demo_simulation(port: int, broker: str | None, start: datetime | None,
                           speed: float, api_key: str) -> None:
    """The demo city's own 264 sensors, each reporting every 10 s, in a background
    thread of this process: over MQTT when there is a broker (commands then work too),
    else over HTTP."""
    from dothi.simulate import Simulation, SimulationOptions

    sim = Simulation(SimulationOptions(
        devices=264, rate="6/min", url=f"http://127.0.0.1:{port}",
        mqtt=broker or "mqtt://127.0.0.1:1883", transport="mqtt" if broker else "http",
        start=start, speed=speed, wait_for_server=60, api_key=api_key))
    sim.start()
    how = f"over MQTT ({broker})" if broker else "over HTTP (no MQTT broker found)"
    console.print(f"Simulating the demo city's 264 sensors {how}, one measure every 10 s "
                  "each; `dothi simulate --help` for a bigger city.", markup=False)


@contexts_app.command("add")
def contexts_add(
    url: str = typer.Argument(..., help="The URL clients will use for this @context"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The JSON-LD document"),
    db: str | None = DbOption,
) -> None:
    """Preload an @context so the broker never has to fetch it."""
    from dothi.app import build_broker
    from dothi.errors import DothiError
    from dothi.ngsild.timeutil import now_iso

    broker = build_broker(for_database(db))
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
        created = now_iso()
        broker.cache.add(url, document, kind="Cached", created_at=created)
        broker.store.put_context(url, document, "Cached", created)
    except (DothiError, json.JSONDecodeError) as exc:
        console.print(f"[red]Cannot add {url}: {exc}")
        raise typer.Exit(1) from None
    finally:
        broker.store.close()
    console.print(f"Added @context {url}")


@contexts_app.command("list")
def contexts_list(db: str | None = DbOption) -> None:
    """List the @contexts stored in the database."""
    from dothi.store.base import open_store

    store = open_store(for_database(db).database_url)
    for url, _, kind, created in store.contexts():
        print(f"{url}\t{kind}\t{created}")
    store.close()


@db_app.command("upgrade")
def db_upgrade(db: str | None = DbOption) -> None:
    """Create or migrate the database schema."""
    from dothi.store.base import open_store

    settings = for_database(db)
    open_store(settings.database_url).close()
    console.print(f"Schema up to date: {settings.database_url}")


@history_app.command("prune")
def history_prune(
    db: str | None = DbOption,
    older_than: str | None = typer.Option(
        None, help="Delete instances older than this ISO 8601 duration, e.g. P90D "
        "(DOTHI_HISTORY_RETENTION, default: keep everything)"),
    downsample_after: str | None = typer.Option(
        None, help="Downsample instances older than this, e.g. P7D "
        "(DOTHI_HISTORY_DOWNSAMPLE_AFTER)"),
    period: str | None = typer.Option(
        None, help="One instance per period when downsampling "
        "(DOTHI_HISTORY_DOWNSAMPLE_PERIOD, default PT1H)"),
) -> None:
    """Apply the history retention policy: delete old instances, average older ones."""
    import time

    from dothi.store.base import open_store

    settings = for_database(db, history_retention=older_than,
                         history_downsample_after=downsample_after,
                         history_downsample_period=period)
    try:
        retention, after, period_ms = _retention_policy(settings)
        if period is not None and after is None:
            raise ValueError("--period needs --downsample-after (DOTHI_HISTORY_DOWNSAMPLE_AFTER)")
    except ValueError as exc:
        console.print(f"Cannot prune: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    now = time.time_ns() // 1_000_000
    store = open_store(settings.database_url)
    try:
        with Progress(
            TextColumn("[bold]Pruning"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console,
        ) as progress:
            task = progress.add_task("prune", total=None)
            deleted, written = store.prune_history(
                None if retention is None else now - retention,
                None if after is None else now - after, None if after is None else period_ms,
                lambda done, total: progress.update(task, completed=done, total=total))
    finally:
        store.close()
    policy = []
    if retention is not None:
        policy.append(f"deleted older than {settings.history_retention}")
    if after is not None:
        policy.append(f"one per {settings.history_downsample_period} older than "
                      f"{settings.history_downsample_after}")
    console.print(f"Deleted {deleted} instances, wrote {written} period averages "
                  f"({'; '.join(policy)}).", markup=False, soft_wrap=True)


def _retention_policy(settings: Settings) -> tuple[int | None, int | None, int]:
    """(retention, downsample after, period) in ms from the settings; ValueError says
    which one is wrong."""
    from dothi.errors import BadRequestData
    from dothi.ngsild.temporal import parse_duration_ms

    def ms(text: str, name: str) -> int:
        try:
            return parse_duration_ms(text)
        except BadRequestData:
            raise ValueError(
                f"{name} must be an ISO 8601 duration in weeks, days, hours, minutes or "
                f"seconds, longer than zero (e.g. P90D, PT1H), not {text!r}") from None

    retention = after = None
    if settings.history_retention:
        retention = ms(settings.history_retention, "--older-than (DOTHI_HISTORY_RETENTION)")
    if settings.history_downsample_after:
        after = ms(settings.history_downsample_after,
                   "--downsample-after (DOTHI_HISTORY_DOWNSAMPLE_AFTER)")
    period = ms(settings.history_downsample_period,
                "--period (DOTHI_HISTORY_DOWNSAMPLE_PERIOD)")
    if retention is None and after is None:
        raise ValueError("no policy: give --older-than or --downsample-after, or set "
                         "DOTHI_HISTORY_RETENTION or DOTHI_HISTORY_DOWNSAMPLE_AFTER")
    if retention is not None and after is not None and after >= retention:
        raise ValueError("--downsample-after must be shorter than --older-than: instances "
                         "older than both are deleted, not downsampled")
    return retention, after, period


personal_app = typer.Typer(help="Citizens' personal data (who made a report or a comment)",
                           no_args_is_help=True)
app.add_typer(personal_app, name="personal")


@personal_app.command("prune")
def personal_prune(
    db: str | None = DbOption,
    older_than: str | None = typer.Option(
        None, help="Erase records made longer ago than this ISO 8601 duration, e.g. P730D "
        "(DOTHI_PERSONAL_DATA_RETENTION)"),
) -> None:
    """The retention period: erase who made each report or comment older than it (the
    reports and comments stay, anonymous), with the history of those values."""
    from datetime import timedelta

    from dothi.app import build_broker
    from dothi.citizen.personal import erase_older
    from dothi.errors import BadRequestData
    from dothi.ngsild.temporal import parse_duration_ms
    from dothi.ngsild.timeutil import format_iso

    settings = for_database(db, personal_data_retention=older_than)
    if not settings.personal_data_retention:
        console.print("Cannot prune: give --older-than or set DOTHI_PERSONAL_DATA_RETENTION",
                      style="red")
        raise typer.Exit(2)
    try:
        keep = parse_duration_ms(settings.personal_data_retention)
    except BadRequestData:
        console.print("--older-than must be an ISO 8601 duration in weeks, days, hours, "
                      f"minutes or seconds (e.g. P730D), not {settings.personal_data_retention!r}",
                      style="red", markup=False)
        raise typer.Exit(2) from None
    before = format_iso(datetime.now(UTC) - timedelta(milliseconds=keep))
    broker = build_broker(settings)
    try:
        with Progress(TextColumn("[bold]Erasing"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("erase", total=None)
            erased = erase_older(broker, before, lambda done, total: progress.update(
                task, completed=done, total=total))
    finally:
        broker.store.close()
    console.print(f"Erased the personal data of {erased} reports and comments made before "
                  f"{before}.", markup=False)


audit_app = typer.Typer(help="The audit log: every write and every read of personal data",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    db: str | None = DbOption,
    head: str | None = typer.Option(None, help="A head hash printed by an earlier verify: "
                                    "the log must still pass through it"),
) -> None:
    """Check the audit log's hash chain from its first row: exit 1 at the first row that
    was changed, removed or reordered (or if the log no longer reaches --head)."""
    from dothi.store import audit
    from dothi.store.base import open_store

    store = open_store(for_database(db).database_url)
    try:
        last = store.audit_rows(limit=1, where=audit.Filter(newest_first=True))
        with Progress(TextColumn("[bold]Verifying"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("verify", total=last[0].seq if last else 0)

            def counted() -> Iterator[Any]:
                for n, row in enumerate(audit.stored(store), 1):
                    if n % 5000 == 0:
                        progress.update(task, completed=n)
                    yield row

            result = audit.verify(counted(), head)
            progress.update(task, completed=result.rows)
    finally:
        store.close()
    if result.broken_at is not None:
        console.print(f"The audit log is broken at row {result.broken_at}: {result.reason}. "
                      f"{result.rows} rows before it are intact.", style="red",
                      markup=False, soft_wrap=True)
        raise typer.Exit(1)
    if result.anchor_found is False:
        console.print(f"The audit log no longer reaches the head {head}: rows were removed "
                      f"from its end ({result.rows} rows now).", style="red", markup=False,
                      soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"The audit log is intact: {result.rows} rows. Its head is {result.head} "
                  "(record it elsewhere; `--head` checks the log still reaches it).",
                  markup=False, soft_wrap=True)


@audit_app.command("list")
def audit_list(
    db: str | None = DbOption,
    tenant: str | None = typer.Option(None, help="Only this tenant"),
    target: str | None = typer.Option(None, help="Only this entity (or subscription, ...)"),
    who: str | None = typer.Option(None, help="Only this actor (official#1, cli:root, ...)"),
    action: str | None = typer.Option(None, help="Only this action or kind of action "
                                      "(entity, entity.delete, personal.read, ...)"),
    limit: int = typer.Option(50, min=1, max=10_000, help="The newest N rows"),
) -> None:
    """The newest rows of the audit log, as a table."""
    from rich import box
    from rich.table import Table

    from dothi.store import audit
    from dothi.store.base import open_store

    store = open_store(for_database(db).database_url)
    try:
        rows = store.audit_rows(limit=limit, where=audit.Filter(
            tenant=tenant, target=target, who=who, action=action, newest_first=True))
    finally:
        store.close()
    table = Table(title="Audit log, newest first", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "at (UTC)", "who", "from", "action", "target", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row.seq), row.at, row.who, row.origin, row.action,
                      row.target or row.tenant, row.detail)
    Console().print(table)


@app.command("migrate-store")
def migrate_store(
    source: str = typer.Option(..., "--from", help="Database URL, SQLite file path or "
                               "export:FOLDER (an export) to copy"),
    target: str = typer.Option(..., "--to", help="Empty database URL, SQLite path or "
                               "export:FOLDER to fill"),
) -> None:
    """Move a whole instance (every tenant, history, subscriptions, registrations,
    @contexts) to another database, then compare counts and checksums of both. From
    export:FOLDER, it imports an export into a fresh instance."""
    _migrate(source, target, "Migrated")


@app.command("export")
def export_instance(
    folder: Path = typer.Argument(..., help="An empty or new folder"),
    db: str | None = typer.Option(None, help="Database URL or SQLite path (default: "
                                  "DOTHI_DATABASE_URL)"),
) -> None:
    """Export a whole instance (every tenant, history, subscriptions, registrations,
    @contexts) as JSON Lines files, then compare them with the database. `dothi
    migrate-store --from export:FOLDER --to URL` imports it into a fresh instance."""
    _migrate(db or for_database(None).database_url, f"export:{folder.resolve()}", "Exported")


@app.command("backup")
def backup(
    folder: Path = typer.Argument(..., help="Where backups go, each in its own folder"),
    db: str | None = typer.Option(None, help="Database URL or SQLite path (default: "
                                  "DOTHI_DATABASE_URL)"),
    keep: int = typer.Option(0, min=0, help="Keep only the newest N backups (0: all)"),
    every: str | None = typer.Option(None, help="Run again every ISO 8601 duration "
                                     "(PT6H, P1D) until stopped"),
) -> None:
    """Back up a running instance, online: one consistent snapshot of it as an export
    (FOLDER/dothi-<UTC time>), checked against that snapshot. `dothi restore` brings it
    back."""
    import shutil
    import time as clock

    from dothi.errors import DothiError
    from dothi.ngsild.temporal import parse_duration_ms

    source = db or for_database(None).database_url
    try:
        pause = parse_duration_ms(every) / 1000 if every else None
    except DothiError as exc:
        console.print(f"--every: {exc.detail}", style="red", markup=False)
        raise typer.Exit(2) from None
    while True:
        now = datetime.now(UTC)
        stamp = f"{now:%Y-%m-%dT%H-%M-%S}.{now.microsecond // 1000:03d}Z"  # sorts by time
        _migrate(source, f"export:{(folder / f'dothi-{stamp}').resolve()}", "Backed up",
                 online=True)
        if keep:
            done = sorted(p for p in folder.glob("dothi-*") if (p / "manifest.json").is_file())
            for old in done[:-keep]:
                shutil.rmtree(old)
                console.print(f"Removed the older backup {old}", markup=False)
        if pause is None:
            return
        clock.sleep(pause)


@app.command("restore")
def restore(
    backup_folder: Path = typer.Argument(..., help="A backup's (or an export's) folder"),
    db: str = typer.Option(..., help="An empty database URL or SQLite path to fill"),
) -> None:
    """Restore a backup or an export into an empty database, then compare the two."""
    _migrate(f"export:{backup_folder.resolve()}", db, "Restored")


def _migrate(source: str, target: str, verb: str, *, online: bool = False) -> None:
    from rich import box
    from rich.table import Table

    from dothi.store.migrate import Refused, compare, copy_store

    class Bars:
        def __init__(self, progress: Progress) -> None:
            self.progress = progress
            self.tasks: dict[str, Any] = {}

        def start(self, task: str, total: int) -> None:
            self.tasks[task] = self.progress.add_task(task, total=total)

        def advance(self, task: str, n: int) -> None:
            self.progress.advance(self.tasks[task], n)

    columns = (TextColumn("[bold]{task.description:>17}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            copied = copy_store(source, target, Bars(progress), in_snapshot=online)
    except Refused as exc:
        console.print(f"Cannot migrate: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - a failure mid-copy, reported plainly
        console.print(f"Migration failed: {exc}. The target holds a partial copy: empty it "
                      "before trying again.", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for tenant, eid, error in copied.failed:
        console.print(f"Not copied: {eid} ({tenant}): {error}", style="red", markup=False,
                      soft_wrap=True)
    if online:  # compared within the snapshot the copy read: writers went on meanwhile
        checks = copied.checks
    else:
        with Progress(*columns, console=console) as progress:
            checks = compare(source, target, Bars(progress))
    # Checksums: sha256 over every row's canonical form (dothi.store.migrate.Digest).
    table = Table(title="Source and target compared", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("kind", no_wrap=True)
    for name in ("source\nrows", "target\nrows"):
        table.add_column(name, justify="right", no_wrap=True)
    for name in ("source\nsha256", "target\nsha256"):
        table.add_column(name, no_wrap=True)
    table.add_column("", no_wrap=True)
    for check in checks:
        table.add_row(check.kind, str(check.source_count), str(check.target_count),
                      check.source_sum[:10], check.target_sum[:10],
                      "[green]same" if check.ok else "[red]DIFFERENT")
    console.print(table)
    rows = sum(copied.rows.values())
    bad = [c.kind for c in checks if not c.ok]
    if bad or copied.failed:
        console.print(f"Migration incomplete: {', '.join(bad) or 'entities'} differ between "
                      "source and target.", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        f"{verb} {copied.rows.get('entities', 0)} entities, "
        f"{copied.rows.get('instances', 0)} attribute instances, "
        f"{copied.rows.get('subscriptions', 0)} subscriptions, "
        f"{copied.rows.get('registrations', 0)} registrations ({rows} rows) in "
        f"{copied.seconds:.1f} s; source and target agree.", markup=False, soft_wrap=True)


@app.command()
def simulate(
    city: str = typer.Option("danang", help="City to simulate (only danang so far)"),
    devices: int = typer.Option(264, min=1, help="Devices; the first 264 drive the demo city"),
    rate: str = typer.Option("1/min", help="Measures per device: N/s, N/min or N/h"),
    url: str = typer.Option("http://127.0.0.1:1026", help="dothi server, for provisioning"),
    mqtt: str = typer.Option("mqtt://127.0.0.1:1883", help="MQTT broker the server listens to"),
    transport: str = typer.Option("mqtt", help="mqtt or http (commands need mqtt)"),
    speed: float = typer.Option(1.0, min=0.001, help="Simulated seconds per real second"),
    duration: float | None = typer.Option(None, min=0, help="Seconds to run (default: until "
                                          "Ctrl-C)"),
    seed: int = typer.Option(1, help="Same seed, same city and same weather"),
    tenant: str | None = typer.Option(None, help="NGSILD-Tenant (default: the default tenant)"),
    qos: int = typer.Option(0, min=0, max=2, help="MQTT QoS of the measures"),
    start: str | None = typer.Option(
        None, help="Simulated start, ISO 8601 (city local time unless an offset is given; "
        "default: now)"),
    provision: bool = typer.Option(True, "--provision/--no-provision",
                                   help="Provision service groups and devices first"),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Connect to nothing; print topic and payload lines"),
    api_key: str | None = typer.Option(
        None, envvar="DOTHI_SIMULATE_API_KEY",
        help="An API key that may provision devices (a city administrator's: dothi keys add)"),
) -> None:
    """Drive a simulated city of IoT devices over MQTT (or HTTP) into the server."""
    import sys

    from dothi.simulate import Simulation, SimulationOptions

    try:
        local_start = _city_time(start, city)
        sim = Simulation(SimulationOptions(
            city=city, devices=devices, rate=rate, url=url, mqtt=mqtt, transport=transport,
            speed=speed, duration=duration, seed=seed, tenant=tenant, qos=qos,
            start=local_start, provision=provision, dry_run=dry_run, api_key=api_key),
            console=console, dry_run_out=sys.stdout if dry_run else None)
    except ValueError as exc:
        console.print(f"Cannot simulate: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        report = sim.run()
    except Exception as exc:  # noqa: BLE001 - the server or the broker is unusable
        console.print(f"Simulation failed: {exc}", style="red", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"Sent {report.sent} measures from {report.devices} devices in "
        f"{report.wall_seconds:.0f} s, answered {report.commands} commands, "
        f"{report.errors} errors.", markup=False, soft_wrap=True)
    if report.last_error:
        console.print(f"Last error: {report.last_error}", style="red", markup=False,
                      soft_wrap=True)


@app.command()
def screenshots(
    out: Path = typer.Option(Path("docs/screenshots"), help="Folder for the PNG files"),
    url: str | None = typer.Option(
        None, help="Photograph this running dothi as it is (default: stage the demo city "
        "with a flood in a temporary database)"),
) -> None:
    """Screenshots of the operations-centre dashboard, taken in chromium (Debian package
    chromium; `pip install 'dothi[browser]'` for Playwright)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        console.print("Playwright is not installed: pip install 'dothi[browser]'", style="red",
                      markup=False)
        raise typer.Exit(2) from None
    from dothi.web.screenshots import take

    with console.status("Taking screenshots") as status:
        taken = take(out, url, lambda text: status.update(text))
    for path in taken:
        console.print(f"Wrote {path}", markup=False)


kpi_app = typer.Typer(help="Key performance indicators (U4SSC, ISO 37120)", no_args_is_help=True)
app.add_typer(kpi_app, name="kpi")


@kpi_app.command("compute")
def kpi_compute(
    city: str = typer.Option(..., help="The city the values are for (e.g. danang)"),
    period: str = typer.Option(..., help="A year (2025) or dates (2025-01-01/2025-07-01)"),
    raw: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                    help="Raw numerators and denominators (CSV: city, period, "
                                    "code, numerator, denominator) instead of the store"),
    out: Path | None = typer.Option(None, help="Also write the values as CSV"),
    store: bool = typer.Option(True, "--store/--no-store",
                               help="Keep the values as KeyPerformanceIndicator entities"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Compute the indicators dothi has methods for from the store (or, with --raw, every
    indicator given raw values), with their provenance; list what is missing and why."""
    import csv

    from rich.table import Table

    from dothi.app import build_broker
    from dothi.gis.assessment import Assessor, Rules
    from dothi.kpi.catalogue import Catalogue
    from dothi.kpi.compute import Computer, period_bounds, read_raw
    from dothi.kpi.framework import Framework

    settings = for_database(db)
    try:
        period_bounds(period)
        catalogue = Catalogue.load(settings.kpi_methods)
        targets = Framework.load(settings.kpi_framework, catalogue).targets()
        rows = read_raw(raw) if raw is not None else None
    except (ValueError, KeyError) as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    broker = build_broker(settings)
    try:
        computer = Computer(broker, catalogue,
                            Assessor(broker, Rules.load(settings.planning_assessment)), targets)
        with Progress(TextColumn("[bold]Computing"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:
            task = progress.add_task("indicators", total=None)
            if rows is not None:
                wanted = [r for r in rows if r.get("city", "").strip() == city
                          and r.get("period", "").strip() == period]
                results = computer.from_raw(wanted, raw.name if raw else "raw")
                progress.update(task, completed=len(results), total=len(results))
            else:
                results = computer.compute(tenant, city, period, lambda done, total:
                                           progress.update(task, completed=done, total=total))
        stored = computer.store(tenant, results) if store else 0
    finally:
        broker.store.close()
    table = Table(title=f"Indicators of {city}, {period}")
    for column in ("code", "indicator", "value", "unit", "status"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for r in results:
        indicator = catalogue.indicators.get(r.code)
        table.add_row(r.code, indicator.name if indicator else "?",
                      "" if r.value is None else f"{r.value:,.2f}",
                      indicator.unit if indicator else "", r.missing or "computed")
    Console().print(table)
    computed = sum(1 for r in results if r.value is not None)
    console.print(f"{computed} computed, {len(results) - computed} missing; {stored} stored "
                  "as KeyPerformanceIndicator entities.", markup=False)
    if out is not None:
        with out.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["city", "period", "code", "value", "unit", "missing"])
            for r in results:
                indicator = catalogue.indicators.get(r.code)
                writer.writerow([r.city, r.period, r.code,
                                 "" if r.value is None else repr(r.value),
                                 indicator.unit if indicator else "", r.missing or ""])


@kpi_app.command("quality")
def kpi_quality(
    store: bool = typer.Option(True, "--store/--no-store",
                               help="Keep the scores as DataQualityAssessment entities"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Score the quality of every dataset (entity type) per agency: completeness,
    validity, timeliness, consistency and uniqueness, best first."""
    from rich.table import Table

    from dothi.app import build_broker
    from dothi.kpi.quality import DIMENSIONS, QualityRater

    settings = for_database(db)
    broker = build_broker(settings)
    try:
        rater = QualityRater(broker, settings.kpi_quality)
        with console.status("Scoring the datasets"):
            results = rater.rate(tenant)
        stored = rater.store(tenant, results) if store and results else 0
    finally:
        broker.store.close()
    table = Table(title="Database quality, best first")
    for column in ("dataset", "agency", "entities", *DIMENSIONS, "score"):
        table.add_column(column, justify="left" if column in ("dataset", "agency") else "right",
                         no_wrap=column == "dataset")
    for q in results:
        shares = [q.shares.get(d) for d in DIMENSIONS]
        table.add_row(q.entity_type, q.agency, str(q.entities),
                      *("—" if v is None else f"{100 * v:.0f}%" for v in shares),
                      "—" if q.score is None else f"{q.score:.1f}")
    Console().print(table)
    for q in results:
        for problem in q.problems[:3]:
            console.print(f"{q.entity_type}: {problem}", markup=False, soft_wrap=True)
    console.print(f"{len(results)} datasets scored; {stored} kept as DataQualityAssessment "
                  "entities (their history is the trend).", markup=False)



@kpi_app.command("report")
def kpi_report(
    city: str = typer.Option(..., help="The city (as dothi kpi compute was given it)"),
    period: str = typer.Option(..., help="A year (2025) or dates (2025-01-01/2025-07-01)"),
    out: Path = typer.Option(..., help="The XLSX workbook to write"),
    lang: str = typer.Option("vi", help="vi or en"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Write a city's assessment of a period as an XLSX workbook: the level, the scores
    with a radar chart, the criteria, the trend over the periods and the indicators."""
    from dothi.app import build_broker
    from dothi.errors import DothiError
    from dothi.kpi.catalogue import Catalogue
    from dothi.kpi.export import city_workbook
    from dothi.kpi.framework import Framework
    from dothi.kpi.selfassess import SelfAssessment, check_city_period

    settings = for_database(db)
    try:
        check_city_period(city, period)
        if lang not in ("vi", "en"):
            raise ValueError("--lang is vi or en")
        catalogue = Catalogue.load(settings.kpi_methods)
        framework = Framework.load(settings.kpi_framework, catalogue)
    except (ValueError, KeyError, DothiError) as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    broker = build_broker(settings)
    try:
        state, book = city_workbook(SelfAssessment(broker, framework), catalogue, tenant,
                                    city, period, lang)
        out.write_bytes(book)
    finally:
        broker.store.close()
    console.print(f"{city} {period}: level {state['level']} ({state['levelName'][lang]}), "
                  f"{state['status']}, version {state['version']}; written to {out}",
                  markup=False)


@kpi_app.command("rank")
def kpi_rank(
    period: str = typer.Option(..., help="A year (2025) or dates (2025-01-01/2025-07-01)"),
    db: str | None = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
) -> None:
    """Rank the cities' accepted assessments of a period, with each city's best and worst
    rank under other weightings, and the method."""
    from rich.table import Table

    from dothi.app import build_broker
    from dothi.errors import DothiError
    from dothi.kpi.catalogue import Catalogue
    from dothi.kpi.framework import Framework
    from dothi.kpi.ranking import rank
    from dothi.kpi.selfassess import SelfAssessment, check_city_period

    settings = for_database(db)
    try:
        check_city_period("all", period)
        framework = Framework.load(settings.kpi_framework, Catalogue.load(settings.kpi_methods))
    except (ValueError, KeyError, DothiError) as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    broker = build_broker(settings)
    try:
        ranking = rank(framework, SelfAssessment(broker, framework).cities(tenant, period))
    finally:
        broker.store.close()
    table = Table(title=f"Cities ranked, {period}")
    for column in ("rank", "city", "composite", "level", "under other weights", "tie"):
        table.add_column(column, justify="left" if column in ("city", "tie") else "right")
    for r in ranking["rows"]:
        best, worst = r["sensitivity"]["best"], r["sensitivity"]["worst"]
        tie = r["tie"]
        table.add_row(str(r["rank"]), r["city"], f"{r['composite']:.2f}", str(r["level"]),
                      str(best) if best == worst else f"{best}-{worst}",
                      f"with {', '.join(tie['with'])}: {tie['settledBy']}" if tie else "")
    Console().print(table)
    for r in ranking["notRanked"]:
        console.print(f"{r['city']}: not ranked ({r['status']})", markup=False)
    console.print(ranking["method"]["en"], markup=False, soft_wrap=True)


if __name__ == "__main__":
    app()
