"""Meta endpoints under /-/ and the landing page a person sees first."""

from __future__ import annotations

import html

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi import __version__
from dothi.api.http import Router, broker, json_response, require
from dothi.auth import access as auth
from dothi.store.base import DEFAULT_TENANT

router = Router(tags=["Meta"])


@router.get("/-/health", summary="Liveness and store check")
async def health(request: Request) -> Response:
    await run_in_threadpool(broker(request).store.tenants)
    return json_response({"status": "ok"})


@router.get("/-/version", summary="Version")
async def version() -> Response:
    return json_response({"dothi": __version__, "ngsi-ld": "1.9.1"})


@router.get("/-/settings", summary="Effective settings, without secrets (managers)")
async def settings(request: Request) -> Response:
    require(request, "manage", "read the settings")
    s = request.app.state.settings
    shown = s.model_dump(mode="json")
    for name, value in shown.items():  # keys: the personal data's, officials', apps'...
        if value and (name.endswith("_key") or name.endswith("_keys")):
            shown[name] = "***"
    for name in ("database_url", "iot_mqtt_url"):  # URLs may carry a password
        if shown.get(name):
            shown[name] = _without_password(shown[name])
    return json_response(shown)


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dothi — Nền tảng đô thị thông minh / Smart-city platform</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d2733}}
h1{{margin-bottom:.2rem}} .en{{color:#5b6775}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #dde3ea;padding:.45rem;text-align:left}} td.n{{text-align:right}}
a{{color:#0b63b6}}
</style></head><body>
<h1>dothi</h1>
<p>Nền tảng dữ liệu đô thị dùng chung theo chuẩn NGSI-LD.
<span class="en">— Urban data platform speaking NGSI-LD (ETSI GS CIM 009 V1.9.1).</span></p>
<p><a href="/ioc/dashboard"><b>Trung tâm điều hành (IOC)</b></a>
<span class="en">— Operations centre dashboard</span></p>
<p><a href="/opendata"><b>Dữ liệu mở</b></a>
<span class="en">— Open data: search, preview and download the city's datasets</span></p>
<p><a href="/registry"><b>Sổ đăng ký đô thị</b></a>
<span class="en">— The registers: plans, projects, smart buildings and areas, sandboxes</span></p>
<p><a href="/auth/login"><b>Đăng nhập</b></a> <span class="en">— Sign in</span></p>
<h2>Loại thực thể <span class="en">/ Entity types</span></h2>
<table><thead><tr><th>Loại / Type</th><th>Số lượng / Count</th></tr></thead>
<tbody>{rows}</tbody></table>
<p>Tổng / Total: <b>{total}</b></p>
<h2>API</h2>
<ul>
<li><a href="/docs">Tài liệu API tương tác / Interactive API docs</a>
 (<a href="/openapi.json">OpenAPI</a>)</li>
<li><a href="/ngsi-ld/v1/types">/ngsi-ld/v1/types</a></li>
<li><a href="/ngsi-ld/v1/attributes">/ngsi-ld/v1/attributes</a></li>
<li><a href="/ngsi-ld/v1/jsonldContexts">/ngsi-ld/v1/jsonldContexts</a></li>
</ul>
<p class="en">dothi {version}</p>
</body></html>"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request) -> HTMLResponse:
    b = broker(request)
    access = auth.current()
    stats = [s for s in await run_in_threadpool(b.store.type_stats, DEFAULT_TENANT)
             if access.sees_type(s.type)]
    ctx = b.resolver.core
    rows = []
    for s in sorted(stats, key=lambda s: ctx.compact(s.type)):
        name = ctx.compact(s.type)
        link = f"/ngsi-ld/v1/entities?type={html.escape(name)}&limit=20"
        rows.append(
            f'<tr><td><a href="{link}">{html.escape(name)}</a></td>'
            f'<td class="n">{s.entities:,}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="2">Chưa có dữ liệu / No entities yet</td></tr>')
    total = sum(s.entities for s in stats)
    return HTMLResponse(PAGE.format(rows="".join(rows), total=f"{total:,}", version=__version__))
