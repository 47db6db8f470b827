"""Coverage-guided fuzzing of the q, scopeQ and geo-query parsers with atheris, for as long
as one wants (``tests/ngsild/test_fuzz.py`` holds the properties and runs them a fixed
number of times in the suite):

    pip install atheris
    python fuzz/parsers.py -atheris_runs=1000000        # from the repository's root

A crash prints the input that caused it and leaves it in a crash-* file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports():
    from tests.ngsild.test_fuzz import geoq_property, q_property, scope_q_property


def one(data: bytes) -> None:
    given = atheris.FuzzedDataProvider(data)
    kind = given.ConsumeIntInRange(0, 2)
    if kind == 0:
        q_property(given.ConsumeUnicodeNoSurrogates(200))
    elif kind == 1:
        scope_q_property(given.ConsumeUnicodeNoSurrogates(100))
    else:
        georel = given.ConsumeUnicodeNoSurrogates(30)
        geometry = given.PickValueInList(["Point", "LineString", "Polygon", "MultiPolygon"])
        geoq_property(georel, geometry, given.ConsumeUnicodeNoSurrogates(300))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
