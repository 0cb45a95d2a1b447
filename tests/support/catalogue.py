"""A hub home with the shared catalogue, for the catalogue tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.metadata import MetadataStore
from catalog.tables import SharedTables

STEWARD = "li"


@dataclass
class Hub:
    store: MetadataStore
    tables: SharedTables
    home: Path


PROVIDER_STEWARD = "zhao"
"""A steward of the population registry's department only (公安厅)."""
