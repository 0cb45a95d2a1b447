"""Settings of the catalogue, shared tables and deliveries (``HUB_CATALOG__*``, ``HUB_KAFKA__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CatalogSettings(BaseModel):
    """Where the hub keeps its metadata and shared tables."""

    metadata_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the hub metadata (batches, quarantine); "
        "default: SQLite under the hub home, PostgreSQL in production.",
    )
    iceberg_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the Iceberg SQL catalog; default: SQLite under the hub home.",
    )
    warehouse: str | None = Field(
        default=None,
        description="Warehouse location (file:// or object-store URL) holding table data and staging.",
    )
    namespace: str = Field(default="shared", description="Iceberg namespace of shared datasets.")


class KafkaSettings(BaseModel):
    """Where registered records are published."""

    bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers; the default is the embedded broker of `hub broker start`.",
    )
    topic_prefix: str = Field(default="hub.", description="Prefix of every topic the hub writes.")
    request_timeout_ms: int = Field(
        default=15_000, description="How long a send may wait for the broker before it fails."
    )
    embedded: bool = Field(
        default=True,
        description="Whether `hub demo` starts the embedded broker; set false with a real cluster.",
    )
