"""Desensitization: a local keyring of versioned token keys and masking rules over Arrow arrays.

``mask_table`` turns valid rows of a contract's canonical schema into its published schema;
``Keyring.init`` / ``Keyring.load`` manage the key file behind ``hub keys init``.
"""

from __future__ import annotations

from masking.apply import mask_table
from masking.keys import KeyInfo, Keyring, Secret, TokenKey
from masking.rules import RULES, apply_rule

__all__ = ["RULES", "KeyInfo", "Keyring", "Secret", "TokenKey", "apply_rule", "mask_table"]
