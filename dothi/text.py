"""Text as people search it."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower case without diacritics, so that "Da Nang" finds "Đà Nẵng": "Đà Nẵng" ->
    "da nang" (đ has no decomposition of its own, so it is mapped first)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
