"""SQLite's reader connections live as long as the threads that use them: the server's
worker threads come and go, and a store that kept every reader it ever made (each with
its page cache) grew by 1.9 GB in an hour of ``bench/soak.py``."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from dothi.store.sqlite import SQLiteStore


def test_a_reader_goes_with_its_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "readers.db")
    try:
        for _ in range(20):
            worker = threading.Thread(target=store.get, args=("t", "urn:x:1"))
            worker.start()
            worker.join()
        gc.collect()
        assert len(store._readers) == 0
        store.get("t", "urn:x:1")
        store.get("t", "urn:x:2")  # a thread keeps its one reader
        assert len(store._readers) == 1
    finally:
        store.close()
