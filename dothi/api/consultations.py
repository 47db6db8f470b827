"""Public comment on plans (``/planning/consultations``): officials open a plan for
comment, moderate, read the summary and, when they must, who wrote a comment (each such
read logged); anyone reads the consultations and their approved comments, and comments
while a consultation is open."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import Router, json_object, json_response, official, on_behalf, tenant
from dothi.api.open311 import client_of
from dothi.citizen.consultations import ConsultationDesk
from dothi.errors import ResourceNotFound

router = Router(prefix="/planning/consultations", tags=["Planning"])


def _desk(request: Request) -> ConsultationDesk:
    return request.app.state.consultations  # type: ignore[no-any-return]


@router.post("", status_code=201, summary="Open a plan for public comment (officials)")
async def open_consultation(request: Request) -> Response:
    official(request)
    body = await json_object(request)
    cid = await run_in_threadpool(_desk(request).open, tenant(request), body)
    return json_response({"id": cid}, status=201,
                         headers={"Location": f"/planning/consultations/{cid}"})


@router.get("", summary="The consultations, the latest to close first")
async def consultations(request: Request) -> Response:
    on_behalf(request, "read", "read consultations")
    return json_response(await run_in_threadpool(_desk(request).consultations,
                                                 tenant(request)))


@router.get("/{cid}", summary="One consultation")
async def consultation(request: Request, cid: str) -> Response:
    on_behalf(request, "read", "read consultations")
    desk, where = _desk(request), tenant(request)
    return json_response(await run_in_threadpool(
        lambda: desk.view(desk.get(where, cid), where)))


@router.post("/{cid}/comments", status_code=201,
             summary="Comment on a plan open for comment (published once moderated)")
async def comment(request: Request, cid: str) -> Response:
    on_behalf(request, "comment", "comment on plans")
    body = await json_object(request)
    client = client_of(request, request.headers.get("x-api-key"))
    mid = await run_in_threadpool(_desk(request).comment, tenant(request), cid, body, client)
    return json_response({"id": mid.rsplit(":", 1)[-1], "moderation": "pending"}, status=201)


@router.get("/{cid}/comments", summary="The approved comments")
async def published(request: Request, cid: str) -> Response:
    on_behalf(request, "read", "read consultations")
    return json_response(await run_in_threadpool(_desk(request).published, tenant(request),
                                                 cid))


@router.get("/{cid}/moderation", summary="The comments waiting for moderation (officials)")
async def waiting(request: Request, cid: str) -> Response:
    official(request)
    return json_response(await run_in_threadpool(_desk(request).waiting, tenant(request),
                                                 cid))


@router.post("/{cid}/comments/{mid}/moderation",
             summary="Approve (publish) or reject a comment (officials)")
async def moderate(request: Request, cid: str, mid: str) -> Response:
    who = official(request)
    body = await json_object(request)
    decision = await run_in_threadpool(
        _desk(request).moderate, tenant(request), cid, mid, body.get("decision"),
        body.get("note"), who)
    return json_response({"id": mid, "moderation": decision})


@router.get("/{cid}/summary", summary="Comments per position and planning zone (officials)")
async def summary(request: Request, cid: str) -> Response:
    official(request)
    return json_response(await run_in_threadpool(_desk(request).summary, tenant(request),
                                                 cid))


@router.get("/{cid}/comments/{mid}/author",
            summary="Who wrote a comment (officials; every read is logged)")
async def author(request: Request, cid: str, mid: str) -> Response:
    official(request, "read-personal")
    found = await run_in_threadpool(_desk(request).author, tenant(request), cid, mid)
    return json_response(found, headers={"Cache-Control": "no-store"})


@router.delete("/{cid}/comments/{mid}/author", status_code=204,
               summary="Forget who wrote a comment, on their request (officials only)")
async def forget_author(request: Request, cid: str, mid: str) -> Response:
    official(request, "erase-personal")
    if not await run_in_threadpool(_desk(request).erase_author, tenant(request), cid, mid):
        raise ResourceNotFound(f"Comment {mid} holds no personal data (any more)")
    return Response(status_code=204)
