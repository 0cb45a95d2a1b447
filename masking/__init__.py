"""Desensitization: a local keyring of versioned keys and masking rules over Arrow arrays.

``mask_table`` turns valid rows of a contract's canonical schema into its published schema;
``Keyring.init`` / ``Keyring.load`` manage the key file behind ``hub keys init``;
:mod:`masking.step` is the pipeline's step. ``hub.settings`` imports ``masking.settings`` at
DAG parse time, so the public names below load on first use (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Keyring": "masking.keys",
    "MaskRuleError": "masking.errors",
    "apply_rule": "masking.rules",
    "enforce": "masking.kanon",
    "mask_staged": "masking.step",
    "mask_table": "masking.apply",
    "published_forms": "masking.apply",
    "token": "masking.rules",
    "token_mapping": "masking.token_map",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'masking' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
