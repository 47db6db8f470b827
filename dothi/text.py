"""Text as people search it."""

from __future__ import annotations

import unicodedata
from typing import Any

LANGUAGES = ("vi", "en")


def fold(text: str) -> str:
    """Lower case without diacritics, so that "Da Nang" finds "Đà Nẵng": "Đà Nẵng" ->
    "da nang" (đ has no decomposition of its own, so it is mapped first)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def bilingual(value: Any, where: str) -> dict[str, str]:
    """A text that people read in Vietnamese and English, as a city's file gives it
    ({vi: ..., en: ...}); ValueError naming ``where`` if it is anything else (an unquoted
    comma in a YAML flow mapping, say, splits it into more keys)."""
    if not isinstance(value, dict) or set(value) != set(LANGUAGES) or not all(
            isinstance(value[lang], str) and value[lang].strip() for lang in LANGUAGES):
        raise ValueError(f"{where}: expected a text in Vietnamese and English "
                         f"{{vi: ..., en: ...}}, got {value!r}")
    return {lang: value[lang].strip() for lang in LANGUAGES}
