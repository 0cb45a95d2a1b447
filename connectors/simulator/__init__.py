"""Simulated department databases for development, tests and benchmarks."""

from __future__ import annotations

from connectors.simulator.population import (
    DEFECT_KINDS,
    DefectRates,
    SimulationReport,
    expected_quarantined,
    fill,
    generate,
    registry_table,
)

__all__ = [
    "DEFECT_KINDS",
    "DefectRates",
    "SimulationReport",
    "expected_quarantined",
    "fill",
    "generate",
    "registry_table",
]
