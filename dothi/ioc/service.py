"""The IOC side of one server process: the incident desk, the rule engine (told of every
write), and a thread that every ``DOTHI_IOC_ESCALATION_INTERVAL`` seconds escalates
overdue incidents (every process may: an escalation is checked again inside its write, so
two processes never escalate twice) and reloads the rules other processes changed."""

from __future__ import annotations

import logging
import threading

from dothi.broker.broker import Broker
from dothi.errors import DothiError
from dothi.ioc.cap import WarningDesk
from dothi.ioc.engine import RuleEngine
from dothi.ioc.incidents import IncidentDesk, Workflow
from dothi.settings import Settings

log = logging.getLogger(__name__)


class IocService:
    def __init__(self, broker: Broker, settings: Settings) -> None:
        workflow = Workflow.load(settings.ioc_workflow) if settings.ioc_workflow else None
        self.broker = broker
        self.desk = IncidentDesk(broker, workflow)
        self.engine = RuleEngine(broker, self.desk)
        self.warnings = WarningDesk(broker, settings.ioc_cap_sender)
        self.interval = settings.ioc_escalation_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.engine.reload()
        self.broker.write_listeners.append(self.engine.on_write)
        self.engine.start()
        self._thread = threading.Thread(target=self._run, name="dothi-ioc-escalation",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.engine.on_write in self.broker.write_listeners:
            self.broker.write_listeners.remove(self.engine.on_write)
        self.engine.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.engine.reload()
                self.desk.escalate()
            except DothiError as exc:  # the store is away: next time
                log.warning("incidents not escalated: %s", exc.detail)
            except Exception:  # noqa: BLE001 - the thread must survive
                log.exception("incidents not escalated")
