"""The shared catalogue (政务数据目录): entries generated from contracts and edited by
stewards as versions, search, JSON and DCAT exports, coverage and freshness, lineage and
quality scorecards.
"""

from __future__ import annotations

from catalog.entries.catalogue import Catalogue
from catalog.entries.content import EDITABLE, all_contracts, contract_digest
from catalog.entries.coverage import Provider, allowed_age, status
from catalog.entries.dcat import (
    ACCESS_RIGHT,
    DEFAULT_BASE_URI,
    FREQUENCY,
    SCHEMA_PATH,
    export_dcat,
    export_json,
    json_schema,
)
from catalog.entries.errors import (
    CatalogueError,
    ConcurrentEditError,
    ContractChangeRefusedError,
    UnknownDatasetError,
)
from catalog.entries.lineage import Delivery, dataset_lineage, openlineage_events, openlineage_file
from catalog.entries.scorecards import Scorecard, parse_since, render_html, scorecard, to_json_text
from catalog.entries.views import EntryView

__all__ = [
    "ACCESS_RIGHT",
    "DEFAULT_BASE_URI",
    "EDITABLE",
    "FREQUENCY",
    "SCHEMA_PATH",
    "Catalogue",
    "CatalogueError",
    "ConcurrentEditError",
    "ContractChangeRefusedError",
    "Delivery",
    "EntryView",
    "Provider",
    "Scorecard",
    "UnknownDatasetError",
    "all_contracts",
    "allowed_age",
    "contract_digest",
    "dataset_lineage",
    "export_dcat",
    "export_json",
    "json_schema",
    "openlineage_events",
    "openlineage_file",
    "parse_since",
    "render_html",
    "scorecard",
    "status",
    "to_json_text",
]
