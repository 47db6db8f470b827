"""What the programme's records are made of, checked as they come in: dates, texts, and
texts in Vietnamese and English. A bad value is a BadRequestData naming the field."""

from __future__ import annotations

from datetime import date
from typing import Any

from dothi.errors import BadRequestData


def parse_date(value: Any, name: str) -> date:
    if not isinstance(value, str):
        raise BadRequestData(f"{name} is a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequestData(f"{name} is a date, YYYY-MM-DD, not {value!r}") from None


def text(value: Any, name: str, limit: int = 2000) -> str:
    """A text of 1 to ``limit`` characters, trimmed."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise BadRequestData(f"{name} is a text of 1 to {limit:,} characters")
    return value.strip()


def optional_text(value: Any, name: str, limit: int = 2000) -> str | None:
    return None if value is None else text(value, name, limit)


def bilingual(value: Any, name: str, limit: int = 500) -> dict[str, str]:
    """A text in Vietnamese and English; English falls back on the Vietnamese."""
    if isinstance(value, str):
        vi = text(value, name, limit)
        return {"vi": vi, "en": vi}
    if isinstance(value, dict) and not set(value) - {"vi", "en"}:
        vi = text(value.get("vi"), f"{name}.vi", limit)
        en = value.get("en")
        return {"vi": vi, "en": vi if en is None or en == "" else text(en, f"{name}.en", limit)}
    raise BadRequestData(f'{name} is a text, or {{"vi": "…", "en": "…"}}')
