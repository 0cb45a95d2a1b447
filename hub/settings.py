"""Typed settings of the whole hub.

Values come from arguments, then ``HUB_SECTION__KEY`` environment variables, then a
TOML settings file (``HUB_SETTINGS_FILE``, default ``<home>/settings.toml``), then the
defaults below. Every location is a URL or path so that nothing assumes one machine.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from catalog.settings import (
    ApiSettings,
    AuditSettings,
    CatalogSettings,
    KafkaSettings,
    ProcessSettings,
    SharingSettings,
    configure,
)
from connectors.settings import ConnectorSettings
from masking.settings import MaskingSettings
from quality.settings import QualitySettings


def _settings_file() -> Path:
    explicit = os.environ.get("HUB_SETTINGS_FILE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("HUB_HOME", ".hub")) / "settings.toml"


class HubSettings(BaseSettings):
    """Everything the hub can be told."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    home: Path = Field(
        default=Path(".hub"),
        description="Folder for local state (metadata, warehouse, broker); relative to the "
        "working directory so that a checkout is self-contained by default.",
    )
    connectors: ConnectorSettings = Field(default_factory=ConnectorSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    masking: MaskingSettings = Field(default_factory=MaskingSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    sharing: SharingSettings = Field(default_factory=SharingSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_settings_file())
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _derive_locations(self) -> HubSettings:
        self.home = self.home.expanduser().resolve()
        if self.catalog.metadata_url is None:
            self.catalog.metadata_url = f"sqlite:///{self.home / 'hub.db'}"
        if self.catalog.iceberg_url is None:
            self.catalog.iceberg_url = f"sqlite:///{self.home / 'iceberg.db'}"
        if self.catalog.warehouse is None:
            self.catalog.warehouse = (self.home / "warehouse").as_uri()
        return self

    @property
    def staging_dir(self) -> Path:
        """Local staging area for batches between pipeline steps."""
        return self.home / "staging"

    def source_env(self) -> dict[str, str]:
        """Environment that source files expand ``${VAR}`` from: the process's, plus HUB_HOME."""
        return {**os.environ, "HUB_HOME": str(self.home)}

    def ensure_home(self) -> None:
        for folder in (self.home, self.home / "sources", self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings(**overrides: Any) -> HubSettings:
    """The process-wide settings; call ``get_settings.cache_clear()`` after changing the env.

    Also hands the catalogue the sections it reads when a caller passes none (the access
    log's keys and limits, the sharing deadlines): lower layers never read settings themselves.
    """
    settings = HubSettings(**overrides)
    configure(
        ProcessSettings(
            audit=settings.audit,
            sharing=settings.sharing,
            keyring_path=settings.masking.keyring_path,
            master_key_file=settings.masking.master_key_file,
        )
    )
    return settings
