"""UltraLight 2.0 and JSON, both ways."""

from __future__ import annotations

import json

import pytest

from dothi.simulate import codec
from dothi.simulate.kinds import GATE, STREETLIGHT, TRAFFIC, WASTE


def test_ul_measures_use_object_ids() -> None:
    payload = codec.encode_measures(STREETLIGHT, {
        "powerState": "low", "illuminanceLevel": 0.5, "powerConsumption": 55.2,
        "status": "ok"})
    assert payload == b"ps|low|l|0.5|p|55.2|st|ok"
    assert codec.decode_measures(STREETLIGHT, payload) == {
        "powerState": "low", "illuminanceLevel": "0.5", "powerConsumption": "55.2",
        "status": "ok"}
    waste = codec.encode_measures(WASTE, {"fillingLevel": 1.0, "status": "a|b#c",
                                          "dateLastEmptying": "2026-11-24T11:00:00Z"})
    # UL separators cannot appear inside a value.
    assert waste == b"f|1.0|st|a/bc|e|2026-11-24T11:00:00Z"


def test_json_measures_keep_types() -> None:
    measures = {"intensity": 120, "occupancy": 0.31, "averageVehicleSpeed": 41.5,
                "congested": False, "dateObserved": "2026-11-24T11:00:00Z"}
    payload = codec.encode_measures(TRAFFIC, measures)
    assert json.loads(payload) == measures
    assert codec.decode_measures(TRAFFIC, payload) == measures


def test_unknown_attributes_and_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="no attribute colour"):
        codec.encode_measures(STREETLIGHT, {"colour": "amber"})
    with pytest.raises(ValueError, match="finite"):
        codec.encode_measures(STREETLIGHT, {"illuminanceLevel": float("nan")})


def test_commands_and_replies() -> None:
    assert codec.decode_commands("UL", "sl-0001", b"sl-0001@dim|0.3") == [("dim", "0.3")]
    assert codec.decode_commands("UL", "sl-0001", b"sl-0001@switch|off|x") == [("switch", "off")]
    with pytest.raises(ValueError, match="not a UL command for sl-0001"):
        codec.decode_commands("UL", "sl-0001", b"sl-0002@dim|0.3")
    assert codec.decode_commands("JSON", "sg-0001", b'{"gate": "open"}') == [("gate", "open")]
    assert codec.decode_commands("JSON", "sg-0001", b'{"dim": 0.25}') == [("dim", "0.25")]
    with pytest.raises(ValueError):
        codec.decode_commands("JSON", "sg-0001", b"[]")
    assert codec.encode_reply("UL", "sl-0001", [("dim", None)]) == b"sl-0001@dim|OK"
    assert codec.encode_reply("UL", "sl-0001", [("dim", "bad|level")]) == (
        b"sl-0001@dim|ERROR: bad/level")
    assert json.loads(codec.encode_reply("JSON", "sg-0001", [("gate", None)])) == {"gate": "OK"}
    assert json.loads(codec.encode_reply("JSON", "sg-0001", [("gate", "stuck")])) == {
        "gate": "ERROR: stuck"}


def test_topics_and_http_paths() -> None:
    assert codec.attrs_topic("dn-gate", "sg-0001") == "/dn-gate/sg-0001/attrs"
    assert codec.cmd_topic("dn-gate", "sg-0001") == "/dn-gate/sg-0001/cmd"
    assert codec.cmdexe_topic("dn-gate", "sg-0001") == "/dn-gate/sg-0001/cmdexe"
    assert (codec.http_path(STREETLIGHT.protocol), codec.content_type("UL")) == (
        "/iot/d", "text/plain")
    assert (codec.http_path(GATE.protocol), codec.content_type("JSON")) == (
        "/iot/json", "application/json")
