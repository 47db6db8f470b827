"""A simulated city of IoT devices feeding dothi's IoT-Agent southbound over MQTT or HTTP.

``dothi simulate`` on the command line; from Python::

    from dothi.simulate import Simulation, SimulationOptions

    sim = Simulation(SimulationOptions(devices=264, rate="6/min", speed=60))
    sim.start()          # provisions, then publishes in a background thread
    ...
    report = sim.stop()  # SimulationReport: sent, errors, commands answered...
"""

from dothi.simulate.city import CITIES, City, Device, build_population, get_city, kind_counts
from dothi.simulate.kinds import KINDS, Kind
from dothi.simulate.runner import (
    Simulation,
    SimulationOptions,
    SimulationReport,
    parse_rate,
    simulate,
)
from dothi.simulate.world import SimClock, World, traffic_demand

__all__ = [
    "CITIES",
    "KINDS",
    "City",
    "Device",
    "Kind",
    "SimClock",
    "Simulation",
    "SimulationOptions",
    "SimulationReport",
    "World",
    "build_population",
    "get_city",
    "kind_counts",
    "parse_rate",
    "simulate",
    "traffic_demand",
]
