"""Things that accumulate: waste in bins, energy through meters, charge out of batteries.

Each is a closed-form function of time, so a reading at any instant is reproducible without
replaying the simulation up to it: a bin's level is what has been thrown in since the last
collection round that actually emptied it; a meter's register is the integral of a daily load
curve since the meter's epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

DAY = 86_400.0
ACTIVITY_AMPLITUDE = 0.6  # bins fill 1.6x faster mid-afternoon than at 03:00


def activity_days(local: datetime) -> float:
    """Integral of the waste-disposal activity curve 1 + a*sin(2*pi*(h - 9)/24), in days
    since the epoch: people throw things away by day, hardly at night."""
    days = local.toordinal() + (local.hour * 3600 + local.minute * 60 + local.second) / DAY
    hour = (days % 1) * 24
    return days - ACTIVITY_AMPLITUDE / (2 * math.pi) * math.cos(2 * math.pi * (hour - 9) / 24)


@dataclass(frozen=True)
class BinSite:
    fill_per_day: float  # share of the bin filled by one day of average activity
    round_hour: float  # local time of day the collection truck passes, in hours
    twice_daily: bool  # busy bins get a second round twelve hours later
    residual: float  # what sticks to the bottom after emptying


def last_emptied(ts: float, site: BinSite, tz: tzinfo,
                 skipped: Callable[[float], bool]) -> float:
    """When the bin was last emptied: the latest round before ``ts`` that did not skip it.

    ``skipped(round_ts)`` says whether the crew missed this bin on that round (a blocked
    street, a full truck): overdue bins are what a fill-level map is for.
    """
    day = datetime.fromtimestamp(ts, tz).date()
    offsets = [site.round_hour] + ([site.round_hour - 12.0] if site.twice_daily else [])
    for back in range(15):
        midnight = datetime.combine(day - timedelta(days=back), time(0), tzinfo=tz)
        for hours in sorted(offsets, reverse=True):
            at = (midnight + timedelta(hours=hours)).timestamp()
            if at <= ts and not skipped(at):
                return at
    # A fortnight of missed rounds: treat as emptied long ago, the bin is full anyway.
    return ts - 15 * DAY


def bin_fill(ts: float, emptied: float, site: BinSite, tz: tzinfo) -> float:
    """Filling level 0..1; a full bin stays at 1 (the rest lies next to it)."""
    thrown = activity_days(datetime.fromtimestamp(ts, tz)) - activity_days(
        datetime.fromtimestamp(emptied, tz))
    return min(1.0, site.residual + site.fill_per_day * max(0.0, thrown))


def battery_level(ts: float, lifetime_days: float, phase: float) -> float:
    """Primary-cell sensor battery: drains linearly over its lifetime to 8 %, then the
    maintenance crew swaps it for a fresh one. ``phase`` staggers devices' installations."""
    used = (ts / DAY / lifetime_days + phase) % 1.0
    return 1.0 - 0.92 * used


# Relative hourly load, 00:00 to 23:00. Vietnamese homes peak after dark when air conditioning
# and cooking overlap; shops and restaurants stay open late; offices and schools follow the
# working day.
LOAD_PROFILES: dict[str, tuple[float, ...]] = {
    "residential": (0.55, 0.5, 0.48, 0.46, 0.46, 0.55, 0.85, 0.95, 0.7, 0.6, 0.6, 0.75,
                    0.8, 0.65, 0.6, 0.62, 0.7, 0.95, 1.5, 1.75, 1.7, 1.5, 1.15, 0.8),
    "commercial": (0.25, 0.22, 0.22, 0.22, 0.22, 0.25, 0.4, 0.7, 1.2, 1.45, 1.5, 1.55,
                   1.5, 1.5, 1.55, 1.55, 1.5, 1.4, 1.3, 1.25, 1.15, 0.9, 0.55, 0.35),
    "public": (0.3, 0.3, 0.3, 0.3, 0.3, 0.32, 0.5, 1.1, 1.5, 1.55, 1.55, 1.4,
               1.1, 1.4, 1.55, 1.5, 1.3, 0.8, 0.5, 0.45, 0.42, 0.4, 0.35, 0.32),
}
WEEKEND_FACTOR = {"residential": 1.1, "commercial": 0.85, "public": 0.45}


@dataclass(frozen=True)
class Meter:
    building: str  # residential, commercial or public
    daily_kwh: float  # an average weekday in a 25 degC month
    register_start_kwh: float  # reading at the epoch
    epoch: date  # when the meter was installed


def _density(profile: tuple[float, ...], hour: float) -> float:
    """Load at ``hour`` (linear between the hourly knots), as a share of the day per hour."""
    k = int(hour) % 24
    f = hour - int(hour)
    value = profile[k] * (1 - f) + profile[(k + 1) % 24] * f
    return value / sum(profile)


def _share_until(profile: tuple[float, ...], hour: float) -> float:
    """Share of the day's energy used from midnight to ``hour``: the exact integral of the
    piecewise-linear density."""
    total = sum(profile)
    whole = int(hour)
    used = sum((profile[k] + profile[(k + 1) % 24]) / 2 for k in range(whole))
    f = hour - whole
    lo, hi = profile[whole % 24], profile[(whole + 1) % 24]
    return (used + lo * f + (hi - lo) * f * f / 2) / total


def _day_kwh(meter: Meter, month: int, weekend: bool,
             temperature: Callable[[int], float]) -> float:
    # Air conditioning: about 5 % more per degree of monthly mean above 25 degC.
    season = 1.0 + 0.05 * (temperature(month) - 25.0)
    return meter.daily_kwh * season * (WEEKEND_FACTOR[meter.building] if weekend else 1.0)


def _weekend_days(first: date, count: int) -> int:
    weeks, rest = divmod(count, 7)
    return 2 * weeks + sum(1 for k in range(rest) if (first.weekday() + k) % 7 >= 5)


def meter_reading(meter: Meter, local: datetime,
                  temperature: Callable[[int], float]) -> tuple[float, float]:
    """(active power in W, imported energy register in kWh) at local time ``local``.

    Daily energy depends only on the month and the day of the week, so whole months are summed
    in one step: a register read years after its epoch costs a few hundred operations.
    """
    profile = LOAD_PROFILES[meter.building]
    day = local.date()
    hour = local.hour + local.minute / 60 + local.second / 3600
    today = _day_kwh(meter, day.month, day.weekday() >= 5, temperature)
    power_w = today * _density(profile, hour) * 1000.0
    if day < meter.epoch:
        return power_w, meter.register_start_kwh
    energy = meter.register_start_kwh
    cursor = meter.epoch
    while cursor < day:
        following = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        count = (min(following, day) - cursor).days
        weekend = _weekend_days(cursor, count)
        energy += (count - weekend) * _day_kwh(meter, cursor.month, False, temperature)
        energy += weekend * _day_kwh(meter, cursor.month, True, temperature)
        cursor = min(following, day)
    return power_w, energy + today * _share_until(profile, hour)
