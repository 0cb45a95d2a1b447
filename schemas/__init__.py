"""Dataset contracts and the schemas derived from them; the root of the hub's errors.

The lowest layer: it imports nothing else of the hub. Its public names are listed here and
loaded on first use (PEP 562), so that ``schemas.errors`` (imported by every package, and by
DAG files at parse time) does not pull in pyarrow with the contract module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.contract import BATCH_ID_COLUMN, Contract, ContractField, FieldType, MaskRule, load_contract

__all__ = ["BATCH_ID_COLUMN", "Contract", "ContractField", "FieldType", "MaskRule", "load_contract"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("schemas.contract"), name)
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
