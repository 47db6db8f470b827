"""Timestamps as NGSI-LD carries them: UTC, ISO 8601, millisecond precision, ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

from dothi.errors import BadRequestData


def now_iso() -> str:
    return format_iso(datetime.now(timezone.utc))


def format_iso(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def normalize_datetime(text: object, what: str = "DateTime") -> str:
    """Parse any ISO 8601 date-time with zone and return the stored form.

    Stored timestamps share one format so that string comparison (``q``, ordering) is
    chronological.
    """
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be an ISO 8601 string, got {text!r}")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{what} is not a valid ISO 8601 date-time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return format_iso(dt)
