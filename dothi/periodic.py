"""A daemon thread that runs one job every so many seconds until stopped, and survives
the job's failures: a store that is away (a DothiError) is a warning and the job runs
again next time; anything else is logged with its traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dothi.errors import DothiError

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, job: Callable[[], None],
                 failed: str) -> None:
        """``failed`` says, in the log, what did not happen when ``job`` failed."""
        self.name = name
        self.interval = interval
        self.job = job
        self.failed = failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.job()
            except DothiError as exc:  # the store is away: next time
                log.warning("%s: %s", self.failed, exc.detail)
            except Exception:  # noqa: BLE001 - the thread must survive
                log.exception(self.failed)
