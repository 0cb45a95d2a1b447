"""Dataset contracts and the schemas derived from them."""

from schemas.contract import BATCH_ID_COLUMN, Contract, ContractField, FieldType, MaskRule, load_contract

__all__ = ["BATCH_ID_COLUMN", "Contract", "ContractField", "FieldType", "MaskRule", "load_contract"]
