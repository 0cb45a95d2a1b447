"""Settings of the catalogue, shared tables and deliveries (``HUB_CATALOG__*``, ``HUB_KAFKA__*``,
``HUB_SHARING__*``, ``HUB_AUDIT__*``, ``HUB_API__*``), and what the hub hands down of them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from masking.settings import MaskingSettings


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


class SharingSettings(BaseModel):
    """Deadlines and defaults of the sharing workflow (``HUB_SHARING__*``)."""

    unconditional_days: int = Field(
        default=1, ge=0, description="Working days to answer a request for an unconditional dataset."
    )
    conditional_days: int = Field(
        default=10, ge=1, description="Working days to answer a request for a conditional dataset."
    )
    calendar_file: str | None = Field(
        default=None,
        description="Working-day calendar (holidays and adjusted working weekends) as YAML; "
        "default: the calendar shipped with the hub.",
    )
    default_grant_days: int = Field(
        default=365, ge=1, description="Grant duration when a request names none."
    )


class AuditSettings(BaseModel):
    """The tamper-evident access log (``HUB_AUDIT__*``)."""

    retention_days: int = Field(
        default=180,
        ge=180,
        description="Minimum age in days before access-log entries may be purged; the law asks for "
        "at least six months, so this can be raised but never set below 180.",
    )
    checkpoint_every: int = Field(
        default=1000, ge=1, description="Entries between two signed checkpoints of the access log."
    )
    unusual_factor: float = Field(
        default=3.0,
        gt=1.0,
        description="`hub audit report` flags a system's day whose calls or rows exceed this many "
        "times the median of that system's active days in the report period.",
    )
    unusual_min_days: int = Field(
        default=5,
        ge=2,
        description="Active days a system needs in the report period before its days are judged "
        "unusual (fewer give no meaningful median).",
    )


class ApiSettings(BaseModel):
    """The consumers' HTTP API, ``hub serve`` (``HUB_API__*``)."""

    host: str = Field(default="127.0.0.1", description="Address `hub serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `hub serve` listens on.")
    proxy_headers: bool = Field(
        default=False,
        description="Take the client address from X-Forwarded-For when the request comes from "
        "`forwarded_allow_ips` (set true behind a reverse proxy).",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="Proxies trusted to set X-Forwarded-For (comma-separated)."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="How long a successful authentication is reused; a revoked system or rotated "
        "credential is refused at most this long after the change (0: check every request).",
    )
    query_rate: float = Field(
        default=2.0, gt=0, description="POST /v1/query: requests per second per system."
    )
    query_burst: int = Field(default=10, ge=1, description="POST /v1/query: burst per system.")
    verify_rate: float = Field(
        default=20.0, gt=0, description="POST /v1/verify: requests per second per system."
    )
    verify_burst: int = Field(default=50, ge=1, description="POST /v1/verify: burst per system.")
    catalog_rate: float = Field(
        default=5.0, gt=0, description="GET /v1/catalog: requests per second per system."
    )
    catalog_burst: int = Field(default=20, ge=1, description="GET /v1/catalog: burst per system.")
    query_seconds: float = Field(default=30.0, gt=0, description="Time limit of one query.")
    query_max_rows: int = Field(
        default=100_000, ge=1, description="Most rows one query returns (a request may ask for fewer)."
    )
    enumeration_window_seconds: float = Field(
        default=600.0, gt=0, description="Window in which verification answers are counted per system."
    )
    enumeration_no_match: int = Field(
        default=50,
        ge=1,
        description="No-match verification answers a system may get in the window before it is "
        "refused for the cool-down (enumeration suspected).",
    )
    enumeration_prefix_length: int = Field(
        default=14,
        ge=1,
        description="Identity numbers and credit codes sharing this many leading characters count "
        "as sequentially close (14: same county and birth date of an identity number).",
    )
    enumeration_close: int = Field(
        default=5,
        ge=2,
        description="Distinct close identity numbers or credit codes a system may verify in the "
        "window before it is refused for the cool-down.",
    )
    enumeration_cooldown_seconds: float = Field(
        default=900.0, gt=0, description="How long a system suspected of enumeration is refused."
    )
    index_reload_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the server checks the verification indexes for a new snapshot.",
    )


class ProcessSettings(BaseModel):
    """What the catalogue uses when a caller hands it nothing: the sections of the hub's
    settings that the access log and the sharing workflow read, with the keyring's location.

    The catalogue never reads ``hub.settings`` (a lower layer never imports a higher one):
    ``hub.settings.get_settings()``, which every command, task and server calls first, hands
    them down through :func:`configure`. Used without the hub, the catalogue runs on the
    documented defaults.
    """

    audit: AuditSettings = Field(default_factory=AuditSettings)
    sharing: SharingSettings = Field(default_factory=SharingSettings)
    keyring_path: Path = Field(default_factory=lambda: MaskingSettings().keyring_path)
    master_key_file: Path | None = None


_current = ProcessSettings()


def configure(settings: ProcessSettings) -> None:
    """Set what the catalogue uses when a caller hands it nothing (called by ``hub.settings``)."""
    global _current
    _current = settings


def current() -> ProcessSettings:
    """The settings handed down by :func:`configure`, or the documented defaults."""
    return _current
