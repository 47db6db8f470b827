"""The IOC side of one server process: the incident desk, the rule engine (told of every
write), and a thread that every ``DOTHI_IOC_ESCALATION_INTERVAL`` seconds escalates
overdue incidents (every process may: an escalation is checked again inside its write, so
two processes never escalate twice) and reloads the rules other processes changed; one
that recomputes the stations' VN_AQI; and the live feed of the dashboards open on this
process."""

from __future__ import annotations

from dothi.broker.broker import Broker
from dothi.ioc.aqi import AqiKeeper
from dothi.ioc.cap import WarningDesk
from dothi.ioc.engine import RuleEngine
from dothi.ioc.incidents import IncidentDesk, Workflow
from dothi.periodic import Periodic
from dothi.settings import Settings
from dothi.web.live import LiveHub, Snapshots, load_layers


class IocService:
    def __init__(self, broker: Broker, settings: Settings) -> None:
        workflow = Workflow.load(settings.ioc_workflow) if settings.ioc_workflow else None
        self.broker = broker
        self.desk = IncidentDesk(broker, workflow)
        self.engine = RuleEngine(broker, self.desk)
        self.warnings = WarningDesk(broker, settings.ioc_cap_sender)
        self.snapshots = Snapshots(broker, self.desk, self.warnings,
                                   load_layers(settings.ioc_layers), lambda: self.engine.dropped)
        self.live = LiveHub(self.snapshots.build, settings.ioc_live_interval)
        self.aqi = AqiKeeper(broker)
        self.aqi_every = Periodic("dothi-ioc-aqi", settings.ioc_aqi_interval, self._aqi,
                                  "VN_AQI not recomputed") \
            if settings.ioc_aqi_interval > 0 else None
        self.every = Periodic("dothi-ioc-escalation", settings.ioc_escalation_interval,
                              self._every, "incidents not escalated")

    def start(self) -> None:
        self.engine.reload()
        self.broker.write_listeners.append(self.engine.on_write)
        self.broker.write_listeners.append(self.live.on_write)
        self.engine.start()
        self.every.start()
        if self.aqi_every is not None:
            self.aqi_every.start()

    def stop(self) -> None:
        self.every.stop()
        if self.aqi_every is not None:
            self.aqi_every.stop()
        for listener in (self.engine.on_write, self.live.on_write):
            if listener in self.broker.write_listeners:
                self.broker.write_listeners.remove(listener)
        self.engine.stop()

    def _every(self) -> None:
        self.engine.reload()
        self.desk.escalate()

    def _aqi(self) -> None:
        self.aqi.run()
