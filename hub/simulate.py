"""Simulated department systems behind the hub's sources, for the demo, tests and benchmarks.

``hub simulate SOURCE`` fills the system a source file points at: a SQL source's table
(at the source's own URL unless another is given).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.config import SourceConfig, SqlConnectorConfig, resolve_url
from hub.settings import HubSettings
from schemas.errors import ConfigurationError

Progress = Callable[[int], None]


def target_url(source: SourceConfig, settings: HubSettings) -> str:
    """The URL the source reads, where its simulator writes."""
    if not isinstance(source.connector, SqlConnectorConfig):
        raise ConfigurationError(f"source {source.name!r} is not a SQL source: it has no table to fill")
    return resolve_url(source.connector, settings.source_env(), source=source.name)


def simulate(
    source: SourceConfig,
    settings: HubSettings,
    *,
    rows: int,
    url: str | None = None,
    seed: int | None = None,
    defect_rate: float | None = None,
    progress: Progress | None = None,
) -> Any:
    """Fill the source's system with ``rows`` simulated records; returns the simulator's report."""
    target = url or target_url(source, settings)
    assert isinstance(source.connector, SqlConnectorConfig)
    if source.dataset == "population":
        from connectors.simulator import population as simulator
    elif source.dataset == "legal_entity":
        from connectors.simulator import legal_entity as simulator  # type: ignore[no-redef]
    else:
        raise ConfigurationError(f"no simulator fills source {source.name!r} (dataset {source.dataset})")
    options: dict[str, Any] = {"table": source.connector.table, "progress": progress}
    if seed is not None:
        options["seed"] = seed
    if defect_rate is not None:
        options["rates"] = simulator.DefectRates.uniform(defect_rate)
    return simulator.fill(target, rows, **options)
