"""Open data over HTTP (``/opendata``): the portal page, the catalogue as JSON for the page
and as DCAT-AP JSON-LD for harvesters, and the published datasets' downloads."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import JSONLD, Router, broker, json_response, tenant
from dothi.errors import BadRequestData, Forbidden, ResourceNotFound
from dothi.opendata import dcat, downloads
from dothi.opendata.catalogue import Catalogue, Dataset

router = Router(prefix="/opendata", tags=["Open data"])
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_DAYS = 30


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue  # type: ignore[no-any-return]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _dataset(request: Request, did: str) -> Dataset:
    found = await run_in_threadpool(_catalogue(request).dataset, tenant(request), did)
    if found is None:
        raise ResourceNotFound(f"No dataset {did!r}")
    return found


async def _published(request: Request, did: str, fmt: str, formats: tuple[str, ...]
                     ) -> Dataset:
    if fmt not in formats:
        raise BadRequestData(f"format {fmt!r}: one of {', '.join(formats)}")
    found = await _dataset(request, did)
    if not found.open:
        raise Forbidden(f"The dataset {did!r} is not published"
                        + (": it holds personal data" if found.personal else ""))
    return found


def _file(body: bytes, fmt: str, name: str) -> Response:
    return Response(body, media_type=downloads.MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@router.get("", include_in_schema=False)
async def portal() -> Response:
    return FileResponse(WEB / "static" / "opendata.html", media_type="text/html")


@router.get("/catalog", summary="The catalogue as DCAT-AP 3 JSON-LD, for harvesting",
            responses={200: {"content": {JSONLD: {}}}})
async def catalog(request: Request) -> Response:
    cat = _catalogue(request)
    datasets = await run_in_threadpool(cat.datasets, tenant(request))
    return json_response(dcat.catalogue(cat.metadata, datasets, _base(request)),
                         mtype=JSONLD)


@router.get("/datasets", summary="The datasets, searched by words in either language")
async def datasets(request: Request, q: str = "") -> Response:
    found = await run_in_threadpool(_catalogue(request).search, tenant(request), q)
    return json_response({"datasets": [d.summary() for d in found]})


@router.get("/datasets/{did}", summary="One dataset's metadata")
async def one(request: Request, did: str) -> Response:
    return json_response((await _dataset(request, did)).summary())


@router.get("/datasets/{did}/data.{fmt}", summary="A published dataset's entities now "
            "(csv, geojson, jsonld or parquet)")
async def data(request: Request, did: str, fmt: str) -> Response:
    found = await _published(request, did, fmt, tuple(downloads.MEDIA))
    body = await run_in_threadpool(downloads.entities, broker(request), tenant(request),
                                   found, fmt)
    return _file(body, fmt, did)


@router.get("/datasets/{did}/history.{fmt}", summary="A published dataset's values over "
            "time (csv or parquet); from and to are dates or date-times, Vietnam's time "
            "unless they give an offset (default: the last 30 days)")
async def history(request: Request, did: str, fmt: str,
                  start: str | None = Query(None, alias="from"),
                  end: str | None = Query(None, alias="to")) -> Response:
    found = await _published(request, did, fmt, downloads.TABLES)
    if not found.history:
        raise BadRequestData(f"The dataset {did!r} keeps no values over time")
    until = _instant(end, "to", day_end=True) if end is not None else datetime.now(VIETNAM)
    since = _instant(start, "from") if start is not None else \
        until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise BadRequestData("from must be before to")
    if until - since > timedelta(days=downloads.MAX_HISTORY_DAYS):
        raise BadRequestData(f"at most {downloads.MAX_HISTORY_DAYS} days at a time")
    body = await run_in_threadpool(downloads.history, broker(request), tenant(request),
                                   found, since, until, fmt)
    last = until - timedelta(milliseconds=1)  # the period's last day, as the client gave it
    name = f"{did}-{since.astimezone(VIETNAM):%Y%m%d}-{last.astimezone(VIETNAM):%Y%m%d}"
    return _file(body, fmt, name)


def _instant(text: str, name: str, day_end: bool = False) -> datetime:
    """A date (its start, or with ``day_end`` the start of the next day) or a date-time;
    in Vietnam's time zone unless it says otherwise."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            if day_end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), VIETNAM)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{name} {text!r}: a date (2026-11-01) or a date-time "
                             "(2026-11-01T08:00+07:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=VIETNAM)
