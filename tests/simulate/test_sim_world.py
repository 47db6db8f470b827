"""Properties of the world model: no network, only simulated time."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date, datetime, timedelta

import pytest

from dothi.simulate import geo
from dothi.simulate.city import DANANG, Device, build_population
from dothi.simulate.sun import solar_elevation, sunrise_sunset
from dothi.simulate.weather import HOUR, RainEvent, Weather
from dothi.simulate.world import SimClock, World, traffic_demand

TZ = DANANG.tz
POPULATION = build_population(DANANG, 600, seed=7)


def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def first(kind: str, **params: object) -> Device:
    return next(d for d in POPULATION if d.kind.slug == kind
                and all(d.params.get(k) == v for k, v in params.items()))


def weather(*events: RainEvent) -> Weather:
    return Weather(DANANG.climate, 7, TZ, DANANG.extent(), events=list(events))


def storm(start: datetime, hours: float, peak: float, centre: geo.Coord) -> RainEvent:
    return RainEvent(start.timestamp(), hours * HOUR, peak, centre, 20_000.0)


def series(world: World, device: Device, start: datetime, hours: float, step_min: int,
           attr: str) -> list[float]:
    return [world.measures(device, start + timedelta(minutes=m))[attr]
            for m in range(0, int(hours * 60), step_min)]


# -- sun and street lights --------------------------------------------------------------------


def test_sunrise_and_sunset_in_da_nang() -> None:
    # Published tables give about 05:54 and 17:13 local time for late November.
    times = sunrise_sunset(date(2026, 11, 25), 16.05, 108.2, TZ)
    assert times is not None
    sunrise, sunset = times
    assert abs(sunrise - at(2026, 11, 25, 5, 54)) <= timedelta(minutes=5)
    assert abs(sunset - at(2026, 11, 25, 17, 13)) <= timedelta(minutes=5)
    # Consistent with the elevation formula: the centre 50' under the horizon at both events.
    for event in times:
        assert solar_elevation(event, 16.05, 108.2) == pytest.approx(-0.833, abs=0.05)


def test_sunset_moves_with_the_season() -> None:
    june = sunrise_sunset(date(2026, 6, 21), 16.05, 108.2, TZ)
    december = sunrise_sunset(date(2026, 12, 21), 16.05, 108.2, TZ)
    assert june is not None and december is not None
    assert june[1] - june[0] > december[1] - december[0] + timedelta(hours=1)


def test_lights_on_after_sunset_and_off_at_noon() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    lights = [d for d in POPULATION if d.kind.slug == "streetlight"
              and d.params["status"] in ("ok", "columnIssue")]
    times = sunrise_sunset(date(2026, 11, 25), 16.05, 108.2, TZ)
    assert times is not None
    sunrise, sunset = times
    for light in lights:
        evening = world.measures(light, sunset + timedelta(minutes=30))
        noon = world.measures(light, at(2026, 11, 25, 12, 0))
        morning = world.measures(light, sunrise + timedelta(minutes=30))
        assert evening["powerState"] in ("on", "low") and evening["illuminanceLevel"] > 0
        assert evening["powerConsumption"] > 0
        assert noon == {"powerState": "off", "illuminanceLevel": 0.0,
                        "powerConsumption": 0.0, "status": light.params["status"]}
        assert morning["powerState"] == "off"


def test_broken_lamps_stay_dark_and_refuse_commands() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    broken = first("streetlight", status="defectiveLamp")
    night = at(2026, 11, 24, 21, 0)
    assert world.measures(broken, night)["powerState"] == "off"
    assert world.command(broken, "switch", "on", night) == "lamp out of order (defectiveLamp)"


def test_dim_and_switch_commands_show_in_the_next_measures() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    light = first("streetlight", status="ok", pilot_dimming=False)
    night = at(2026, 11, 24, 20, 0)
    full = world.measures(light, night)
    assert world.command(light, "dim", "0.4", night) is None
    dimmed = world.measures(light, night + timedelta(seconds=1))
    assert dimmed["powerState"] == "low" and dimmed["illuminanceLevel"] == 0.4
    assert dimmed["powerConsumption"] < full["powerConsumption"]
    assert world.command(light, "switch", "off", night) is None
    assert world.measures(light, night + timedelta(minutes=5))["powerState"] == "off"
    # A manual switch lasts until the photocell next switches: on again the next evening.
    assert world.measures(light, night + timedelta(hours=24))["powerState"] == "low"
    assert world.command(light, "dim", "1.5", night) == "dim takes a level between 0 and 1"
    assert world.command(light, "switch", "maybe", night) == "switch takes on or off"
    assert world.command(light, "gate", "open", night) == "unknown command gate"


# -- traffic and air --------------------------------------------------------------------------


def test_weekday_traffic_peaks_and_quiet_night() -> None:
    tuesday = at(2026, 11, 24, 0, 0)
    assert traffic_demand(tuesday.replace(hour=7, minute=45)) > 3 * traffic_demand(
        tuesday.replace(hour=3))
    assert traffic_demand(tuesday.replace(hour=17, minute=30)) > traffic_demand(
        tuesday.replace(hour=14))
    # Saturday morning rush is far smaller than Tuesday's.
    assert traffic_demand(at(2026, 11, 28, 7, 45)) < 0.8 * traffic_demand(
        tuesday.replace(hour=7, minute=45))
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    for counter in (d for d in POPULATION if d.kind.slug == "traffic"):
        peak = world.measures(counter, tuesday.replace(hour=7, minute=45))
        night = world.measures(counter, tuesday.replace(hour=3))
        assert peak["intensity"] > 3 * night["intensity"]
        assert peak["occupancy"] > night["occupancy"]
        assert peak["averageVehicleSpeed"] < night["averageVehicleSpeed"]


def test_pm25_follows_traffic_with_a_lag() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    station = max((d for d in POPULATION if d.kind.slug == "air"),
                  key=lambda d: d.params["exposure"])
    day = at(2026, 11, 24, 0, 0)
    assert (world.measures(station, day.replace(hour=9))["pm25"]
            > 1.5 * world.measures(station, day.replace(hour=4))["pm25"])
    minutes = range(5 * 60, 12 * 60, 10)
    pm = [world.measures(station, day + timedelta(minutes=m))["pm25"] for m in minutes]
    demand = [traffic_demand(day + timedelta(minutes=m)) for m in minutes]
    lag = minutes[pm.index(max(pm))] - minutes[demand.index(max(demand))]
    assert 20 <= lag <= 180


def test_rain_washes_particulates_out() -> None:
    station = first("air")
    when = at(2026, 11, 24, 10, 0)
    dry = World(DANANG, POPULATION, seed=7, weather=weather())
    wet = World(DANANG, POPULATION, seed=7, weather=weather(
        storm(when - timedelta(hours=4), 3, 30.0, station.point)))
    assert wet.measures(station, when)["pm25"] < 0.7 * dry.measures(station, when)["pm25"]
    assert wet.measures(station, when)["pm10"] < dry.measures(station, when)["pm10"]
    # Rain also cools and humidifies.
    during = when - timedelta(hours=2, minutes=30)
    assert wet.measures(station, during)["temperature"] < dry.measures(station, during)[
        "temperature"]
    assert wet.measures(station, during)["relativeHumidity"] > dry.measures(station, during)[
        "relativeHumidity"]


# -- water ------------------------------------------------------------------------------------


def test_water_rises_in_a_storm_and_recedes_after() -> None:
    start = at(2026, 11, 10, 12, 0)
    street = first("flood", river=False)
    river = first("flood", river=True)
    world = World(DANANG, POPULATION, seed=7, weather=weather(
        storm(start, 4, 60.0, street.point)))
    before = world.measures(street, start - timedelta(hours=1))
    peak = max(series(world, street, start, 8, 15, "currentLevel"))
    after = world.measures(street, start + timedelta(hours=30))
    assert before["currentLevel"] < 0.02 and before["floodLevelStatus"] == "Normal"
    assert peak > street.params["danger_m"]
    assert {world.measures(street, start + timedelta(minutes=m))["floodLevelStatus"]
            for m in range(0, 480, 15)} >= {"Alert", "Danger"}
    assert after["currentLevel"] < 0.02 and after["floodLevelStatus"] == "Normal"
    r_before = world.measures(river, start)["currentLevel"]
    r_peak = max(series(world, river, start, 24, 30, "currentLevel"))
    r_after = max(series(world, river, start + timedelta(days=4), 24, 30, "currentLevel"))
    assert r_peak > r_before + 1.0
    assert r_after < r_peak - 1.0
    assert world.measures(street, start)["measuredDistance"] == pytest.approx(
        street.params["reference_m"] - world.measures(street, start)["currentLevel"], abs=1e-3)


def test_opening_a_sluice_gate_drains_the_streets_behind_it() -> None:
    population = build_population(DANANG, 2000, seed=7)
    gate = next(d for d in population if d.kind.slug == "gate")
    street = dataclasses.replace(first("flood", river=False),
                                 point=geo.offset(gate.point, 300.0, 200.0))
    start = at(2026, 11, 10, 12, 0)
    rain = weather(storm(start, 4, 60.0, gate.point))

    def world() -> World:
        return World(DANANG, [gate, street], seed=7, weather=rain)

    shut, opened = world(), world()
    decision = start + timedelta(hours=3)
    assert opened.command(gate, "gate", "open", decision) is None
    later = decision + timedelta(hours=1, minutes=30)
    assert opened.measures(gate, later)["gateState"] == "open"
    assert shut.measures(gate, later)["gateState"] == "closed"
    assert opened.measures(gate, later)["waterLevel"] < 0.6 * shut.measures(gate, later)[
        "waterLevel"]
    assert opened.measures(street, later)["currentLevel"] < 0.6 * shut.measures(street, later)[
        "currentLevel"]
    # Before the command, both worlds agree.
    assert opened.measures(gate, decision - timedelta(minutes=1)) == shut.measures(
        gate, decision - timedelta(minutes=1))
    assert opened.command(gate, "gate", "ajar", decision) == "gate takes open or close"


def test_flood_season_rains_more() -> None:
    w = Weather(DANANG.climate, 7, TZ, DANANG.extent())
    centre = (DANANG.lon, DANANG.lat)

    def rainfall(first_month: int) -> float:
        """Millimetres at the city centre over three months, from hourly gauge totals."""
        start = at(2026, first_month, 1, 0, 0).timestamp()
        return sum(w.rain_last_hour(start + h * HOUR, centre) for h in range(91 * 24))

    # Climate normals: ~1 180 mm in Oct-Dec, ~80 mm in Feb-Apr.
    wet, dry = rainfall(10), rainfall(2)
    assert 500 < wet < 2500
    assert wet > 5 * dry


# -- bins, meters, batteries ------------------------------------------------------------------


def test_bins_fill_never_overflow_and_get_emptied() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    start = at(2026, 11, 16, 0, 0)
    emptied = 0
    for bin_ in [d for d in POPULATION if d.kind.slug == "waste"][:25]:
        levels = series(world, bin_, start, 7 * 24, 30, "fillingLevel")
        assert all(0.0 <= level <= 1.0 for level in levels)
        drops = sum(1 for a, b in itertools.pairwise(levels) if b < a - 0.1)
        emptied += drops
        assert drops >= 3, bin_.device_id  # collected most nights of the week
        m = world.measures(bin_, start)
        assert 0.0 <= m["batteryLevel"] <= 1.0
        assert m["status"] in ("ok", "lidOpen", "dropped")
        assert datetime.fromisoformat(m["dateLastEmptying"]) <= start
    assert emptied > 25 * 4


def test_energy_register_integrates_power() -> None:
    world = World(DANANG, POPULATION, seed=7, weather=weather())
    for meter in [d for d in POPULATION if d.kind.slug == "energy"][:5]:
        start = at(2026, 11, 24, 0, 0)
        readings = [world.measures(meter, start + timedelta(minutes=m)) for m in range(0, 1440, 10)]
        registers = [r["totalActiveEnergyImport"] for r in readings]
        assert registers == sorted(registers)
        mean_kw = sum(r["totalActivePower"] for r in readings) / len(readings) / 1000
        day_kwh = world.measures(meter, start + timedelta(days=1))[
            "totalActiveEnergyImport"] - registers[0]
        assert day_kwh == pytest.approx(mean_kw * 24, rel=0.1)
        evening = world.measures(meter, start.replace(hour=19))["totalActivePower"]
        night = world.measures(meter, start.replace(hour=3))["totalActivePower"]
        assert evening > night


# -- determinism and the clock ----------------------------------------------------------------


def test_same_seed_same_world_other_seed_other_world() -> None:
    when = [at(2026, 10, 12, h, 0) for h in (3, 9, 15, 21)]
    sample = POPULATION[::17]

    def readings(seed: int) -> list[dict[str, object]]:
        world = World(DANANG, build_population(DANANG, 600, seed=7), seed=seed)
        return [world.measures(d, t) for d in sample for t in when]

    assert readings(7) == readings(7)
    assert readings(7) != readings(8)


def test_sim_clock_runs_at_its_speed() -> None:
    start = at(2026, 11, 24, 18, 0)
    clock = SimClock(start, 3600.0, TZ)
    first_now = clock.now()
    assert start <= first_now < start + timedelta(minutes=10)
    with pytest.raises(ValueError, match="positive"):
        SimClock(start, 0.0, TZ)
