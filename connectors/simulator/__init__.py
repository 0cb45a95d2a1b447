"""Simulated department systems for development, tests and benchmarks.

``population`` (the public-security registry), ``legal_entity`` (the market-regulation
register) and ``certificate`` (the certificate issuing system) draw related records from
one :class:`~connectors.simulator.world.World`, so legal representatives and certificate
holders exist in the population and the register.
"""

from __future__ import annotations

from connectors.simulator.population import (
    DEFECT_KINDS,
    ApplyReport,
    Changes,
    DefectRates,
    SimulationReport,
    expected_quarantined,
    fill,
    generate,
    registry_table,
)
from connectors.simulator.world import World

__all__ = [
    "DEFECT_KINDS",
    "ApplyReport",
    "Changes",
    "DefectRates",
    "SimulationReport",
    "World",
    "expected_quarantined",
    "fill",
    "generate",
    "registry_table",
]
