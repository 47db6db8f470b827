"""Offline Smart Data Models checks of device measures (dothi.iot.validation)."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dothi.iot.validation import (
    NOT_DEFINED,
    SCHEMA_DIR,
    AmbiguousSchema,
    InvalidSchema,
    ModelSchema,
    SchemaCatalogue,
    UnknownSchema,
    UnresolvableReference,
    Violation,
    default_catalogue,
)

SHARED_MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "smart-data-models"
COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"
POINT = {"type": "Point", "coordinates": [108.2208, 16.0678]}

# The documents that shipped schemas $ref but the smart-data-models fixtures do not hold.
# Attributes (or included parts) defined in them cannot be checked; everything else can.
MISSING_DOCUMENTS = {
    "https://smart-data-models.github.io/dataModel.Alert/alert-schema.json",
    "https://smart-data-models.github.io/dataModel.Device/device-schema.json",
    "https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json",
    ("https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
     "Environment-schema.json"),
    "https://smart-data-models.github.io/dataModel.UrbanMobility/gtfs-schema.json",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json",
    ("https://raw.githubusercontent.com/smart-data-models/dataModel."
     "WaterDistributionManagementEPANET/master/WaterNetworkManagement-schema.json"),
    "http://geojson.org/schema/MultiPoint.json",
    "http://geojson.org/schema/Point.json",
    "https://geojson.org/schema/MultiPoint.json",
    "https://geojson.org/schema/Point.json",
}


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue()


@pytest.fixture(scope="module")
def streetlight(catalogue: SchemaCatalogue) -> ModelSchema:
    return catalogue.find("Streetlight")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every way out to the network raises (and is recorded), for the test's duration."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == []


def rules(violations: list[Violation]) -> dict[str, str]:
    return {v.attribute: v.rule for v in violations}


def model_folder(tmp_path: Path, *models: str) -> Path:
    """A catalogue folder holding common-schema.json and copies of the named models."""
    shutil.copy(SCHEMA_DIR / "common-schema.json", tmp_path / "common-schema.json")
    for name in models:
        (tmp_path / name).mkdir(parents=True)
        shutil.copy(SCHEMA_DIR / name / "schema.json", tmp_path / name / "schema.json")
    return tmp_path


def write_schema(folder: Path, name: str, schema: dict[str, Any]) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "schema.json").write_text(json.dumps(schema))


# --- what ships ---------------------------------------------------------------------------

def test_the_schemas_ship_in_the_package_without_examples() -> None:
    schemas = sorted(SCHEMA_DIR.glob("*/*/schema.json"))
    assert len(schemas) == 133
    assert (SCHEMA_DIR / "common-schema.json").is_file()
    assert "CC-BY-4.0" in (SCHEMA_DIR / "README.md").read_text()
    assert not list(SCHEMA_DIR.rglob("example*"))
    if SHARED_MODELS.is_dir():  # copied unmodified from the shared fixtures
        for path in [*schemas, SCHEMA_DIR / "common-schema.json"]:
            relative = path.relative_to(SCHEMA_DIR)
            assert path.read_bytes() == (SHARED_MODELS / relative).read_bytes(), relative


# --- valid measures -----------------------------------------------------------------------

def test_valid_streetlight_measure_passes(streetlight: ModelSchema) -> None:
    assert streetlight.name == "Streetlighting/Streetlight"
    assert streetlight.validate_attributes({"illuminanceLevel": 0.5, "powerState": "on"}) == []
    assert streetlight.validate_attributes({
        "illuminanceLevel": 1, "powerState": "low", "status": "defectiveLamp",
        "location": POINT, "dateLastSwitchingOn": "2024-05-01T18:30:00+07:00",
        "refDevice": ["urn:ngsi-ld:Device:dn-lamp-1"], "type": "Streetlight"}, strict=True) == []


def test_the_models_required_list_is_not_applied(streetlight: ModelSchema) -> None:
    # Streetlight requires id, type and location; a measure updates only some attributes.
    assert streetlight.validate_attributes({}) == []
    assert streetlight.validate_attributes({"powerState": "off"}, strict=True) == []


# --- violations ---------------------------------------------------------------------------

def test_out_of_range_value_names_attribute_and_bound(streetlight: ModelSchema) -> None:
    [high] = streetlight.validate_attributes({"illuminanceLevel": 1.5, "powerState": "on"})
    assert high == Violation("illuminanceLevel", "maximum: 1",
                             "illuminanceLevel: 1.5 is greater than the maximum of 1")
    [low] = streetlight.validate_attributes({"illuminanceLevel": -0.1})
    assert (low.attribute, low.rule) == ("illuminanceLevel", "minimum: 0")
    assert "-0.1" in low.message


def test_wrong_type_value(streetlight: ModelSchema) -> None:
    [bad] = streetlight.validate_attributes({"illuminanceLevel": "bright"})
    assert (bad.attribute, bad.rule) == ("illuminanceLevel", "type: number")
    assert "'bright'" in bad.message
    # JSON booleans are not numbers, though Python's bool is an int.
    assert rules(streetlight.validate_attributes({"illuminanceLevel": True})) == {
        "illuminanceLevel": "type: number"}


def test_value_not_in_enum(streetlight: ModelSchema) -> None:
    [bad] = streetlight.validate_attributes({"powerState": "blinking"})
    assert bad.attribute == "powerState"
    # The constraint is abbreviated after three values; the message quotes the value.
    assert bad.rule == "enum: ['bootingUp', 'low', 'off', ...]"
    assert "'blinking' is not one of" in bad.message


def test_one_violation_per_bad_attribute(streetlight: ModelSchema) -> None:
    found = streetlight.validate_attributes({
        "illuminanceLevel": 2, "powerState": "on", "status": "melted", "name": 7})
    assert rules(found) == {
        "illuminanceLevel": "maximum: 1",
        "status": "enum: ['brokenLantern', 'columnIssue', 'defectiveLamp', ...]",
        "name": "type: string"}


def test_waste_container_filling_level_bounds(catalogue: SchemaCatalogue) -> None:
    container = catalogue.find("WasteContainer")
    assert container.validate_attributes({"fillingLevel": 0.75, "status": "ok",
                                          "temperature": -3.5}) == []
    assert rules(container.validate_attributes({"fillingLevel": 1.2})) == {
        "fillingLevel": "maximum: 1"}
    assert rules(container.validate_attributes({"fillingLevel": -0.5})) == {
        "fillingLevel": "minimum: 0"}
    assert rules(container.validate_attributes({"methaneConcentration": -1})) == {
        "methaneConcentration": "minimum: 0"}


def test_air_quality_numeric_fields(catalogue: SchemaCatalogue) -> None:
    air = catalogue.find("AirQualityObserved")
    assert air.validate_attributes({
        "pm10": 41.2, "pm25": 18, "no2": 0, "relativeHumidity": 0.64, "temperature": -4.5,
        "airQualityIndex": 57, "windDirection": -90, "dateObserved": "2024-05-01T08:00:00Z",
    }) == []
    assert rules(air.validate_attributes({
        "pm10": -3, "relativeHumidity": 1.5, "airQualityIndex": 12.5, "no2": "high",
        "windDirection": 200,
    })) == {
        "pm10": "minimum: 0", "relativeHumidity": "maximum: 1",
        "airQualityIndex": "type: integer", "no2": "type: number",
        "windDirection": "maximum: 180"}


def test_traffic_flow_and_flood_monitoring(catalogue: SchemaCatalogue) -> None:
    traffic = catalogue.find("TrafficFlowObserved")
    assert traffic.validate_attributes({"intensity": 120, "occupancy": 0.3,
                                        "congested": False}) == []
    assert rules(traffic.validate_attributes({"occupancy": 1.2, "congested": "yes"})) == {
        "occupancy": "maximum: 1", "congested": "type: boolean"}
    flood = catalogue.find("FloodMonitoring")
    assert flood.validate_attributes({"currentLevel": 1.8, "alertLevel": 2.5}) == []
    assert rules(flood.validate_attributes({"currentLevel": "1.8m"})) == {
        "currentLevel": "type: number"}


def test_geoproperty_is_checked_as_geojson(streetlight: ModelSchema) -> None:
    assert streetlight.validate_attributes({"location": {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}) == []
    # The Point alternative is the one the value came closest to: its error is reported,
    # not the bare "not valid under any of the given schemas".
    [bad] = streetlight.validate_attributes({"location": {"type": "Point", "coordinates": "x"}})
    assert (bad.attribute, bad.rule) == ("location", "type: array")
    assert bad.message == "location.coordinates: 'x' is not of type 'array'"
    [flat] = streetlight.validate_attributes({"location": "16.06,108.22"})
    assert (flat.attribute, flat.rule) == ("location", "type: object")


def test_nested_position_is_named_in_the_message(streetlight: ModelSchema) -> None:
    [bad] = streetlight.validate_attributes({"refDevice": ["urn:ngsi-ld:Device:1", 42]})
    assert (bad.attribute, bad.rule) == ("refDevice", "type: string")
    assert bad.message.startswith("refDevice[1]: 42 ")


def test_date_time_format_is_asserted(streetlight: ModelSchema, tmp_path: Path) -> None:
    assert streetlight.validate_attributes({"dateLastLampChange": "2024-05-01T10:00:00Z"}) == []
    assert streetlight.validate_attributes({"dateLastLampChange": "2016-12-31T23:59:60Z"}) == []
    for bad in ("yesterday", "2024-05-01", "2024-13-01T10:00:00Z", "2024-05-01T10:00:00"):
        assert rules(streetlight.validate_attributes({"dateLastLampChange": bad})) == {
            "dateLastLampChange": "format: date-time"}, bad
    lenient = SchemaCatalogue(model_folder(tmp_path, "Streetlighting/Streetlight"),
                              check_formats=False).find("Streetlight")
    assert lenient.validate_attributes({"dateLastLampChange": "yesterday"}) == []


def test_long_values_are_clipped_in_messages(streetlight: ModelSchema) -> None:
    [bad] = streetlight.validate_attributes({"powerState": "x" * 5000})
    assert len(bad.message) <= 300
    assert bad.message.startswith("powerState: 'xxxx")


# --- strict mode --------------------------------------------------------------------------

def test_strict_mode_flags_attributes_the_model_does_not_define(
        streetlight: ModelSchema) -> None:
    measure = {"illuminanceLevel": 0.5, "lampTemperature": 61.5}
    assert streetlight.validate_attributes(measure) == []
    [unknown] = streetlight.validate_attributes(measure, strict=True)
    assert (unknown.attribute, unknown.rule) == ("lampTemperature", NOT_DEFINED)
    assert unknown.rule == "not defined by the model"
    assert "61.5" in unknown.message and "Streetlighting/Streetlight" in unknown.message


def test_common_attributes_count_as_defined(streetlight: ModelSchema) -> None:
    # name, address, location... come from common-schema.json through allOf.
    assert {"name", "address", "location", "id", "dateModified", "illuminanceLevel"} \
        <= streetlight.attributes
    assert streetlight.validate_attributes({"name": "Lamp 7", "address": {
        "streetAddress": "Bach Dang", "addressLocality": "Da Nang"}}, strict=True) == []


# --- lookup -------------------------------------------------------------------------------

def test_lookup_by_type_and_by_domain_model(catalogue: SchemaCatalogue) -> None:
    by_type = catalogue.find("Streetlight")
    assert by_type is catalogue.find("Streetlight")  # compiled once, then cached
    assert catalogue.find("Anything", "Streetlighting/Streetlight") is by_type
    assert catalogue.find("StreetLamp", "Streetlight") is by_type  # a model name alone
    iri = "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight"
    assert catalogue.find(iri) is by_type
    assert catalogue.find("WasteContainer").name == "WasteManagement/WasteContainer"
    assert catalogue.find("FloodMonitoring").name == "Environment/FloodMonitoring"
    assert len(catalogue.names()) == 133
    assert "Transportation/TrafficFlowObserved" in catalogue.names()


def test_default_catalogue_is_shared() -> None:
    assert default_catalogue() is default_catalogue()
    assert default_catalogue().folder == SCHEMA_DIR


def test_unknown_type_error(catalogue: SchemaCatalogue) -> None:
    with pytest.raises(UnknownSchema) as raised:
        catalogue.find("StreetLight")
    assert isinstance(raised.value, LookupError)
    message = str(raised.value)
    assert "'StreetLight'" in message and "'Streetlight'" in message  # a close match
    assert len(message) < 300  # no list of every model
    with pytest.raises(UnknownSchema, match="Parking"):
        catalogue.find("Vehicle", "Parking/Vehicle")  # Vehicle is Transportation's
    with pytest.raises(UnknownSchema, match="'Domain/Model'"):
        catalogue.find("Streetlight", "a/b/c")
    with pytest.raises(UnknownSchema):
        catalogue.find("Teapot")


def test_type_in_two_domains_needs_domain_model(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "Streetlighting/Streetlight")
    (folder / "Lighting" / "Streetlight").mkdir(parents=True)
    shutil.copy(folder / "Streetlighting/Streetlight/schema.json",
                folder / "Lighting/Streetlight/schema.json")
    catalogue = SchemaCatalogue(folder)
    with pytest.raises(AmbiguousSchema) as raised:
        catalogue.find("Streetlight")
    assert "'Domain/Model'" in str(raised.value)
    assert "'Lighting/Streetlight'" in str(raised.value)
    assert "'Streetlighting/Streetlight'" in str(raised.value)
    assert catalogue.find("Streetlight", "Lighting/Streetlight").domain == "Lighting"


# --- offline resolution -------------------------------------------------------------------

def test_every_shipped_schema_loads_and_validates_offline(no_network: list[str]) -> None:
    catalogue = SchemaCatalogue()  # a fresh one: nothing loaded before the network went
    unresolved_documents: set[str] = set()
    for name in catalogue.names():
        model = catalogue.find(name.rpartition("/")[2], name)
        assert model.dialect == "https://json-schema.org/draft/2020-12/schema"
        assert model.validate_attributes({}) == []
        assert model.validate_attributes({}, strict=True) == []
        for reasons in [*model.unresolved_attributes.values(), *model.unresolved_parts]:
            for reason in reasons.split("; "):
                assert "never fetched" in reason
                unresolved_documents.add(reason.partition("#")[0].partition(" ")[0])
        # Every attribute with a definition is compiled; the others are listed, not lost.
        assert model.attributes == set(model._validators) | set(model.unresolved_attributes)
    # Only references into documents absent from the fixtures are left unresolved.
    assert unresolved_documents == MISSING_DOCUMENTS


def test_attribute_defined_in_a_missing_document_raises(catalogue: SchemaCatalogue) -> None:
    air = catalogue.find("AirQualityObserved")
    assert set(air.unresolved_attributes) == {"airQualityLevel"}
    assert air.validate_attributes({"pm10": 12}) == []  # the rest of the model works
    with pytest.raises(UnresolvableReference, match="Environment-schema.json") as raised:
        air.validate_attributes({"pm10": 12, "airQualityLevel": "good"})
    assert "airQualityLevel" in str(raised.value)


def test_strict_mode_on_a_model_with_a_missing_part_raises(catalogue: SchemaCatalogue) -> None:
    device = catalogue.find("Device")  # most of it is in device-schema.json, not shipped
    assert device.unresolved_parts
    assert device.validate_attributes({"lampTemperature": 61.5}) == []
    # It might be one of device-schema.json's attributes: strict mode cannot tell.
    with pytest.raises(UnresolvableReference, match="device-schema.json"):
        device.validate_attributes({"lampTemperature": 61.5}, strict=True)


def test_a_missing_domain_document_added_to_the_folder_resolves(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "Environment/AirQualityObserved")
    # Named by a raw.githubusercontent.com URL in the model; looked for at <Domain>/<file>.
    (folder / "Environment" / "Environment-schema.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://smart-data-models.github.io/dataModel.Environment/"
               "Environment-schema.json",
        "definitions": {"airQualityLevel": {"type": "string", "enum": ["good", "poor"]}}}))
    air = SchemaCatalogue(folder).find("AirQualityObserved")
    assert air.unresolved_attributes == {}
    assert air.validate_attributes({"airQualityLevel": "good"}) == []
    assert rules(air.validate_attributes({"airQualityLevel": "awful"})) == {
        "airQualityLevel": "enum: ['good', 'poor']"}


def test_a_url_that_maps_to_no_file_is_never_fetched(tmp_path: Path,
                                                     no_network: list[str]) -> None:
    folder = model_folder(tmp_path)
    write_schema(folder, "Test/Gauge", {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://smart-data-models.github.io/dataModel.Test/Gauge/schema.json",
        "allOf": [
            {"$ref": f"{COMMON}#/definitions/GSMA-Commons"},
            {"properties": {
                "level": {"type": "number", "maximum": 10},
                "remote": {"$ref": "https://example.org/schemas/level.json#/definitions/a"},
                "elsewhere": {"$ref": "../../../../etc/passwd"},
            }},
        ]})
    gauge = SchemaCatalogue(folder).find("Gauge")
    assert gauge.validate_attributes({"level": 3, "name": "g"}) == []
    assert "never fetched" in gauge.unresolved_attributes["remote"]
    assert "https://example.org/schemas/level.json" in gauge.unresolved_attributes["remote"]
    assert "never fetched" in gauge.unresolved_attributes["elsewhere"]
    with pytest.raises(UnresolvableReference, match="example.org"):
        gauge.validate_attributes({"remote": 1})


def test_urls_map_to_files_of_the_folder_only(catalogue: SchemaCatalogue) -> None:
    folder = catalogue.folder
    assert catalogue.local_path(COMMON) == folder / "common-schema.json"
    assert catalogue.local_path(
        "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json#/x"
    ) == folder / "Weather" / "weather-schema.json"
    assert catalogue.local_path(
        "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
        "Environment-schema.json") == folder / "Environment" / "Environment-schema.json"
    for outside in ("https://example.org/common-schema.json",
                    "https://smart-data-models.github.io/dataModel.X/../../secret.json",
                    "https://smart-data-models.github.io/dataModel.X/%2e%2e/secret.json",
                    "file:///etc/passwd",
                    "https://raw.githubusercontent.com/someone/dataModel.X/master/a.json"):
        path = catalogue.local_path(outside)
        assert path is None or path.resolve().is_relative_to(folder), outside


def test_validation_needs_no_document_lookup_after_loading(tmp_path: Path) -> None:
    catalogue = SchemaCatalogue(model_folder(tmp_path, "Streetlighting/Streetlight"))
    streetlight = catalogue.find("Streetlight")

    def refuse(uri: str) -> Any:
        raise AssertionError(f"document {uri} retrieved while validating")

    catalogue._retrieve = refuse  # type: ignore[method-assign]
    # location and name are defined in common-schema.json: it is already in the registry.
    assert streetlight.validate_attributes({"location": POINT, "name": "Lamp 7"}) == []
    assert rules(streetlight.validate_attributes({"location": {"type": "Point"}})) == {
        "location": "required: ['type', 'coordinates']"}


# --- broken schema files ------------------------------------------------------------------

def test_unreadable_or_unknown_dialect_schema_is_a_clear_error(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    (folder / "Test" / "Broken").mkdir(parents=True)
    (folder / "Test" / "Broken" / "schema.json").write_text("{not json")
    write_schema(folder, "Test/Future", {"$schema": "https://json-schema.org/draft/2099/schema",
                                         "properties": {"a": {"type": "number"}}})
    write_schema(folder, "Test/Wrong", {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                        "properties": {"a": {"type": "numbr"}}})
    catalogue = SchemaCatalogue(folder)
    with pytest.raises(InvalidSchema, match="cannot read schema"):
        catalogue.find("Broken")
    with pytest.raises(InvalidSchema, match="draft/2099"):
        catalogue.find("Future")
    with pytest.raises(InvalidSchema, match="not a valid schema"):
        catalogue.find("Wrong")


def test_a_draft_07_schema_uses_the_draft_07_validator(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    # exclusiveMaximum is a boolean modifier in draft 4 and a number from draft 6 on.
    write_schema(folder, "Test/Old", {"$schema": "http://json-schema.org/draft-07/schema#",
                                      "properties": {"level": {"exclusiveMaximum": 1}}})
    old = SchemaCatalogue(folder).find("Old")
    assert old.dialect == "http://json-schema.org/draft-07/schema#"
    assert rules(old.validate_attributes({"level": 1})) == {"level": "exclusiveMaximum: 1"}
