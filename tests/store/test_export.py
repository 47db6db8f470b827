"""``dothi export``: a whole instance leaves in open files (JSON Lines, readable without
dothi) and comes back into a fresh instance of either backend, which answers every
request as the original did, with the same attribute instance ids; an export into a
folder that holds anything, an import from a folder that is not an export and a damaged
file are refused with what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import PostgresDatabases
from tests.store.test_migrate import assert_same_answers, build_instance, instance_ids, migrate

CORE = "https://uri.etsi.org/ngsi-ld/"


def export(db: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", "export", str(folder),
                           "--db", db], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("direction", ["sqlite-postgresql", "postgresql-sqlite"])
def test_an_export_comes_back_whole_into_a_fresh_instance(
        direction: str, tmp_path: Path, pg: PostgresDatabases) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'city.db'}"
    source, target = (sqlite_url, pg.url("target")) if direction == "sqlite-postgresql" \
        else (pg.url("source"), sqlite_url)
    build_instance(source)
    folder = tmp_path / "export"
    done = export(source, folder)
    assert done.returncode == 0, done.stderr
    assert "source and target agree" in done.stderr and "Exported 14 entities" in done.stderr

    # The files are read without dothi: one JSON object per line.
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["format"] == "dothi-instance-export" and manifest["version"] == 1
    entities = [orjson.loads(line)
                for line in (folder / "entities.jsonl").read_bytes().splitlines()]
    assert len(entities) == manifest["counts"]["entities"] == 14
    lamp = next(e["entity"] for e in entities
                if e["entity"]["id"] == "urn:ngsi-ld:Streetlight:dn-3")
    assert lamp["type"] == [f"{CORE}default-context/Streetlight"]
    [state] = lamp[f"{CORE}default-context/powerState"]
    assert state["value"] == "off" and "createdAt" in state and "modifiedAt" in state
    instances = [orjson.loads(line)
                 for line in (folder / "instances.jsonl").read_bytes().splitlines()]
    assert len(instances) == manifest["counts"]["instances"]
    assert {i["attribute"] for i in instances} >= {f"{CORE}default-context/reading"}

    done = migrate(f"export:{folder}", target)
    assert done.returncode == 0, done.stderr
    assert "source and target agree" in done.stderr
    assert instance_ids(source) == instance_ids(target)
    assert_same_answers(source, target)


def test_refusals(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'city.db'}"
    build_instance(db)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("kept")
    done = export(db, full)
    assert done.returncode == 2 and "is not empty" in done.stderr
    assert (full / "notes.txt").read_text() == "kept" and len(list(full.iterdir())) == 1

    done = migrate(f"export:{tmp_path / 'nothing'}", f"sqlite:///{tmp_path / 'new.db'}")
    assert done.returncode == 2 and "manifest.json missing" in done.stderr

    good = tmp_path / "good"
    assert export(db, good).returncode == 0
    lines = (good / "entities.jsonl").read_bytes().splitlines()
    lines[3] = lines[3][:40]
    (good / "entities.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    done = migrate(f"export:{good}", f"sqlite:///{tmp_path / 'new.db'}")
    assert done.returncode == 1 and "entities.jsonl, line 4" in done.stderr
