"""The deterministic world model: what every simulated device measures at any instant.

Everything is a function of (seed, device, simulated time) plus the commands received so far,
so the world is unit-testable without a network and two runs with one seed agree:

* the sun (:mod:`.sun`) switches street lights at dusk and dawn, each light's photocell a
  little early or late;
* weather (:mod:`.weather`) makes rain events, temperature and humidity;
* traffic follows a demand curve with weekday peaks 07:00-08:30 and 16:30-18:30 (and the
  Vietnamese lunch-time trip home), slowed by rain;
* air quality follows traffic with a lag, builds up under the night-time inversion and is
  washed out by rain;
* water (:mod:`.hydrology`) integrates rain minus drainage; low streets flood; sluice gates
  drain the water behind them when opened;
* bins fill by day and are emptied by collection rounds; meters follow daily load curves
  (:mod:`.consumption`).

Noise comes from hashing (seed, device, quantity, time bucket), interpolated between buckets,
so readings wander smoothly however often a device publishes.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from dothi.simulate import consumption as cons
from dothi.simulate import geo, hydrology
from dothi.simulate.city import City, Device
from dothi.simulate.sun import solar_elevation
from dothi.simulate.weather import HOUR, Weather

GATE_REACH_M = 1500.0  # street gauges this close to a sluice gate drain through it


class SimClock:
    """Simulated time: ``start`` plus wall-clock time elapsed since creation times ``speed``."""

    def __init__(self, start: datetime | None, speed: float, tz: tzinfo) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = (start or datetime.now(tz)).astimezone(tz)
        self.speed = speed
        self._wall0 = _time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(_time.monotonic() - self._wall0) * self.speed)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def traffic_demand(local: datetime) -> float:
    """Traffic demand relative to a weekday peak (~1.0), at local time ``local``."""
    hour = local.hour + local.minute / 60 + local.second / 3600
    if local.weekday() < 5:
        day = _sigmoid((hour - 5.5) / 0.45) * _sigmoid((22.5 - hour) / 0.8)
        return (0.04 + 0.5 * day + 0.55 * _bump(hour, 7.6, 0.55) + 0.55 * _bump(hour, 17.5, 0.7)
                # Many people ride home for lunch and a nap: two small midday peaks.
                + 0.12 * _bump(hour, 11.2, 0.4) + 0.12 * _bump(hour, 13.3, 0.4))
    # Weekends: a later, flatter day and an evening outing to the beach and the night markets.
    day = _sigmoid((hour - 6.5) / 0.7) * _sigmoid((23.0 - hour) / 0.8)
    return 0.04 + 0.45 * day + 0.15 * _bump(hour, 10.0, 1.5) + 0.3 * _bump(hour, 18.7, 1.2)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _LightControl:
    switch: bool | None = None  # manual override, until the next automatic switching
    switch_ts: float = 0.0
    switch_auto: bool = False  # what the photocell said when the override came
    dim: float | None = None


class World:
    """Measures of every device of a city at any simulated instant, and their commands."""

    def __init__(self, city: City, devices: Iterable[Device] = (), seed: int = 1,
                 weather: Weather | None = None) -> None:
        self.city = city
        self.seed = seed
        self.tz = city.tz
        self.weather = weather or Weather(city.climate, seed, self.tz, city.extent())
        self._lights: dict[str, _LightControl] = {}
        self._gates: dict[str, hydrology.GateLog] = {}
        self._lock = threading.Lock()
        self._knobs: dict[str, dict[str, Any]] = {}
        self._gate_of: dict[str, str] = {}
        self.devices: dict[str, Device] = {}
        self._models: dict[str, Callable[[Device, float], dict[str, Any]]] = {
            "streetlight": self._streetlight, "waste": self._waste, "traffic": self._traffic,
            "energy": self._energy, "air": self._air, "flood": self._flood, "rain": self._rain,
            "gate": self._gate}
        self.add(devices)

    def add(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self.devices[device.device_id] = device
        gates = [d for d in self.devices.values() if d.kind.slug == "gate"]
        for device in self.devices.values():
            if device.kind.slug == "flood" and not device.params.get("river") and gates:
                nearest = min(gates, key=lambda g: geo.distance_m(g.point, device.point))
                if geo.distance_m(nearest.point, device.point) <= GATE_REACH_M:
                    self._gate_of[device.device_id] = nearest.device_id

    # -- randomness -----------------------------------------------------------------------

    def noise(self, device: Device, quantity: str, ts: float, period_s: float) -> float:
        """Smooth noise in [-1, 1]: hashed values every ``period_s``, eased in between."""
        bucket, frac = divmod(ts / period_s, 1.0)
        a = self._hash(device.device_id, quantity, int(bucket))
        b = self._hash(device.device_id, quantity, int(bucket) + 1)
        eased = frac * frac * (3 - 2 * frac)
        return a + (b - a) * eased

    def _hash(self, *parts: object) -> float:
        digest = hashlib.blake2b(f"{self.seed}:{parts}".encode(), digest_size=8).digest()
        return int.from_bytes(digest) / 2**63 - 1.0

    def knobs(self, device: Device) -> dict[str, Any]:
        """A device's own constants (its photocell, how fast its bin fills...), drawn once."""
        knobs = self._knobs.get(device.device_id)
        if knobs is None:
            knobs = _draw_knobs(device, random.Random(f"{self.seed}:{device.device_id}:knobs"))
            self._knobs[device.device_id] = knobs
        return knobs

    # -- the public surface -----------------------------------------------------------------

    def measures(self, device: Device, t: datetime) -> dict[str, Any]:
        """What ``device`` reports at ``t``, keyed by attribute name."""
        return self._models[device.kind.slug](device, t.timestamp())

    def command(self, device: Device, name: str, param: str, t: datetime) -> str | None:
        """Apply a command; returns None when done, or why it failed."""
        ts = t.timestamp()
        if name not in device.kind.commands:
            return f"unknown command {name}"
        if device.kind.slug == "gate":
            if param not in ("open", "close", "closed"):
                return "gate takes open or close"
            with self._lock:
                log = self._gates.setdefault(device.device_id, hydrology.GateLog())
            log.set(ts, param == "open")
            return None
        if device.params.get("status") in ("defectiveLamp", "brokenLantern"):
            return f"lamp out of order ({device.params['status']})"
        with self._lock:
            control = self._lights.setdefault(device.device_id, _LightControl())
            if name == "dim":
                try:
                    level = float(param)
                except ValueError:
                    level = math.nan
                if not 0.0 <= level <= 1.0:
                    return "dim takes a level between 0 and 1"
                control.dim = level
            elif param in ("on", "off"):
                control.switch, control.switch_ts = param == "on", ts
                control.switch_auto = self._photocell(device, ts)
            else:
                return "switch takes on or off"
        return None

    def gate_open(self, gate_id: str, ts: float) -> bool:
        log = self._gates.get(gate_id)
        return log.is_open(ts) if log else False

    def gate_factor(self, gate_id: str, ts: float) -> float:
        log = self._gates.get(gate_id)
        return log.factor(ts) if log else 1.0

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def wetness(self, ts: float) -> float:
        return self.weather.wetness(self.local(ts).month)

    # -- street lights ----------------------------------------------------------------------

    def _photocell(self, device: Device, ts: float) -> bool:
        elevation = solar_elevation(datetime.fromtimestamp(ts, UTC), device.point[1],
                                    device.point[0])
        return elevation < self.knobs(device)["photocell_deg"]

    def lights_on(self, device: Device, ts: float) -> bool:
        auto = self._photocell(device, ts)
        control = self._lights.get(device.device_id)
        # A manual switch holds until the photocell next changes its mind (or for 16 h).
        if (control is not None and control.switch is not None
                and control.switch_auto == auto and 0 <= ts - control.switch_ts < 16 * HOUR):
            return control.switch
        return auto

    def _streetlight(self, device: Device, ts: float) -> dict[str, Any]:
        status = device.params.get("status", "ok")
        control = self._lights.get(device.device_id)
        level = control.dim if control is not None and control.dim is not None else 1.0
        local = self.local(ts)
        if device.params.get("pilot_dimming") and (local.hour >= 23 or local.hour * 60
                                                   + local.minute < 270):
            level = min(level, 0.5)  # the energy-saving pilot dims late-night lighting
        on = (self.lights_on(device, ts) and level > 0
              and status not in ("defectiveLamp", "brokenLantern"))
        if not on:
            return {"powerState": "off", "illuminanceLevel": 0.0, "powerConsumption": 0.0,
                    "status": status}
        rated = float(device.params.get("rated_w", 100.0))
        # LED drivers are not linear: about a tenth of the rated power is overhead.
        watts = rated * (0.1 + 0.9 * level) * (1 + 0.015 * self.noise(device, "p", ts, 600))
        return {"powerState": "on" if level >= 0.999 else "low",
                "illuminanceLevel": round(level, 2), "powerConsumption": round(watts, 1),
                "status": status}

    # -- waste ------------------------------------------------------------------------------

    def _waste(self, device: Device, ts: float) -> dict[str, Any]:
        knobs = self.knobs(device)
        site: cons.BinSite = knobs["bin"]
        emptied = cons.last_emptied(
            ts, site, self.tz,
            lambda at: self._hash(device.device_id, "skip", int(at)) < -0.86)  # ~7 % missed
        fill = cons.bin_fill(ts, emptied, site, self.tz)
        day = self.local(ts).toordinal()
        roll = self._hash(device.device_id, "status", day)
        status = "lidOpen" if roll > 0.97 else "dropped" if roll < -0.995 else "ok"
        organic = device.params.get("waste_kind") == "organic"
        heat = (1.0 + 4.0 * fill) if organic else 0.4  # decomposition warms organic waste
        temperature = (self.weather.temperature(ts, device.point) + heat
                       + 0.3 * self.noise(device, "t", ts, 900))
        return {"fillingLevel": round(fill, 3), "temperature": round(temperature, 1),
                "status": status,
                "batteryLevel": round(cons.battery_level(ts, *knobs["battery"]), 3),
                "dateLastEmptying": iso(emptied)}

    # -- traffic ----------------------------------------------------------------------------

    def _traffic(self, device: Device, ts: float) -> dict[str, Any]:
        knobs = self.knobs(device)
        rain = self.weather.rain(ts, device.point)
        load = (traffic_demand(self.local(ts)) * knobs["site_factor"]
                * (1 + 0.06 * self.noise(device, "x", ts, 300))
                * (1 - min(0.2, 0.01 * rain)))  # heavy rain keeps some trips at home
        # Beyond capacity the flow breaks down: fewer vehicles get through, not more.
        flow = min(load, 1.0) * (1 - 0.25 * max(0.0, load - 1.0))
        intensity = round(knobs["capacity_5min"] * flow)
        occupancy = min(0.95, 0.04 + 0.55 * load * load + min(0.05, 0.005 * rain))
        free = float(device.params.get("free_speed_kmh", 50.0))
        speed = (free / (1 + 1.2 * load**4) * (1 - min(0.25, 0.012 * rain))
                 * (1 + 0.04 * self.noise(device, "v", ts, 300)))
        return {"intensity": intensity, "occupancy": round(occupancy, 3),
                "averageVehicleSpeed": round(speed, 1), "congested": speed < 0.45 * free,
                "dateObserved": iso(ts)}

    # -- air --------------------------------------------------------------------------------

    def lagged_traffic(self, ts: float, tau_min: float) -> float:
        """Traffic demand seen through a first-order lag: pollution builds and clears slowly."""
        steps = int(4 * tau_min / 15) + 1
        weights = [math.exp(-15 * k / tau_min) for k in range(steps)]
        values = [traffic_demand(self.local(ts - 900 * k)) for k in range(steps)]
        return sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)

    def _air(self, device: Device, ts: float) -> dict[str, Any]:
        knobs = self.knobs(device)
        exposure = float(device.params.get("exposure", 0.5))
        local = self.local(ts)
        hour = local.hour + local.minute / 60
        # Night-time inversion traps pollutants near the ground until the morning sun lifts it.
        inversion = 1 + 0.3 * (math.cos(2 * math.pi * (hour - 4) / 24) + 1) / 2
        washout = 0.4 + 0.6 * math.exp(
            -self.weather.rain_decayed(ts, device.point, tau_h=6.0, step_s=900.0) / 6.0)
        dry = 1 - self.wetness(ts)
        background = (12 + 8 * dry + knobs["background"]) * inversion
        pm25 = ((background + 30 * exposure * self.lagged_traffic(ts, 90)) * washout
                * (1 + 0.06 * self.noise(device, "pm", ts, 1200)))
        pm10 = pm25 * knobs["coarse_ratio"] * (1 + 0.05 * self.noise(device, "pm10", ts, 1200))
        no2 = ((8 + 45 * exposure * self.lagged_traffic(ts, 30)) * (0.6 + 0.4 * washout)
               * (1 + 0.08 * self.noise(device, "no2", ts, 600)))
        sun = max(0.0, math.sin(math.radians(
            solar_elevation(datetime.fromtimestamp(ts, UTC), device.point[1], device.point[0]))))
        # Ozone is made by sunlight and eaten by fresh NO from exhausts.
        o3 = max(3.0, 18 + 70 * sun * (0.7 + 0.3 * dry) - 0.35 * (no2 - 8))
        co = ((300 + 1100 * exposure * self.lagged_traffic(ts, 60)) * inversion
              * (1 + 0.05 * self.noise(device, "co", ts, 900)))
        return {"pm25": round(pm25, 1), "pm10": round(pm10, 1), "no2": round(no2, 1),
                "o3": round(o3, 1), "co": round(co / 1000, 3), **self._climate(device, ts)}

    def _climate(self, device: Device, ts: float) -> dict[str, Any]:
        temperature = (self.weather.temperature(ts, device.point)
                       + 0.3 * self.noise(device, "temp", ts, 1800))
        humidity = self.weather.humidity(ts, device.point) + 0.01 * self.noise(
            device, "rh", ts, 1800)
        return {"temperature": round(temperature, 1),
                "relativeHumidity": round(min(1.0, max(0.0, humidity)), 3),
                "dateObserved": iso(ts)}

    def _rain(self, device: Device, ts: float) -> dict[str, Any]:
        return {"precipitation": round(self.weather.rain_last_hour(ts, device.point), 1),
                **self._climate(device, ts)}

    # -- water ------------------------------------------------------------------------------

    def _flood(self, device: Device, ts: float) -> dict[str, Any]:
        knobs = self.knobs(device)
        params = device.params
        if params.get("river"):
            level = hydrology.river_stage(self.weather, ts, knobs["river"],
                                          (self.city.lon, self.city.lat), self.wetness(ts))
        else:
            level = hydrology.street_depth(self.weather, ts, knobs["street"], device.point)
            gate = self._gate_of.get(device.device_id)
            if gate is not None:
                level *= self.gate_factor(gate, ts)
        level = max(0.0, level + 0.005 * self.noise(device, "lvl", ts, 300))
        reference = float(params.get("reference_m", 3.0))
        return {"currentLevel": round(level, 3),
                "measuredDistance": round(reference - level, 3),
                "floodLevelStatus": hydrology.flood_status(
                    level, float(params.get("alert_m", 0.2)), float(params.get("danger_m", 0.4))),
                "batteryLevel": round(cons.battery_level(ts, *knobs["battery"]), 3),
                "observationDateTime": iso(ts)}

    def _gate(self, device: Device, ts: float) -> dict[str, Any]:
        depth = hydrology.street_depth(self.weather, ts, self.knobs(device)["street"],
                                       device.point)
        # A little water always stands in the culvert behind a gate.
        level = 0.05 + depth * self.gate_factor(device.device_id, ts)
        return {"gateState": "open" if self.gate_open(device.device_id, ts) else "closed",
                "waterLevel": round(level, 3), "dateObserved": iso(ts)}

    # -- energy -----------------------------------------------------------------------------

    def _energy(self, device: Device, ts: float) -> dict[str, Any]:
        meter: cons.Meter = self.knobs(device)["meter"]
        temps = self.city.climate.temperature_c
        power, energy = cons.meter_reading(meter, self.local(ts), lambda m: temps[m - 1])
        power *= 1 + 0.05 * self.noise(device, "w", ts, 120)
        return {"totalActivePower": round(power, 1),
                "totalActiveEnergyImport": round(energy, 3),
                "frequency": round(50 + 0.03 * self.noise(device, "hz", ts, 60), 3),
                "dateObserved": iso(ts)}


def _draw_knobs(device: Device, rng: random.Random) -> dict[str, Any]:
    slug = device.kind.slug
    if slug == "streetlight":
        # Photocells switch at slightly different light levels: a few minutes either way.
        return {"photocell_deg": rng.uniform(-2.0, 0.5)}
    if slug == "waste":
        origin = device.params.get("origin", "household")
        low, high = {"hostelry": (0.5, 1.1), "municipal": (0.3, 0.7)}.get(origin, (0.3, 0.8))
        rate = rng.uniform(low, high) * (240 / float(device.params.get("capacity_l", 240))) ** 0.3
        # Đà Nẵng collects at night: crews start between 19:00 and 22:00 and work their route.
        return {"bin": cons.BinSite(fill_per_day=rate, round_hour=rng.uniform(19.0, 25.5) % 24,
                                    twice_daily=rate > 0.8, residual=rng.uniform(0.0, 0.04)),
                "battery": (rng.uniform(700, 1500), rng.random())}
    if slug == "traffic":
        return {"site_factor": rng.uniform(0.6, 1.08), "capacity_5min": rng.uniform(180, 360)}
    if slug == "air":
        return {"background": rng.uniform(-2.0, 3.0), "coarse_ratio": rng.uniform(1.5, 1.9)}
    if slug in ("flood", "gate"):
        alert = float(device.params.get("alert_m", 0.2))
        return {"river": hydrology.RiverSite(alert, rng.uniform(0.15, 0.35)),
                "street": hydrology.StreetSite(rng.uniform(0.4, 1.6), rng.uniform(8.0, 20.0),
                                               rng.uniform(1.5, 3.0)),
                "battery": (rng.uniform(700, 1500), rng.random())}
    if slug == "energy":
        building = device.params.get("building", "residential")
        low, high = {"commercial": (60, 400), "public": (100, 600)}.get(building, (6, 14))
        daily = rng.uniform(low, high)
        return {"meter": cons.Meter(building, daily, round(daily * rng.uniform(30, 1500), 1),
                                    (datetime(2024, 1, 1) + timedelta(days=rng.randrange(700)))
                                    .date())}
    return {}
