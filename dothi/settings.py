"""The one typed settings object; every option has a ``DOTHI_*`` environment twin."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOTHI_", extra="ignore")

    database_url: str = "sqlite:///./dothi.db"
    host: str = "127.0.0.1"
    port: int = 1026
    workers: int = 1
    # Folder of @context documents to preload (manifest.json maps URL -> file name).
    context_dir: Path | None = None
    # Whether a context that is not in the cache may be fetched over the network.
    context_fetch: bool = True
    context_fetch_timeout: float = 3.0
    max_body_bytes: int = 20 * 1024 * 1024
    default_limit: int = 20
    max_limit: int = 1000
    batch_max_entities: int = 10000
    # Keep every attribute instance written, for the temporal API.
    history: bool = True
    # Instances per attribute in one temporal response before it is truncated (206).
    temporal_max_instances: int = 1000
