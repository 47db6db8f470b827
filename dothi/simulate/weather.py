"""Weather of the simulated city: rain events, temperature and humidity.

Rain is a marked point process. Each local day draws a Poisson number of events from a
generator seeded with (seed, date), so the weather at any instant is reproducible without
simulating the days before it. Monthly climate normals set the process: in dry months short
convective afternoon showers over a few kilometres; in wet months and the flood season
(Oct-Dec on the central coast) long stratiform rain over the whole city. Each event rises and
falls as sin^2 in time and fades as a Gaussian with distance from its centre.

Times inside this module are POSIX seconds (floats): the world model evaluates rain thousands
of times per second when it integrates water levels, and datetime arithmetic is too slow there.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from dothi.simulate import geo

HOUR = 3600.0


@dataclass(frozen=True)
class Climate:
    rain_mm: tuple[float, ...]  # monthly rainfall normals, January first
    temperature_c: tuple[float, ...]  # monthly mean air temperature
    humidity: tuple[float, ...]  # monthly mean relative humidity, 0..1
    flood_months: frozenset[int]  # months of long, city-wide rain
    diurnal_range_c: float = 7.0  # daily max minus min in a dry month


# Đà Nẵng, approximate 1991-2020 normals: a dry, hot summer and a very wet autumn when the
# north-east monsoon meets the Trường Sơn range.
DANANG_CLIMATE = Climate(
    rain_mm=(96, 33, 22, 27, 62, 87, 85, 104, 350, 613, 366, 199),
    temperature_c=(21.3, 22.3, 24.1, 26.2, 28.2, 29.2, 29.2, 28.9, 27.6, 25.9, 24.3, 22.2),
    humidity=(0.85, 0.85, 0.85, 0.83, 0.79, 0.76, 0.75, 0.77, 0.83, 0.86, 0.86, 0.86),
    flood_months=frozenset({10, 11, 12}),
)


@dataclass(frozen=True)
class RainEvent:
    start: float  # POSIX seconds
    duration: float  # seconds
    peak_mm_h: float
    centre: geo.Coord
    radius_m: float

    @property
    def end(self) -> float:
        return self.start + self.duration

    def intensity(self, ts: float, point: geo.Coord) -> float:
        if not self.start <= ts < self.end:
            return 0.0
        shape = math.sin(math.pi * (ts - self.start) / self.duration) ** 2
        d = geo.distance_m(point, self.centre)
        return self.peak_mm_h * shape * math.exp(-0.5 * (d / self.radius_m) ** 2)


@dataclass
class Weather:
    """Rain, temperature and humidity anywhere in a city at any instant.

    ``events`` replaces the stochastic process by a fixed list (for tests and scripted demos).
    """

    climate: Climate
    seed: int
    tz: tzinfo
    extent: tuple[float, float, float, float]  # (min lon, min lat, max lon, max lat)
    events: list[RainEvent] | None = None
    _days: dict[date, list[RainEvent]] = field(default_factory=dict, repr=False)

    # -- rain ---------------------------------------------------------------------------------

    def wetness(self, month: int) -> float:
        """0 for a dry month's showers, 1 for flood-season rain."""
        if month in self.climate.flood_months:
            return 1.0
        return min(1.0, max(0.0, (self.climate.rain_mm[month - 1] - 100.0) / 400.0))

    def day_events(self, day: date) -> list[RainEvent]:
        if self.events is not None:
            return []
        cached = self._days.get(day)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:rain:{day.isoformat()}")
        w = self.wetness(day.month)
        mean_hours, mean_peak = 1.5 + 4.5 * w, 10.0 + 5.0 * w
        coverage = 0.35 + 0.45 * w  # mean spatial factor at a point: big events cover more
        days_in_month = ((day.replace(day=28) + timedelta(days=4)).replace(day=1)
                         - timedelta(days=1)).day
        daily_mm = self.climate.rain_mm[day.month - 1] / days_in_month
        rate = daily_mm / (mean_peak / 2 * mean_hours * coverage)
        midnight = datetime.combine(day, time(0), tzinfo=self.tz).timestamp()
        x0, y0, x1, y1 = self.extent
        events = []
        for _ in range(_poisson(rng, rate)):
            # Convective showers build in the afternoon heat; monsoon rain comes at any hour.
            start_h = rng.uniform(0, 24) if w > 0.5 else rng.triangular(11, 21, 16)
            hours = rng.uniform(0.4, 1.6) * mean_hours
            radius = rng.uniform(0.7, 1.3) * (6_000 + 24_000 * w)
            events.append(RainEvent(
                start=midnight + start_h * HOUR, duration=hours * HOUR,
                peak_mm_h=min(90.0, rng.expovariate(1 / mean_peak)),
                centre=(rng.uniform(x0, x1), rng.uniform(y0, y1)), radius_m=radius))
        self._days[day] = events
        if len(self._days) > 64:  # a long run at high speed must not grow this forever
            self._days.pop(next(iter(self._days)))
        return events

    def events_between(self, t0: float, t1: float) -> list[RainEvent]:
        """Events overlapping [t0, t1]; events last under a day, so the day before suffices."""
        if self.events is not None:
            return [e for e in self.events if e.end > t0 and e.start < t1]
        first = datetime.fromtimestamp(t0, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(t1, self.tz).date()
        out: list[RainEvent] = []
        day = first
        while day <= last:
            out.extend(e for e in self.day_events(day) if e.end > t0 and e.start < t1)
            day += timedelta(days=1)
        return out

    def rain(self, ts: float, point: geo.Coord) -> float:
        """Rain intensity in mm/h."""
        return sum(e.intensity(ts, point) for e in self.events_between(ts, ts))

    def rain_decayed(self, ts: float, point: geo.Coord, tau_h: float,
                     step_s: float = 600.0) -> float:
        """Rain depth (mm) weighted by exp(-age / tau): what a reservoir that drains with
        time constant ``tau_h`` hours still holds. Integrated over the last 5 tau."""
        window = 5 * tau_h * HOUR
        events = self.events_between(ts - window, ts)
        if not events:
            return 0.0
        total = 0.0
        steps = int(window / step_s)
        for k in range(steps):
            s = ts - (k + 0.5) * step_s
            r = sum(e.intensity(s, point) for e in events)
            if r:
                total += r * step_s / HOUR * math.exp(-(ts - s) / (tau_h * HOUR))
        return total

    def rain_last_hour(self, ts: float, point: geo.Coord) -> float:
        """Millimetres fallen in the past hour, as a tipping-bucket gauge reports."""
        events = self.events_between(ts - HOUR, ts)
        step = 300.0
        return sum(e.intensity(ts - (k + 0.5) * step, point) for e in events
                   for k in range(12)) * step / HOUR

    # -- temperature and humidity -------------------------------------------------------------

    def _monthly(self, values: tuple[float, ...], local: datetime) -> float:
        # Linear between mid-month values, so there is no step on the 1st of each month.
        pos = local.month - 1 + (local.day - 15.5) / 30.5
        lo = math.floor(pos)
        frac = pos - lo
        return values[lo % 12] * (1 - frac) + values[(lo + 1) % 12] * frac

    def temperature(self, ts: float, point: geo.Coord) -> float:
        local = datetime.fromtimestamp(ts, self.tz)
        hour = local.hour + local.minute / 60
        range_c = self.climate.diurnal_range_c * (1 - 0.4 * self.wetness(local.month))
        # Coolest just before dawn, warmest at 14:00: a cosine skewed by a second harmonic.
        phase = 2 * math.pi * (hour - 14) / 24
        diurnal = 0.5 * range_c * (math.cos(phase) + 0.25 * math.cos(2 * phase - 0.6)) / 1.1
        cooling = min(4.0, 0.25 * self.rain(ts, point))  # evaporative cooling under rain
        return self._monthly(self.climate.temperature_c, local) + diurnal - cooling

    def humidity(self, ts: float, point: geo.Coord) -> float:
        local = datetime.fromtimestamp(ts, self.tz)
        hour = local.hour + local.minute / 60
        diurnal = -0.08 * math.cos(2 * math.pi * (hour - 14) / 24)
        wet = min(0.12, 0.02 * self.rain(ts, point))
        return min(0.99, max(0.3, self._monthly(self.climate.humidity, local) + diurnal + wet))


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of a few events per day.
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
