"""Fixtures of the quality tests."""

from __future__ import annotations

import pytest

from schemas.contract import Contract
from tests.support import samples


@pytest.fixture(scope="session")
def population() -> Contract:
    return samples.population()
