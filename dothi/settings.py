"""The one typed settings object; every option has a ``DOTHI_*`` environment twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOTHI_", extra="ignore")

    database_url: str = "sqlite:///./dothi.db"
    # PostgreSQL: connections each process may hold, and seconds a request waits for one
    # (or for the database to come back) before it fails with 503.
    database_pool: int = 10
    database_timeout: float = 5.0
    # PostgreSQL: seconds one statement may run before the database stops it (a query
    # then fails with 403 TooComplexQuery; 0: no limit).
    database_statement_timeout: float = 60.0
    host: str = "127.0.0.1"
    port: int = 1026
    workers: int = 1
    # Folder of @context documents to preload (manifest.json maps URL -> file name).
    context_dir: Path | None = None
    # Whether a context that is not in the cache may be fetched over the network.
    context_fetch: bool = True
    context_fetch_timeout: float = 3.0
    max_body_bytes: int = 20 * 1024 * 1024
    # Requests a second one client address may make (a token bucket per address and
    # process, 0: no limit), how many it may make at once, and the addresses never
    # limited (comma separated; by default the machine itself).
    rate_limit: float = 50.0
    rate_burst: int = 500
    rate_exempt: str = "127.0.0.1,::1"
    # Citizens' personal data (dothi.citizen.personal): the key its values are encrypted
    # with (32 bytes in base64; else the key file, made with a random key if missing),
    # and how long it is kept (an ISO 8601 duration; `dothi personal prune` erases older
    # records; None keeps it until erased on request).
    personal_data_key: str | None = None
    personal_data_key_file: Path = Path("dothi-personal.key")
    personal_data_retention: str | None = None
    # Sign-in and access (dothi.auth). The role of a request that shows no credential
    # ("public"; "system-admin" opens everything: a lab, a conformance run), the access
    # policy (default: the shipped dothi/auth/policy.yaml) and the users' and API keys'
    # file. The built-in issuer: its URL (its tokens' iss; default http://host:port), its
    # signing key (PEM; else the key file, made if missing), its tokens' and the web
    # sessions' lifetimes in seconds. A city's own OpenID Connect provider to trust: its
    # iss, its keys (a JWK Set's URL or file), the audience its tokens must name, and the
    # claim that holds the role (a dotted path).
    auth_anonymous: str = "public"
    auth_policy: Path | None = None
    auth_accounts: Path = Path("dothi-accounts.yaml")
    auth_url: str | None = None
    auth_key: str | None = None
    auth_key_file: Path = Path("dothi-auth.key")
    auth_token_lifetime: int = 3600
    auth_session_lifetime: int = 8 * 3600
    auth_issuer: str | None = None
    auth_jwks: str | None = None
    auth_audience: str | None = None
    auth_role_claim: str = "dothi_role"
    # Private networks (CIDR, comma separated) that subscribers who do not manage the
    # platform may still have notified; other private addresses are refused to them.
    auth_private_endpoints: str = ""
    default_limit: int = 20
    max_limit: int = 1000
    batch_max_entities: int = 10000
    # Keep every attribute instance written, for the temporal API.
    history: bool = True
    # Instances per attribute in one temporal response before it is truncated (206).
    temporal_max_instances: int = 1000
    # Retention policy that `dothi history prune` applies, as ISO 8601 durations before now
    # (weeks, days, hours, minutes, seconds): instances older than history_retention are
    # deleted (None keeps everything); those older than history_downsample_after become one
    # per history_downsample_period (numbers averaged, other values the period's last).
    history_retention: str | None = None
    history_downsample_after: str | None = None
    history_downsample_period: str = "PT1H"
    # Notifications: seconds per delivery attempt (unless the endpoint says), attempts
    # before one is given up, and how long another worker waits before taking over the
    # pending notifications of a worker that stopped without releasing them.
    notification_timeout: float = 10.0
    notification_retries: int = 10
    notification_lease: float = 30.0
    # This broker's name in the Via header of requests it forwards to context sources
    # (a request that comes back naming it is refused); by default derived from the
    # database, so every worker of one instance has the same.
    broker_id: str | None = None
    # Seconds a context source has to answer a forwarded request, unless its
    # registration's management.timeout says otherwise.
    forward_timeout: float = 5.0
    # Devices (dothi.iot): the MQTT broker the devices publish to (mqtt://host:port or
    # mqtts://user:pass@host:port; unset: HTTP ingestion only), seconds between writes of
    # device health, seconds a command waits for its device's answer, and how many
    # checked messages may wait for the writer (then MQTT waits and HTTP gets 503).
    iot_mqtt_url: str | None = None
    iot_health_interval: float = 60.0
    iot_command_timeout: float = 60.0
    iot_queue: int = 50_000
    iot_batch: int = 2_000
    # Operations centre (dothi.ioc): the incident workflow file (statuses, moves, agencies,
    # service levels; default: the one shipped) and seconds between escalation checks.
    ioc_workflow: Path | None = None
    ioc_escalation_interval: float = 30.0
    # Who the IOC's CAP warnings say they come from (CAP's sender: unique to the sender,
    # an e-mail address or a domain name).
    ioc_cap_sender: str = "ioc@dothi.local"
    # The dashboard (/ioc/dashboard): its map's sensor layers (default: the shipped
    # dothi/web/layers.yaml) and the longest wait, in seconds, before an open dashboard
    # sees a write made by another server process (its own process's writes show at once).
    ioc_layers: Path | None = None
    # Seconds between recomputations of each air-quality station's hourly VN_AQI (0: never).
    ioc_aqi_interval: float = 300.0
    ioc_live_interval: float = 2.0
    # Citizens' reports (dothi.citizen, Open311): the services file (default: the shipped
    # dothi/citizen/services.yaml), the reports one client may make an hour, the API keys
    # of the apps that report under their own key (comma separated; other reports are
    # limited per address), and the keys with which officials read who made a report
    # (comma separated; unset: no one can).
    citizen_services: Path | None = None
    citizen_hourly_limit: int = 10
    open311_api_keys: str = ""
    official_keys: str = ""
    # The planners' assessment of an area: what counts as residents, amenities, green space
    # and floods (default: the shipped dothi/gis/assessment.yaml).
    planning_assessment: Path | None = None
    # How indicators are computed from the store (default: the shipped dothi/kpi/methods.yaml).
    kpi_methods: Path | None = None
    # The maturity framework cities are assessed against: levels, dimensions, criteria
    # (default: the shipped dothi/kpi/catalogues/vn-smart-city.yaml), and the keys with
    # which assessors review the cities' self-assessments (comma separated).
    kpi_framework: Path | None = None
    assessor_keys: str = ""
    # What good data is per entity type, for the database quality score (default: the
    # shipped dothi/kpi/quality.yaml).
    kpi_quality: Path | None = None
    # The open-data catalogue: which datasets are published, with their titles, publishers
    # and licences (default: the shipped dothi/opendata/datasets.yaml).
    opendata_datasets: Path | None = None
    # The registers (default: the shipped dothi/registry/registers.yaml and
    # certification.yaml), the two-digit code of the province whose identifiers this
    # instance hands out (Đà Nẵng: 48), and how often sandboxes' windows are checked (s).
    registry_registers: Path | None = None
    registry_certification: Path | None = None
    registry_province: str = "48"
    registry_check_interval: float = 3600.0
    # The national programme: its report templates (default: the shipped
    # dothi/program/templates.yaml), and how often tasks and reports are flagged and the
    # week's digest written (s).
    program_templates: Path | None = None
    program_check_interval: float = 3600.0


def for_database(db: str | None, **extra: Any) -> Settings:
    """The settings of a command given ``--db`` (a URL, or a SQLite file's path) and its
    other options; None leaves a setting to its environment twin or default."""
    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if db is not None:
        values["database_url"] = db if "://" in db else f"sqlite:///{db}"
    return Settings(**values)


def listed(text: str) -> list[str]:
    """The items of a comma-separated setting (keys, addresses, networks)."""
    return [item.strip() for item in text.split(",") if item.strip()]

