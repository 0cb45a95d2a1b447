"""Imports every module that declares tables on :data:`catalog.metadata.models.Base`, so that
migrations and schema checks see the whole hub metadata."""

from __future__ import annotations

import catalog.audit.log
import catalog.corrections.corrections
import catalog.deliveries.outbox
import catalog.entries.catalogue
import catalog.metadata.models
import catalog.sharing.grants
from catalog.metadata.models import Base

__all__ = ["MODULES", "Base"]

MODULES = (
    catalog.metadata.models,
    catalog.entries.catalogue,
    catalog.sharing.grants,
    catalog.audit.log,
    catalog.deliveries.outbox,
    catalog.corrections.corrections,
)
