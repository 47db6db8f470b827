"""Running a simulation: provision, then publish every device's measures at a steady pace.

Pacing: with N devices each publishing r times per second, the loop owns N*r publication
slots per second, slot j falling at t0 + j/(N*r) and going to device j mod N (the devices in a
seeded shuffled order). Each device thus publishes exactly every 1/r seconds, devices' phases
are spread evenly over the period, and the load on the server is flat rather than a burst per
period. The loop sleeps until the next slot (at least a few milliseconds, sending the slots
that fell due meanwhile together); if it falls more than a whole period behind, the backlog
is dropped and counted as skipped rather than sent in a burst.

``--duration`` and ``--rate`` are wall-clock quantities; ``--speed`` only makes simulated time
run faster (at speed 60 every real minute of publishing shows an hour of the city's life).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

from dothi.simulate import codec
from dothi.simulate.city import City, Device, build_population, get_city, spread
from dothi.simulate.provision import (
    Provisioned,
    Provisioner,
    ProvisioningError,
    device_payload,
    group_payloads,
)
from dothi.simulate.transport import DryRunSink, HttpSink, LineWriter, MqttLink, Sink, Stats
from dothi.simulate.world import SimClock, World

MIN_SLEEP = 0.005  # below this, sleeping costs more than it paces


@dataclass
class SimulationOptions:
    city: str | City = "danang"  # a slug of CITIES, or a City of one's own
    devices: int = 264  # exactly the demo city's sensors
    rate: str = "1/min"  # per device: N/s, N/min or N/h
    url: str = "http://127.0.0.1:1026"
    mqtt: str = "mqtt://127.0.0.1:1883"
    transport: str = "mqtt"  # mqtt or http
    speed: float = 1.0  # simulated seconds per wall-clock second
    duration: float | None = None  # wall-clock seconds; None runs until stopped
    seed: int = 1
    tenant: str | None = None  # NGSILD-Tenant header; None for the default tenant
    # An API key that may provision devices (a city administrator's, dothi keys add), sent
    # as the bearer token of every request to the server; None sends none.
    api_key: str | None = None
    qos: int = 0
    start: datetime | None = None  # simulated start; None is now in the city's time zone
    provision: bool = True
    dry_run: bool = False  # no network at all: measures are written to ``dry_run_out``
    wait_for_server: float = 0.0  # seconds to keep retrying provisioning while it starts
    http_workers: int = 8


@dataclass
class SimulationReport:
    devices: int
    groups: Provisioned = field(default_factory=Provisioned)
    provisioned: Provisioned = field(default_factory=Provisioned)
    sent: int = 0
    errors: int = 0
    commands: int = 0
    command_errors: int = 0
    skipped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    sim_start: datetime | None = None
    sim_end: datetime | None = None
    last_error: str | None = None
    failure: str | None = None  # why the simulation could not run at all


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600}


def parse_rate(text: str) -> float:
    """Messages per device per second from ``N/s``, ``N/min`` or ``N/h``."""
    match = _RATE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"rate must look like 1/min, 0.5/s or 12/h, not {text!r}")
    return float(match.group(1)) / _UNIT_SECONDS[match.group(2)]


class Simulation:
    """A simulation run: blocking with :meth:`run`, or in the background with :meth:`start`
    and :meth:`stop` (as ``dothi demo`` does beside its server)."""

    def __init__(self, options: SimulationOptions, console: Console | None = None,
                 dry_run_out: LineWriter | None = None) -> None:
        if options.transport not in ("mqtt", "http"):
            raise ValueError("transport must be mqtt or http")
        if options.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if options.devices < 1:
            raise ValueError("devices must be at least 1")
        self.options = options
        self.rate = parse_rate(options.rate)
        self.city = options.city if isinstance(options.city, City) else get_city(options.city)
        self.devices = build_population(self.city, options.devices, options.seed)
        self.world = World(self.city, self.devices, options.seed)
        self.console = console
        self.dry_run_out = dry_run_out
        self.stats = Stats()
        self.report = SimulationReport(devices=len(self.devices))
        self.clock: SimClock | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self._samples: deque[tuple[float, int]] = deque()

    # -- programmatic control ---------------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread; :meth:`stop` ends it and returns the report."""
        self._thread = threading.Thread(target=self.run, name="dothi-simulate", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> SimulationReport:
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> SimulationReport:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until provisioning is done and the broker connected, so commands are
        answered (or until the run failed: see ``report.failure``)."""
        return self._ready.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> SimulationReport:
        """Provision, then publish until the duration elapses, :meth:`stop` or Ctrl-C."""
        self._started_at = time.monotonic()
        sink: Sink | None = None
        try:
            if self.options.provision and not self.options.dry_run:
                self._provision()
            self.clock = SimClock(self.options.start, self.options.speed, self.city.tz)
            self.report.sim_start = self.clock.start
            sink = self._open_sink()
            self._ready.set()
            self._publish(sink)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a forever-run ends: a clean stop, not an error
        except Exception as exc:  # reported, and re-raised for blocking callers
            self.report.failure = str(exc)
            if self._thread is None:
                raise
        finally:
            self._ready.set()  # also when the run failed: waiters then read report.failure
            if sink is not None:
                sink.close()
            self._finish()
        return self.report

    def _finish(self) -> None:
        r, s = self.report, self.stats
        r.sent, r.errors, r.commands, r.command_errors = s.sent, s.errors, s.commands, \
            s.command_errors
        r.skipped, r.last_error, r.by_kind = s.skipped, s.last_error, dict(s.by_kind)
        r.wall_seconds = time.monotonic() - self._started_at
        r.sim_end = self.clock.now() if self.clock else None

    def _http(self) -> httpx.Client:
        headers = {"NGSILD-Tenant": self.options.tenant} if self.options.tenant else {}
        if self.options.api_key:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        return httpx.Client(base_url=self.options.url, headers=headers, timeout=30.0)

    def _provision(self) -> None:
        groups = group_payloads(self.city, self.devices, self.options.transport, self.rate)
        payloads = [device_payload(d) for d in self.devices]
        deadline = time.monotonic() + self.options.wait_for_server
        with self._http() as client:
            provisioner = Provisioner(client)
            while True:
                try:
                    self.report.groups = provisioner.groups(groups)
                    break
                except ProvisioningError:
                    # ``dothi demo`` starts us beside a server that may still be starting.
                    if time.monotonic() >= deadline or self._stop.wait(0.5):
                        raise
            if self.console is None:
                self.report.provisioned = provisioner.devices(payloads)
                return
            with Progress(TextColumn("[bold]Provisioning devices"), BarColumn(),
                          MofNCompleteColumn(), console=self.console, transient=True) as bar:
                task = bar.add_task("devices", total=len(payloads))
                self.report.provisioned = provisioner.devices(
                    payloads, lambda n: bar.advance(task, n))
            p = self.report.provisioned
            self.console.print(
                f"Provisioned {len(groups)} service groups ({self.report.groups.existing} "
                f"already there) and {len(payloads)} devices ({p.created} new, {p.existing} "
                f"already there, {len(p.failed)} failed).", markup=False, soft_wrap=True)
            for failure in p.failed[:10]:
                self.console.print(f"  {failure}", style="red", markup=False, soft_wrap=True)

    def _open_sink(self) -> Sink:
        if self.options.dry_run:
            return DryRunSink(self.stats, self.dry_run_out)
        if self.options.transport == "http":
            return HttpSink(self.options.url, self.options.tenant, self.stats,
                            self.options.http_workers)
        return MqttLink(self.options.mqtt, f"dothi-sim-{self.options.seed}-{os.getpid()}",
                        self.options.qos, self.stats, self.devices, self._command)

    def _command(self, device: Device, name: str, param: str) -> str | None:
        assert self.clock is not None  # commands only arrive once publishing has started
        return self.world.command(device, name, param, self.clock.now())

    def _publish(self, sink: Sink) -> None:
        assert self.clock is not None
        order = spread(self.devices, self.options.seed)
        per_second = len(order) * self.rate
        duration = self.options.duration
        # Slot j is due at j / per_second: those before the end of the run are all of them.
        total = math.ceil(duration * per_second) if duration is not None else None
        t0 = time.monotonic()
        slot = 0  # next publication slot
        live = self._live()
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - t0
                due = int(elapsed * per_second) + 1
                if total is not None:
                    due = min(due, total)
                if due - slot > len(order):  # a whole period behind: drop, do not burst
                    self.stats.skipped += due - slot - len(order)
                    slot = due - len(order)
                # Bounded batches keep Ctrl-C and stop() responsive under heavy load.
                for j in range(slot, min(due, slot + 2000)):
                    device = order[j % len(order)]
                    measures = self.world.measures(device, self.clock.now())
                    sink.send(device, codec.encode_measures(device.kind, measures))
                    slot = j + 1
                # Checked after sending, so the slots that fell due just before the end go out.
                if total is not None and duration is not None and (
                        slot >= total or elapsed >= duration):
                    self.stats.skipped += total - slot  # could not keep up with the rate
                    break
                wait = t0 + slot / per_second - time.monotonic()
                if wait > 0:
                    self._stop.wait(max(wait, MIN_SLEEP))
        finally:
            if live is not None:
                live.stop()
                if not live.console.is_terminal:  # rich leaves the last line unterminated
                    live.console.line()

    # -- the status line --------------------------------------------------------------------

    def _live(self) -> Live | None:
        if self.console is None:
            return None
        # stdout is left alone: a dry run writes its messages there.
        live = Live(console=self.console, get_renderable=self.status_line,
                    refresh_per_second=4, transient=False, redirect_stdout=False)
        live.start()
        return live

    def status_line(self) -> Text:
        s = self.stats
        # The rate over the last few seconds, not since start: it should show a stall.
        now = time.monotonic()
        self._samples.append((now, s.sent))
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        (t_old, sent_old) = self._samples[0]
        rate = (s.sent - sent_old) / (now - t_old) if now > t_old else 0.0
        sim = self.clock.now().strftime("%Y-%m-%d %H:%M") if self.clock else "-"
        line = Text()
        line.append(f"{self.city.name} {sim}", style="bold")
        line.append(f"  {len(self.devices)} devices  {s.sent} sent  "
                    f"{rate:.1f} msg/s  {s.commands} commands")
        line.append(f"  {s.errors} errors", style="red" if s.errors else "")
        if s.skipped:
            line.append(f"  {s.skipped} skipped", style="yellow")
        if s.last_error:
            line.append(f"  last: {s.last_error[:80]}", style="dim")
        return line


def simulate(options: SimulationOptions, console: Console | None = None,
             dry_run_out: LineWriter | None = None) -> SimulationReport:
    """Run a simulation to its end (duration, Ctrl-C); raises if it cannot run at all."""
    return Simulation(options, console, dry_run_out).run()
