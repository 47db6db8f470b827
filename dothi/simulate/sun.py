"""Solar position, sunrise and sunset: the NOAA solar calculator equations.

These are the low-precision formulas of the NOAA Global Monitoring Laboratory spreadsheet
(after Meeus, *Astronomical Algorithms*): good to about a minute for sunrise and sunset at
tropical latitudes, far better than a street light's photocell needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# Apparent sunrise/sunset: the sun's centre 50' below the horizon (refraction + semi-diameter).
SUNRISE_ZENITH = 90.833


@dataclass(frozen=True)
class _SolarTerms:
    declination: float  # degrees
    equation_of_time: float  # minutes


def _julian_day(t: datetime) -> float:
    utc = t.astimezone(UTC)
    return utc.timestamp() / 86_400.0 + 2_440_587.5


def _terms(t: datetime) -> _SolarTerms:
    jc = (_julian_day(t) - 2_451_545.0) / 36_525.0
    mean_long = (280.46646 + jc * (36_000.76983 + jc * 0.0003032)) % 360.0
    mean_anom = 357.52911 + jc * (35_999.05029 - 0.0001537 * jc)
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    m = math.radians(mean_anom)
    centre = (math.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
              + math.sin(2 * m) * (0.019993 - 0.000101 * jc) + math.sin(3 * m) * 0.000289)
    omega = math.radians(125.04 - 1934.136 * jc)
    apparent_long = mean_long + centre - 0.00569 - 0.00478 * math.sin(omega)
    mean_obliquity = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813)))
                             / 60.0) / 60.0
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.degrees(math.asin(math.sin(obliquity)
                                         * math.sin(math.radians(apparent_long))))
    y = math.tan(obliquity / 2) ** 2
    lr = math.radians(mean_long)
    eot = 4 * math.degrees(y * math.sin(2 * lr) - 2 * ecc * math.sin(m)
                           + 4 * ecc * y * math.sin(m) * math.cos(2 * lr)
                           - 0.5 * y * y * math.sin(4 * lr) - 1.25 * ecc * ecc * math.sin(2 * m))
    return _SolarTerms(declination, eot)


def solar_elevation(t: datetime, lat: float, lon: float) -> float:
    """Geometric elevation of the sun's centre above the horizon, in degrees."""
    terms = _terms(t)
    utc = t.astimezone(UTC)
    minutes = utc.hour * 60 + utc.minute + utc.second / 60 + utc.microsecond / 60e6
    true_solar = (minutes + terms.equation_of_time + 4 * lon) % 1440
    hour_angle = math.radians(true_solar / 4 - 180)
    phi, delta = math.radians(lat), math.radians(terms.declination)
    cos_zenith = (math.sin(phi) * math.sin(delta)
                  + math.cos(phi) * math.cos(delta) * math.cos(hour_angle))
    return 90.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def sunrise_sunset(day: date, lat: float, lon: float,
                   tz: tzinfo) -> tuple[datetime, datetime] | None:
    """Local sunrise and sunset on ``day``, or None during polar day or night."""
    local_noon = datetime.combine(day, time(12), tzinfo=tz)
    events: list[datetime] = []
    for sign in (-1, 1):
        # Terms first evaluated at local noon, then once more at the estimated event: the
        # declination moves enough in six hours to shift the result by a fraction of a minute.
        event = local_noon
        for _ in range(2):
            terms = _terms(event)
            phi, delta = math.radians(lat), math.radians(terms.declination)
            cos_ha = (math.cos(math.radians(SUNRISE_ZENITH)) / (math.cos(phi) * math.cos(delta))
                      - math.tan(phi) * math.tan(delta))
            if not -1.0 <= cos_ha <= 1.0:
                return None
            half_day = math.degrees(math.acos(cos_ha)) * 4  # minutes from solar noon
            noon_utc = 720 - 4 * lon - terms.equation_of_time  # minutes after 00:00 UTC
            # Solar noon nearest to local noon: east of ~+172 deg it falls on the previous UTC
            # date, so anchor on the UTC date of local noon and pick the closest candidate.
            anchor = datetime.combine(local_noon.astimezone(UTC).date(), time(0), tzinfo=UTC)
            noon = min((anchor + timedelta(days=d, minutes=noon_utc) for d in (-1, 0, 1)),
                       key=lambda n: abs((n - local_noon).total_seconds()))
            event = noon + timedelta(minutes=sign * half_day)
        events.append(event.astimezone(tz))
    return events[0], events[1]
