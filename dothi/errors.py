"""One error hierarchy for the whole platform.

Each error carries its HTTP status and its NGSI-LD problem type (ETSI GS CIM 009 V1.9.1,
clause 5.5.2); one handler in ``dothi.api`` renders them as RFC 9457 problem details.
"""

from __future__ import annotations

from typing import Any

NGSI_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


class DothiError(Exception):
    """Base of every error that should reach a client as problem details."""

    status = 500
    problem = "InternalError"

    def __init__(self, detail: str, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.title = title or self.default_title()
        self.extra = extra

    @classmethod
    def default_title(cls) -> str:
        return cls.problem

    @property
    def type_uri(self) -> str:
        return NGSI_ERRORS + self.problem

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidRequest(DothiError):
    """The request is syntactically wrong (not JSON, bad parameter combination...)."""

    status = 400
    problem = "InvalidRequest"


class BadRequestData(DothiError):
    """The request is well formed JSON but its content breaks the NGSI-LD rules."""

    status = 400
    problem = "BadRequestData"


def only_members(body: dict[str, Any], allowed: set[str], hint: str = "") -> None:
    """Refuse a body of the platform's own APIs that has members other than ``allowed``;
    ``hint`` ends the message (what to give instead)."""
    unknown = set(body) - allowed
    if unknown:
        raise BadRequestData(f"Unknown members {sorted(unknown)}{hint}")


class ResourceNotFound(DothiError):
    status = 404
    problem = "ResourceNotFound"


class AlreadyExists(DothiError):
    status = 409
    problem = "AlreadyExists"


class Conflict(DothiError):
    """A registration would take over what another registration or this broker holds."""

    status = 409
    problem = "Conflict"


class LoopDetected(DothiError):
    """A forwarded request came back to this broker (its Via header names us)."""

    status = 508
    problem = "LoopDetected"


class OperationNotSupported(DothiError):
    status = 422
    problem = "OperationNotSupported"


class LdContextNotAvailable(DothiError):
    status = 503
    problem = "LdContextNotAvailable"


class UnsupportedMediaType(DothiError):
    """Wrong ``Content-Type``; NGSI-LD has no problem type of its own for it."""

    status = 415
    problem = "InvalidRequest"


class NotAcceptable(DothiError):
    status = 406
    problem = "NotAcceptable"


class TooLarge(DothiError):
    status = 413
    problem = "RequestEntityTooLarge"


class TooManyResults(DothiError):
    status = 403
    problem = "TooManyResults"


class TooComplexQuery(DothiError):
    """A query that would cost the server too much (clause 5.5.2), e.g. a regular
    expression that backtracks without end."""

    status = 403
    problem = "TooComplexQuery"


class NotImplementedYet(DothiError):
    status = 501
    problem = "NoMultiTenantSupport"


class InternalError(DothiError):
    status = 500
    problem = "InternalError"


class PlatformError(DothiError):
    """An error with no NGSI-LD problem type of its own: its type is dothi's,
    ``urn:dothi:errors:<problem>``."""

    @property
    def type_uri(self) -> str:
        return "urn:dothi:errors:" + self.problem


class StoreUnavailable(PlatformError):
    """The database cannot be reached (restarting, network): nothing was changed, and the
    request may be repeated."""

    status = 503
    problem = "StoreUnavailable"


class NotAuthenticated(PlatformError):
    """No credentials, or credentials that identify no one."""

    status = 401
    problem = "Unauthorized"


class Forbidden(PlatformError):
    """Known credentials that do not allow this."""

    status = 403
    problem = "Forbidden"


class TooManyRequests(PlatformError):
    """A client over its limit; it may try again later."""

    status = 429
    problem = "TooManyRequests"


class NonexistentTenant(DothiError):
    status = 404
    problem = "NonexistentTenant"


class RemoteError(DothiError):
    """A context source refused a forwarded request; carries the source's problem."""

    def __init__(self, problem: dict[str, Any], source: str) -> None:
        kind = str(problem.get("type", "")).rsplit("/", 1)[-1] or "InternalError"
        super().__init__(str(problem.get("detail") or problem.get("title") or kind),
                         title=str(problem.get("title") or kind))
        self.status = int(problem.get("status") or 500)
        self.problem = kind
        self.source = source


class PartialSuccess(Exception):
    """A distributed write that succeeded in some places and failed in others: answered
    207 with a BatchOperationResult (clause 5.2.17)."""

    def __init__(self, success: list[str], errors: list[tuple[str, DothiError]]) -> None:
        super().__init__("partially successful")
        self.success = success
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"success": self.success,
                "errors": [{"entityId": eid, "error": err.to_problem()}
                           for eid, err in self.errors]}
