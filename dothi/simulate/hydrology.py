"""Water: river stage, street flooding and the sluice gates that drain it.

Both water bodies are linear reservoirs: the level integrates rain and drains in proportion to
what is stored, i.e. rain convolved with exp(-age / tau). The river answers slowly to rain over
the whole basin (tau ~10 h) and carries the tide; a low street answers within the hour
(tau ~2 h) and floods only once its drains are overwhelmed (the first millimetres are held by
the drainage network, the capacity below).

A sluice gate closed keeps the city's water behind it; opened, it lets the ponded water out to
the river, so the level behind it relaxes towards a fraction of what it was.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from dothi.simulate.geo import Coord
from dothi.simulate.weather import HOUR, Weather

# Tidal constituents of the Hàn estuary: mixed, mainly semi-diurnal, about a metre of range
# at the mouth (the principal lunar M2 and luni-solar K1 periods, in hours).
_M2_HOURS, _K1_HOURS = 12.4206, 23.9345
GATE_TAU_H = 0.5  # how fast the water behind a gate follows it opening or closing
GATE_OPEN_FACTOR = 0.3  # share of the ponded water still there once a gate has been open long


@dataclass(frozen=True)
class RiverSite:
    alert_m: float
    tide_amplitude_m: float
    gain_m_per_mm: float = 0.025


@dataclass(frozen=True)
class StreetSite:
    susceptibility: float  # metres of water per 100 mm held beyond capacity, ~0.4..1.6
    capacity_mm: float  # rain the drains absorb before water stands on the road
    tau_h: float


def river_stage(weather: Weather, ts: float, site: RiverSite, basin: Coord,
                wetness: float) -> float:
    """River stage in metres above the bed at a gauge whose alert level is ``site.alert_m``.

    Normal stage sits 1.3 m under the alert level, higher in the wet season; the basin's rain
    (sampled at ``basin``, the river integrates a whole catchment) raises it over hours.
    """
    base = site.alert_m - 1.3 + 0.35 * wetness
    tide = site.tide_amplitude_m * (math.cos(2 * math.pi * ts / (_M2_HOURS * HOUR))
                                    + 0.45 * math.cos(2 * math.pi * ts / (_K1_HOURS * HOUR)))
    stored = weather.rain_decayed(ts, basin, tau_h=10.0, step_s=900.0)
    return base + tide + site.gain_m_per_mm * stored


def street_depth(weather: Weather, ts: float, site: StreetSite, point: Coord) -> float:
    """Depth of water on the road surface, in metres (0 when the street is dry)."""
    stored = weather.rain_decayed(ts, point, tau_h=site.tau_h, step_s=300.0)
    return max(0.0, stored - site.capacity_mm) * site.susceptibility / 100.0


def flood_status(level: float, alert: float, danger: float) -> str:
    # The values the demo city's FloodMonitoring entities use.
    return "Danger" if level >= danger else "Alert" if level >= alert else "Normal"


@dataclass
class GateLog:
    """Open/close history of one sluice gate. Gates start closed: during the flood season the
    city keeps them shut against the high river until an operator decides to drain."""

    changes: list[tuple[float, bool]] = field(default_factory=list)  # (ts, open), in order
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, ts: float, is_open: bool) -> None:
        with self._lock:
            self.changes.append((ts, is_open))
            self.changes.sort(key=lambda change: change[0])

    def is_open(self, ts: float) -> bool:
        with self._lock:
            state = False
            for at, is_open in self.changes:
                if at > ts:
                    break
                state = is_open
            return state

    def factor(self, ts: float) -> float:
        """Multiplier on the water behind the gate: 1 long closed, GATE_OPEN_FACTOR long open,
        relaxing exponentially in between."""
        with self._lock:
            value, target, since = 1.0, 1.0, -math.inf
            for at, is_open in self.changes:
                if at > ts:
                    break
                if since > -math.inf:
                    value = target + (value - target) * math.exp(-(at - since)
                                                                 / (GATE_TAU_H * HOUR))
                target, since = (GATE_OPEN_FACTOR if is_open else 1.0), at
            if since == -math.inf:
                return value
            return target + (value - target) * math.exp(-(ts - since) / (GATE_TAU_H * HOUR))
