"""The shared catalogue (政务数据目录): one entry per dataset, generated from its contract and
edited by stewards as versions, published for consumers, and kept in step with new contract
versions; search, JSON and DCAT exports, coverage and freshness, lineage (source -> batch ->
snapshot -> deliveries) and quality scorecards, all read from the hub metadata.
"""

from __future__ import annotations

from catalog.entries.catalogue import Catalogue
from catalog.entries.changes import ContractChange, contract_change
from catalog.entries.content import EntryContent, InformationItem
from catalog.entries.coverage import GRACE, Provider, allowed_age, status
from catalog.entries.dcat import (
    ACCESS_RIGHT,
    DEFAULT_BASE_URI,
    FREQUENCY,
    SCHEMA_PATH,
    export_dcat,
    export_json,
    json_schema,
)
from catalog.entries.editable import EDITABLE, Editable
from catalog.entries.errors import (
    CatalogueError,
    ConcurrentEditError,
    ContractChangeRefusedError,
    UnknownDatasetError,
)
from catalog.entries.generation import all_contracts, contract_digest, generate
from catalog.entries.lineage import (
    DatasetLineage,
    Delivery,
    DeliverySource,
    dataset_lineage,
    openlineage_events,
    openlineage_file,
    sent_deliveries,
)
from catalog.entries.scorecard_html import render_html
from catalog.entries.scorecards import batch_scores, scorecard
from catalog.entries.scores import (
    CYCLE_PERIODS,
    BatchScore,
    DatasetCard,
    DayScore,
    DepartmentCard,
    Score,
    Scorecard,
    Timeliness,
    parse_since,
    timeliness,
    to_json_text,
)
from catalog.entries.sync import SYSTEM_AUTHOR
from catalog.entries.views import EntryView, Facts, SearchHit, SyncReport, VersionInfo

__all__ = [
    "ACCESS_RIGHT",
    "CYCLE_PERIODS",
    "DEFAULT_BASE_URI",
    "EDITABLE",
    "FREQUENCY",
    "GRACE",
    "SCHEMA_PATH",
    "SYSTEM_AUTHOR",
    "BatchScore",
    "Catalogue",
    "CatalogueError",
    "ConcurrentEditError",
    "ContractChange",
    "ContractChangeRefusedError",
    "DatasetCard",
    "DatasetLineage",
    "DayScore",
    "Delivery",
    "DeliverySource",
    "DepartmentCard",
    "Editable",
    "EntryContent",
    "EntryView",
    "Facts",
    "InformationItem",
    "Provider",
    "Score",
    "Scorecard",
    "SearchHit",
    "SyncReport",
    "Timeliness",
    "UnknownDatasetError",
    "VersionInfo",
    "all_contracts",
    "allowed_age",
    "batch_scores",
    "contract_change",
    "contract_digest",
    "dataset_lineage",
    "export_dcat",
    "export_json",
    "generate",
    "json_schema",
    "openlineage_events",
    "openlineage_file",
    "parse_since",
    "render_html",
    "scorecard",
    "sent_deliveries",
    "status",
    "timeliness",
    "to_json_text",
]
