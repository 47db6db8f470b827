"""The national identifier of a registered record (Decree 269/2025 asks for unique ones):

    {province}-{register}-{year}-{number}-{check}      e.g. 48-DA-2026-00017-30

- ``province``: the two-digit code of the province or city that registers it (Đà Nẵng 48,
  the codes kept after the 2025 reform);
- ``register``: two letters: QH plan, DA project, CT smart building, KD smart urban area,
  TN controlled-testing zone;
- ``year``: the year it was registered;
- ``number``: its order in that province, register and year, from 00001, never reused;
- ``check``: two digits computed as an IBAN's (ISO 7064 MOD 97-10) over the rest, with
  letters A=10 ... Z=35, so that a mistyped identifier is caught rather than finding
  another record.

An identifier never changes: a record keeps it through its whole lifecycle."""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN = re.compile(r"(\d{2})-([A-Z]{2})-(\d{4})-(\d{5})-(\d{2})")


@dataclass(frozen=True)
class Identifier:
    province: str
    register: str
    year: int
    number: int

    def __str__(self) -> str:
        body = f"{self.province}-{self.register}-{self.year:04d}-{self.number:05d}"
        return f"{body}-{check_digits(body)}"


def check_digits(body: str) -> str:
    digits = "".join(str(int(c, 36)) for c in body if c != "-")
    return f"{98 - int(digits + '00') % 97:02d}"


def parse(text: str) -> Identifier:
    """The identifier written in ``text``; ValueError saying what is wrong with it."""
    found = PATTERN.fullmatch(text.strip().upper())
    if found is None:
        raise ValueError(f"{text!r} is not a registry identifier (like 48-DA-2026-00017-30)")
    province, register, year, number, check = found.groups()
    if check != check_digits(text.strip().upper()[:-3]):
        raise ValueError(f"{text!r}: its check digits do not match (mistyped?)")
    return Identifier(province, register, int(year), int(number))
