"""Imports every module that declares tables on :data:`catalog.models.Base`, so that
migrations and schema checks see the whole hub metadata."""

from __future__ import annotations

import catalog.audit
import catalog.catalogue
import catalog.models
import catalog.outbox
import catalog.sharing
import quality.corrections
from catalog.models import Base

__all__ = ["MODULES", "Base"]

MODULES = (
    catalog.models,
    catalog.catalogue,
    catalog.sharing,
    catalog.audit,
    catalog.outbox,
    quality.corrections,
)
