"""Quality gate: every row of a batch is judged against checks derived from its contract.

:mod:`quality.checks` holds the vectorised national-standard checks, :mod:`quality.expectations`
wraps them as Great Expectations custom expectations, :mod:`quality.suite` derives a dataset's
suite from its contract, :mod:`quality.validate` splits chunks into valid and quarantined
rows, :mod:`quality.gate` judges a batch and :mod:`quality.step` is the pipeline's step.
``hub.settings`` imports ``quality.settings`` at DAG parse time, so the public names below
load on first use (PEP 562) rather than with the package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AccountingError": "quality.errors",
    "BatchHeldError": "quality.errors",
    "ChunkResult": "quality.validate",
    "ReferenceCheck": "quality.references",
    "Validated": "quality.step",
    "Validator": "quality.validate",
    "Violation": "quality.validate",
    "build_suite": "quality.suite",
    "held_error": "quality.gate",
    "judge": "quality.gate",
    "validate_staged": "quality.step",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'quality' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
