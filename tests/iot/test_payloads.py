"""UltraLight 2.0 and IoTA-JSON payloads: measures, single measures, commands, acks."""

from __future__ import annotations

from typing import Any

import pytest

from dothi.iot.payloads import (
    MalformedPayload,
    format_command,
    normalise_protocol,
    parse_command_ack,
    parse_json_measures,
    parse_single,
    parse_ultralight,
    ultralight_ack_device,
)

# --- protocol names ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["JSON", "json", "IoTA-JSON", "iota-json", " Json ", "IOTA_JSON"])
def test_json_protocol_names(text: str) -> None:
    assert normalise_protocol(text) == "JSON"


@pytest.mark.parametrize("text", ["UL", "ul", "IoTA-UL", "UltraLight", "ultralight", "Ultra-Light",
                                  "UL2.0", "UltraLight 2.0", "iota-ultralight", "UL2", "ul-v2"])
def test_ultralight_protocol_names(text: str) -> None:
    assert normalise_protocol(text) == "UL"


@pytest.mark.parametrize("text", ["", "mqtt", "JSON2.0", "LWM2M", "iota", "u l", "jsonul"])
def test_unknown_protocol_names(text: str) -> None:
    with pytest.raises(ValueError, match="unknown IoT protocol"):
        normalise_protocol(text)


def test_unknown_protocol_is_not_a_malformed_payload() -> None:
    # A bad protocol is a provisioning error, not the device's fault.
    with pytest.raises(ValueError) as caught:
        parse_single("CoAP", "t", b"1")
    assert not isinstance(caught.value, MalformedPayload)


# --- UltraLight measures -----------------------------------------------------------------


def test_ultralight_one_group() -> None:
    assert parse_ultralight("t|21.5|h|40") == [{"t": "21.5", "h": "40"}]


def test_ultralight_timestamped_groups_in_order() -> None:
    text = "2024-05-01T10:00:00Z|t|21.5#2024-05-01T10:05:00.250+07:00|t|22|h|41\n"
    assert parse_ultralight(text) == [
        {"TimeInstant": "2024-05-01T10:00:00Z", "t": "21.5"},
        {"TimeInstant": "2024-05-01T10:05:00.250+07:00", "t": "22", "h": "41"},
    ]


def test_ultralight_mixes_groups_with_and_without_timestamps() -> None:
    assert parse_ultralight("t|1#2024-01-01T00:00:00|t|2") == [
        {"t": "1"}, {"TimeInstant": "2024-01-01T00:00:00", "t": "2"}]


def test_ultralight_strips_only_the_whole_payload() -> None:
    # Values are the mapping's to type and trim; only the framing whitespace goes.
    assert parse_ultralight("\r\n  t| 21 |s|\n") == [{"t": " 21 ", "s": ""}]


def test_ultralight_keeps_values_as_strings() -> None:
    assert parse_ultralight("n|1e3|b|true|x|null|loc|21.0,105.8") == [
        {"n": "1e3", "b": "true", "x": "null", "loc": "21.0,105.8"}]


@pytest.mark.parametrize("key", ["a", "A_1", "temp.max", "urn:x:y", "my-key", "0"])
def test_ultralight_key_characters(key: str) -> None:
    assert parse_ultralight(f"{key}|1") == [{key: "1"}]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty UltraLight payload"),
    ("  \n", "empty UltraLight payload"),
    ("|1", "group 1 has an empty key"),
    ("t|1#|2", "group 2 has an empty key"),
    ("t|1|", "group 1: 't' is not an ISO 8601 date-time"),
    ("notadate|t|1", "'notadate' is not an ISO 8601 date-time"),
    ("2024-13-01T00:00:00Z|t|1", "'2024-13-01T00:00:00Z' is not an ISO 8601"),
    ("2024-05-01|t|1", "'2024-05-01' is not an ISO 8601 date-time"),
    ("12345|t|1", "'12345' is not"),
    ("2024-05-01T10:00:00Z", "group 1 has a timestamp but no measures"),
    ("t|1#", "group 2 is empty"),
    ("#t|1", "group 1 is empty"),
    ("t|1## h|2", "group 2 is empty"),
    ("t|1|t|2", "group 1 has the key 't' twice"),
    ("t|1#h|1|h|2", "group 2 has the key 'h' twice"),
    ("2024-05-01T10:00:00Z|TimeInstant|x", "the key 'TimeInstant' twice"),
    ("te mp|1", "key 'te mp' has characters outside [A-Za-z0-9_.:-]"),
    ("t/1|1", "key 't/1' has characters"),
    ("température|1", "key 'température'"),
    ("t@x|1", "key 't@x'"),
])
def test_ultralight_malformed(text: str, message: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_ultralight(text)
    assert message in str(caught.value)


def test_malformed_payload_is_a_value_error() -> None:
    assert issubclass(MalformedPayload, ValueError)


# --- JSON measures -----------------------------------------------------------------------


def test_json_object_is_one_group() -> None:
    assert parse_json_measures(b'{"t": 21.5, "on": true, "loc": [1, 2], "m": {"a": null}}') \
        == [{"t": 21.5, "on": True, "loc": [1, 2], "m": {"a": None}}]


def test_json_array_is_several_groups_in_order() -> None:
    raw = '[{"TimeInstant": "2024-05-01T10:00:00Z", "t": 1}, {"t": 2}]'
    assert parse_json_measures(raw) == [
        {"TimeInstant": "2024-05-01T10:00:00Z", "t": 1}, {"t": 2}]


def test_json_accepts_str_and_surrounding_whitespace() -> None:
    assert parse_json_measures(' {"t": "x"}\n') == [{"t": "x"}]


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "invalid JSON"),
    (b'{"t": ', "invalid JSON: unexpected end of data: line 1 column 7 (char 6)"),
    (b'{"t": 1,}', "trailing comma is not allowed: line 1 column 8 (char 7)"),
    (b"t|1", "invalid JSON"),
    (b"\xff\xfe", "invalid JSON"),
    (b"42", "must be an object or an array of objects, not a number"),
    (b'"t"', "not a string"),
    (b"null", "not null"),
    (b"true", "not a boolean"),
    (b"[]", "the array is empty"),
    (b"{}", "JSON measures is an empty object"),
    (b'[{"t": 1}, {}]', "item [1] is an empty object"),
    (b'[{"t": 1}, 2]', "item [1] is a number, not an object"),
    (b'[[{"t": 1}]]', "item [0] is an array, not an object"),
    (b'{"": 1}', "has an empty key"),
    (b'{"t x": 1}', "key 't x' contains whitespace"),
    (b'{"t\\n": 1}', "key 't\\n' contains whitespace"),
    (b'[{"a": 1}, {" ": 1}]', "item [1]: key ' ' contains whitespace"),
])
def test_json_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_json_measures(raw)
    assert message in str(caught.value)


# --- single measures ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "value"), [
    (b"21.5", 21.5),
    (b"7", 7),
    (b"true", True),
    (b"null", None),
    (b'"quoted"', "quoted"),
    (b'{"a": [1]}', {"a": [1]}),
    (b"on", "on"),
    (b"  on air \n", "on air"),
    (b"21,5", "21,5"),
    (b"", ""),
])
def test_single_json(raw: bytes, value: Any) -> None:
    assert parse_single("IoTA-JSON", "m", raw) == {"m": value}


@pytest.mark.parametrize(("raw", "value"), [
    (b"21.5", "21.5"), (b"true", "true"), (b"on\n", "on"), (b'"x"', '"x"'), (b"", "")])
def test_single_ultralight_is_text(raw: bytes, value: str) -> None:
    assert parse_single("UL", "m", raw) == {"m": value}


@pytest.mark.parametrize("protocol", ["JSON", "UL"])
def test_single_rejects_invalid_utf8(protocol: str) -> None:
    with pytest.raises(MalformedPayload, match=r"not valid UTF-8 \(byte 1\)"):
        parse_single(protocol, "m", b"a\xff")


@pytest.mark.parametrize("attr", ["", "a b", "t\n"])
def test_single_rejects_bad_names(attr: str) -> None:
    with pytest.raises(MalformedPayload, match="invalid measure name"):
        parse_single("JSON", attr, b"1")


# --- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "payload"), [
    ("on", b'{"switch":"on"}'),
    (None, b'{"switch":null}'),
    ({"speed": 3, "dir": "up"}, b'{"switch":{"speed":3,"dir":"up"}}'),
    ([1, 2.5, True], b'{"switch":[1,2.5,true]}'),
    ("a|b#c@d", b'{"switch":"a|b#c@d"}'),
])
def test_json_command(value: Any, payload: bytes) -> None:
    assert format_command("IoTA-JSON", "dev1", "switch", value) == payload


def test_json_command_rejects_unencodable_values() -> None:
    with pytest.raises(ValueError, match="cannot be encoded as JSON"):
        format_command("JSON", "dev1", "switch", object())


@pytest.mark.parametrize(("value", "payload"), [
    (None, b"dev1@ping"),
    ("on", b"dev1@ping|on"),
    ("", b"dev1@ping|"),
    (3, b"dev1@ping|3"),
    (2.5, b"dev1@ping|2.5"),
    (True, b"dev1@ping|true"),
    (False, b"dev1@ping|false"),
    ([1, "a", False, None], b"dev1@ping|1|a|false|"),
    ((1, 2), b"dev1@ping|1|2"),
    ([], b"dev1@ping"),
    ({"speed": 3, "on": True, "mode": "eco"}, b"dev1@ping|speed=3|on=true|mode=eco"),
    ({"x": "a=b"}, b"dev1@ping|x=a=b"),
    ({}, b"dev1@ping"),
    ("Đà Nẵng", "dev1@ping|Đà Nẵng".encode()),
])
def test_ultralight_command(value: Any, payload: bytes) -> None:
    assert format_command("UL", "dev1", "ping", value) == payload


@pytest.mark.parametrize(("device", "name", "value", "message"), [
    ("dev1", "ping", "a|b", "cannot encode '|' in parameter 'a|b'"),
    ("dev1", "ping", "a#b", "cannot encode '#'"),
    ("dev1", "ping", "me@home", "cannot encode '@'"),
    ("dev1", "ping", "two\nlines", "cannot encode '\\n'"),
    ("dev1", "ping", ["ok", "x|y"], "in parameter 'x|y'"),
    ("dev1", "ping", {"k": "v#"}, "in parameter 'v#'"),
    ("dev1", "ping", {"k|": 1}, "in parameter name 'k|'"),
    ("dev1", "ping", {"a=b": 1}, "cannot encode 'a=b' as a parameter name"),
    ("dev1", "ping", {"": 1}, "cannot encode '' as a parameter name"),
    ("dev1", "ping", {1: 1}, "cannot encode 1 as a parameter name"),
    ("dev1", "ping", [[1]], "cannot encode an array as a command parameter"),
    ("dev1", "ping", {"k": {"a": 1}}, "cannot encode an object"),
    ("dev1", "ping", b"raw", "cannot encode bytes"),
    ("dev@1", "ping", None, "in device id 'dev@1'"),
    ("dev1", "pi|ng", None, "in command name 'pi|ng'"),
    ("dev1", "", None, "command name must not be empty"),
])
def test_ultralight_command_rejects(device: str, name: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        format_command("ul", device, name, value)
    assert message in str(caught.value)


def test_command_rejects_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="unknown IoT protocol 'SOAP'"):
        format_command("SOAP", "dev1", "ping", None)


# --- command acknowledgements -------------------------------------------------------------


def test_json_ack() -> None:
    assert parse_command_ack("JSON", b'{"ping": "pong", "set": {"ok": true}}') == {
        "ping": "pong", "set": {"ok": True}}


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "invalid JSON"),
    (b"dev1@ping|ok", "invalid JSON"),
    (b'["ping"]', "must be an object, not an array"),
    (b'"ok"', "not a string"),
    (b"{}", "is an empty object"),
    (b'{"": 1}', "has an empty key"),
    (b'{"pi ng": 1}', "key 'pi ng' contains whitespace"),
])
def test_json_ack_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_command_ack("IoTA-JSON", raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(("raw", "result"), [
    (b"dev1@ping|pong", {"ping": "pong"}),
    (b"dev1@ping|", {"ping": ""}),
    (b"dev1@ping|a|b=c", {"ping": "a|b=c"}),
    (b"dev1@ping|pong\n", {"ping": "pong"}),
    (b"dev1@ping|pong\r\ndev1@set|OK\n\n", {"ping": "pong", "set": "OK"}),
    (b"  dev1@ping|pong  ", {"ping": "pong"}),
])
def test_ultralight_ack(raw: bytes, result: dict[str, str]) -> None:
    assert parse_command_ack("UL", raw) == result
    assert ultralight_ack_device(raw) == "dev1"


def test_ultralight_ack_device_accepts_text() -> None:
    assert ultralight_ack_device("urn:dev:7@reboot|done") == "urn:dev:7"


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty UltraLight command acknowledgement"),
    (b"\n \n", "empty UltraLight command acknowledgement"),
    (b"ping|pong", "line 1: 'ping|pong' is not '<device_id>@<command>|<result>'"),
    (b"dev1@ping", "line 1: 'dev1@ping' is not"),
    (b"@ping|x", "line 1"),
    (b"dev1@|x", "line 1"),
    (b"dev1@ping|ok\nnonsense", "line 2: 'nonsense'"),
    (b"dev1@ping|ok\ndev2@set|ok", "line 2 is for device 'dev2', not 'dev1'"),
    (b"dev1@ping|\xff", "not valid UTF-8"),
])
def test_ultralight_ack_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_command_ack("UltraLight", raw)
    assert message in str(caught.value)
    with pytest.raises(MalformedPayload):
        ultralight_ack_device(raw)


def test_command_round_trip_through_a_device() -> None:
    payload = format_command("UL", "lamp7", "dim", {"level": 40})
    device, rest = payload.decode().split("@", 1)
    command = rest.split("|", 1)[0]
    ack = f"{device}@{command}|dimmed to 40".encode()
    assert parse_command_ack("UL", ack) == {"dim": "dimmed to 40"}
    assert ultralight_ack_device(ack) == "lamp7"
