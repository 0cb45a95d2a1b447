"""The leak scan over everything consumers can reach: the shared tables and views, the
grants' topics and exported files (raw identity numbers, individual-business credit codes,
mobiles, unmasked names). Used by ``hub scan`` and by the demo, which fails on any finding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hub.context import HubContext

if TYPE_CHECKING:
    from hub.settings import HubSettings
    from masking.scan import Finding


MESSAGE_LIMIT = 1_000_000
"""Messages read per topic at most: a whole demo topic, while bounding a runaway read."""


def _names(table: str) -> tuple[str, ...]:
    """Columns that must hold masked names in a shared table: a contract's dataset or a view of one."""
    from masking.scan import name_columns
    from schemas.contract import CONTRACT_DIR, load_contract

    dataset = table.removesuffix("_unconditional")
    if (CONTRACT_DIR / f"{dataset}.yaml").exists():
        contract = load_contract(dataset)
        return (
            name_columns(contract, "unconditional")
            if table.endswith("_unconditional")
            else name_columns(contract)
        )
    return ()  # hub-owned tables without a contract (token_map) hold tokens only


def scan_outputs(
    settings: HubSettings,
    *,
    datasets: list[str] | None = None,
    tables: bool = True,
    topics: bool = False,
    paths: list[Path] | None = None,
) -> list[Finding]:
    """Leaks in the consumer-facing outputs: shared tables and views, grants' topics, exported files."""
    from catalog.tables import SharedTables
    from masking.scan import scan_file, scan_messages, scan_table

    findings: list[Finding] = []
    assert settings.catalog.iceberg_url is not None and settings.catalog.warehouse is not None
    shared = SharedTables(
        settings.catalog.iceberg_url, settings.catalog.warehouse, namespace=settings.catalog.namespace
    )
    names = list(datasets) if datasets else shared.datasets()
    if tables and names:
        from catalog.tables import QueryEngine

        engine = QueryEngine(shared)
        for name in names:
            result = engine.run(f'SELECT * FROM "{name}"', datasets=[name])
            findings += scan_table(result, source=f"table {name}", names=_names(name))
    if topics:
        from catalog.deliveries import delivered_topics, read_messages
        from masking.scan import name_columns
        from schemas.contract import load_contract

        for topic, grant in delivered_topics(HubContext(settings).store, datasets):
            messages = read_messages(settings.kafka.bootstrap_servers, topic, MESSAGE_LIMIT, timeout_s=10)
            masked = name_columns(load_contract(grant.dataset), grant.level)
            findings += scan_messages(messages, source=f"topic {topic}", names=masked)
    for file in paths or []:
        file_names: tuple[str, ...] = ()
        for name in datasets or []:
            file_names += _names(name)
        findings += scan_file(file, names=file_names)
    return findings
