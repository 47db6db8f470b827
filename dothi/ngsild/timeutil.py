"""Timestamps as NGSI-LD carries them: UTC, ISO 8601, millisecond precision, ``Z``."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from dothi.errors import BadRequestData


def now_iso() -> str:
    return format_iso(datetime.now(timezone.utc))


def format_iso(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# Already-UTC timestamps need no datetime round trip (the common case, and a hot path).
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def normalize_datetime(text: object, what: str = "DateTime") -> str:
    """Parse any ISO 8601 date-time with zone and return the stored form.

    Stored timestamps share one format so that string comparison (``q``, ordering) is
    chronological.
    """
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be an ISO 8601 string, got {text!r}")
    match = _UTC.fullmatch(text)
    if match is not None and _plausible(text):
        frac = match.group(1)
        millis = (frac[1:] + "00")[:3] if frac else "000"
        return f"{text[:19]}.{millis}Z"
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{what} is not a valid ISO 8601 date-time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return format_iso(dt)


def _plausible(text: str) -> bool:
    month, day = int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60 \
        and (day <= 28 or _valid_day(text))


def _valid_day(text: str) -> bool:
    try:
        datetime(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True
