"""``dothi backup`` and ``dothi restore``: a backup taken while writers go on is one
consistent snapshot (checked against that snapshot, and restored whole into a fresh
instance of the other backend); backups are rotated; a restore refuses a database that is
not empty."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from dothi.app import build_broker
from dothi.settings import Settings
from dothi.store import audit
from dothi.store.base import DEFAULT_TENANT, open_store
from dothi.store.migrate import compare, copy_store
from tests.conftest import PostgresDatabases, streetlight
from tests.store.test_migrate import build_instance, migrate


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def entities_in(folder: Path) -> int:
    return int(orjson.loads((folder / "manifest.json").read_bytes())["counts"]["entities"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_online_backup_is_one_snapshot_while_writers_go_on(
        backend: str, tmp_path: Path, pg: PostgresDatabases) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'live.db'}"
    source = sqlite_url if backend == "sqlite" else pg.url("live")
    other = pg.url("restored") if backend == "sqlite" else \
        f"sqlite:///{tmp_path / 'restored.db'}"
    build_instance(source)
    broker = build_broker(Settings(database_url=source, context_fetch=False))
    written = 0
    some, stop = threading.Event(), threading.Event()

    def writer() -> None:
        nonlocal written
        while not stop.is_set():
            broker.create(DEFAULT_TENANT, streetlight(1000 + written), broker.resolver.core)
            written += 1
            if written == 20:
                some.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert some.wait(60)
        before = written
        copied = copy_store(source, f"export:{tmp_path / 'backup'}", in_snapshot=True)
        after = written
    finally:
        stop.set()
        thread.join()
        broker.store.close()
    assert after > before, "the writer went on during the backup"
    assert copied.checks and all(c.ok for c in copied.checks), copied.checks
    # The snapshot holds the 14 entities of the instance and the lamps written before it.
    assert 14 + before <= entities_in(tmp_path / "backup") <= 14 + after

    done = cli("restore", str(tmp_path / "backup"), "--db", other)
    assert done.returncode == 0, done.stderr
    assert "Restored" in done.stderr and "source and target agree" in done.stderr
    assert all(c.ok for c in compare(f"export:{tmp_path / 'backup'}", other))
    # The audit log came along as it was: the same chain, which still verifies, and
    # the restore itself added nothing to it.
    restored = open_store(other)
    try:
        chain = audit.verify(audit.stored(restored))
    finally:
        restored.close()
    manifest = orjson.loads((tmp_path / "backup" / "manifest.json").read_bytes())
    assert chain.ok and chain.rows == manifest["counts"]["audit rows"] > 20


def test_backups_are_rotated_and_a_restore_needs_an_empty_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'city.db'}"
    build_instance(db)
    for _ in range(3):
        done = cli("backup", str(tmp_path / "backups"), "--db", db, "--keep", "2")
        assert done.returncode == 0, done.stderr
        assert "Backed up 14 entities" in done.stderr
    kept = sorted((tmp_path / "backups").iterdir())
    assert len(kept) == 2 and all(entities_in(k) == 14 for k in kept)
    assert "Removed the older backup" in done.stderr

    done = cli("restore", str(kept[-1]), "--db", db)
    assert done.returncode == 2 and "is not empty" in done.stderr
    done = migrate(f"export:{kept[-1]}", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert done.returncode == 0, done.stderr

    done = cli("backup", str(tmp_path / "backups"), "--db", db, "--every", "P1M")
    assert done.returncode == 2 and "--every" in done.stderr
