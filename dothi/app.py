"""``create_app(settings)``: the HTTP application. Nothing reads configuration at import."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dothi import __version__
from dothi.api import (
    auth,
    batch,
    citizen,
    consultations,
    contexts,
    csources,
    dashboard,
    entities,
    incidents,
    iot,
    kpi,
    meta,
    ogc,
    open311,
    opendata,
    pilots,
    planning,
    programme,
    registry,
    schemes,
    subscriptions,
    temporal,
    types,
)
from dothi.api.ratelimit import Buckets, RateLimit
from dothi.auth import access, network
from dothi.auth.signin import CHALLENGE, Authenticate, Authenticator
from dothi.broker.broker import Broker
from dothi.broker.notifier import Notifier, NotifierSettings
from dothi.citizen.catalogue import Catalogue
from dothi.citizen.consultations import ConsultationDesk
from dothi.citizen.media import MediaDesk
from dothi.citizen.personal import Vault
from dothi.citizen.reports import ReportDesk
from dothi.errors import NGSI_ERRORS, DothiError, PartialSuccess
from dothi.gis.assessment import Assessor, Rules
from dothi.gis.layers import LayerDescriptions
from dothi.ioc.service import IocService
from dothi.iot.service import IotService
from dothi.kpi.catalogue import Catalogue as KpiCatalogue
from dothi.kpi.compute import Computer
from dothi.kpi.framework import Framework
from dothi.kpi.selfassess import SelfAssessment
from dothi.ngsild.context import ContextCache
from dothi.opendata.catalogue import Catalogue as DataCatalogue
from dothi.opendata.catalogue import Metadata
from dothi.periodic import Periodic
from dothi.program.desk import Programme
from dothi.registry.registry import Registers, Registry
from dothi.settings import Settings, listed
from dothi.store.base import open_store
from dothi.web.live import LiveHub

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 15.0

PROBLEM = "application/problem+json"
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


# Headers every answer carries: no content sniffing (a JSON or CSV body is never run as a
# script), no referrer beyond the platform, and no framing by other sites' pages.
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"SAMEORIGIN")]


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def problem_response(status: int, problem: str, title: str, detail: str,
                     headers: dict[str, str] | None = None) -> Response:
    body = {"type": NGSI_ERRORS + problem, "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM,
                    headers=headers)


def build_broker(settings: Settings) -> Broker:
    cache = ContextCache(fetch=settings.context_fetch, timeout=settings.context_fetch_timeout)
    if settings.context_dir is not None:
        cache.preload_folder(settings.context_dir)
    store = open_store(settings.database_url, keep_history=settings.history,
                       lease_ms=int(settings.notification_lease * 1000),
                       pool_size=settings.database_pool, timeout_s=settings.database_timeout,
                       statement_timeout_s=settings.database_statement_timeout)
    broker_id = settings.broker_id or \
        "dothi-" + hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    return Broker(store, cache, broker_id=broker_id, forward_timeout=settings.forward_timeout)


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections in a server process: what startup built
    (contexts, compiled models) is frozen out of every later collection, and the youngest
    generation waits for 20,000 allocations instead of 700. Each request allocates tens of
    thousands of short-lived objects; with the defaults, collections stalled whole batches
    (bench/sustained.py at 5,000 attribute updates/s: p95 82 -> 37 ms, p99 124 -> 41 ms).
    Never in a process that makes many apps, such as the tests: frozen objects are never
    collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _limit_malloc_arenas() -> None:
    """Two malloc arenas in a server process instead of glibc's eight per core: each of
    the up to 40 worker threads otherwise takes an arena of its own, whose freed memory
    fragments and is rarely returned (bench/soak.py, 15 minutes: growth after warm-up 2.6
    -> 1.6 MB/min with MALLOC_ARENA_MAX=2). Threads wait on the GIL anyway, so sharing
    arenas costs nothing here. glibc only: elsewhere, nothing."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        return
    if mallopt is not None:
        mallopt(-8, 2)  # M_ARENA_MAX


def _end_streams_on_stop(live: LiveHub) -> None:
    """The server's stop signals also end the dashboards' live streams, which never end
    by themselves: the server then stops at once instead of after its grace period. The
    handler that the server installed runs too, after this one."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            live.end_streams()
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread: nothing to chain
            return


def create_app(settings: Settings | None = None, broker: Broker | None = None, *,
               serving: bool = False) -> FastAPI:
    """The HTTP app; ``serving`` for the long-lived server process (``dothi serve``),
    which also tunes the garbage collector for its own lifetime."""
    settings = settings or Settings()
    if serving:
        _limit_malloc_arenas()  # before the worker threads make their arenas

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.broker is None
        if owned:
            app.state.broker = build_broker(settings)
        app.state.broker.subscriptions.policy = app.state.authenticator.policy
        allowed = network.networks(settings.auth_private_endpoints)
        app.state.broker.subscriptions.private_endpoints = allowed
        app.state.broker.cache.guard = lambda url: None if access.current().may("manage") \
            else network.check_public(url, allowed, "The @context")
        notifier = Notifier(app.state.broker.subscriptions, app.state.broker.store,
                            NotifierSettings(timeout=settings.notification_timeout,
                                             retries=settings.notification_retries,
                                             lease=settings.notification_lease))
        await notifier.start()
        app.state.iot = IotService(app.state.broker, settings, app.state.broker.broker_id)
        app.state.iot.start()
        app.state.ioc = IocService(app.state.broker, settings)
        app.state.ioc.start()
        vault = Vault.from_settings(settings.personal_data_key,
                                    settings.personal_data_key_file)
        app.state.reports = ReportDesk(
            app.state.broker, app.state.ioc.desk,
            Catalogue.load(settings.citizen_services, app.state.ioc.desk.flow), vault,
            hourly_limit=settings.citizen_hourly_limit)
        app.state.kpi_catalogue = KpiCatalogue.load(settings.kpi_methods)
        app.state.self_assessment = SelfAssessment(
            app.state.broker, Framework.load(settings.kpi_framework, app.state.kpi_catalogue))
        app.state.assessor = Assessor(app.state.broker,
                                      Rules.load(settings.planning_assessment))
        app.state.consultations = ConsultationDesk(
            app.state.broker, vault, hourly_limit=settings.citizen_hourly_limit)
        app.state.media = MediaDesk(app.state.broker, vault,
                                    hourly_limit=3 * settings.citizen_hourly_limit)
        app.state.layers = LayerDescriptions(app.state.broker)
        app.state.catalogue = DataCatalogue(app.state.broker,
                                            Metadata.load(settings.opendata_datasets))
        app.state.registry = Registry(
            app.state.broker, Registers.load(settings.registry_registers,
                                             settings.registry_certification),
            settings.registry_province)
        windows = Periodic("dothi-registry-windows", settings.registry_check_interval,
                           lambda: app.state.registry.check_all(),
                           "the sandboxes' windows were not checked")
        windows.start()
        app.state.programme = Programme(
            app.state.broker, Computer(app.state.broker, app.state.kpi_catalogue,
                                       app.state.assessor,
                                       app.state.self_assessment.framework.targets()),
            settings.program_templates)
        programme_check = Periodic("dothi-programme-check", settings.program_check_interval,
                                   app.state.programme.check_all,
                                   "the programme's tasks and reports were not flagged")
        programme_check.start()
        if serving:
            _tune_gc()
            _end_streams_on_stop(app.state.ioc.live)
        yield
        app.state.ioc.desk.followers.remove(app.state.reports.follow)
        app.state.layers.close()
        app.state.catalogue.close()
        windows.stop()
        programme_check.stop()
        await asyncio.to_thread(app.state.iot.stop)
        await app.state.ioc.live.close()
        await asyncio.to_thread(app.state.ioc.stop)
        try:
            # A stopping server never hangs on its notifier: what it still held is taken
            # over by another process when its lease runs out.
            await asyncio.wait_for(notifier.stop(), SHUTDOWN_WAIT_S)
        except TimeoutError:
            log.error("the notifier did not stop within %s s; stopping anyway",
                      SHUTDOWN_WAIT_S)
        if owned:
            app.state.broker.forwarder.close()
            app.state.broker.store.close()
            app.state.broker = None

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="dothi",
        version=__version__,
        summary="NGSI-LD context broker of the dothi smart-city platform",
        description="ETSI GS CIM 009 V1.9.1 API over an embedded store. "
        "Nền tảng dữ liệu đô thị dùng chung.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.authenticator = Authenticator(settings)
    app.state.guesses = Buckets(1 / auth.GUESSES_EVERY_S, auth.GUESSES_BURST)

    @app.exception_handler(DothiError)
    async def dothi_error(request: Request, exc: DothiError) -> Response:
        return Response(orjson.dumps(exc.to_problem()), status_code=exc.status,
                        media_type=PROBLEM,
                        headers={"WWW-Authenticate": CHALLENGE[1].decode()}
                        if exc.status == 401 else None)

    @app.exception_handler(PartialSuccess)
    async def partial_success(request: Request, exc: PartialSuccess) -> Response:
        return Response(orjson.dumps(exc.body()), status_code=207,
                        media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(400, "BadRequestData", "Bad request", str(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kinds = {404: "ResourceNotFound", 405: "OperationNotSupported"}
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 405:  # every method of the path, not only those of the first route
            headers["Allow"] = ", ".join(_allowed(request.app, request.url.path,
                                                  headers.get("Allow", "")))
        return problem_response(status, kinds.get(status, "InvalidRequest"), str(exc.detail),
                                f"{request.method} {request.url.path}: {exc.detail}",
                                headers=headers)

    for module in (entities, batch, subscriptions, csources, temporal, types, contexts, iot,
                   incidents, dashboard, ogc, consultations, planning, open311, citizen, kpi,
                   opendata, registry, programme, pilots, schemes, auth, meta):
        app.include_router(module.router)
    app.include_router(open311.officials)
    # Innermost first: who a request is from is worked out after the rate limit (so
    # guessing keys is limited too), and every answer gets the security headers.
    app.add_middleware(Authenticate, authenticator=app.state.authenticator)
    app.add_middleware(RateLimit, rate=settings.rate_limit, burst=settings.rate_burst,
                       exempt=frozenset(listed(settings.rate_exempt)))
    app.add_middleware(SecurityHeaders)  # outside RateLimit: its 429s get the headers too
    dashboard.mount_assets(app)
    _offline_docs(app)
    return app


def _allowed(app: FastAPI, path: str, given: str) -> list[str]:
    """The methods that ``path`` allows, as the OpenAPI description lists them (a path
    template can have its methods on several routes, and Starlette's 405 names those of
    the first only), with those the 405 gave (routes left out of the description)."""
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = app.state.allowed_methods = [
            (compile_path(template)[0], {m.upper() for m in ops if m.upper() in METHODS})
            for template, ops in app.openapi()["paths"].items()]
    allowed = {m.strip() for m in given.split(",") if m.strip()}
    for regex, methods in table:
        if regex.match(path):
            allowed |= methods
    return sorted(allowed)


def _offline_docs(app: FastAPI) -> None:
    """Interactive docs from assets shipped in a wheel, not a CDN: government networks are
    often offline."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/-/static/docs", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="dothi — API",
            swagger_js_url="/-/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/-/static/docs/swagger-ui.css",
            swagger_favicon_url="/-/static/docs/favicon.png",
        )


def app_from_env() -> FastAPI:
    """Factory for worker processes (``dothi serve --workers N``): settings from DOTHI_*."""
    return create_app(Settings(), serving=True)
