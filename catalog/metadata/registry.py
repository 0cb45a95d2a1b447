"""Every module that declares tables on :data:`catalog.metadata.base.Base`, so that
migrations and schema checks see the whole hub metadata.

All of them live in this package, one module per domain, so listing them takes no import
of a higher layer: the store, the migrations and the schema test see every table without
the concepts above them being loaded.
"""

from __future__ import annotations

from catalog.metadata import audit, batches, corrections, deliveries, entries, sharing
from catalog.metadata.base import Base

__all__ = ["MODULES", "Base"]

MODULES = (batches, entries, sharing, audit, deliveries, corrections)
