"""One synthetic world per seed, shared by every department simulator so relations hold.

The population registry, the market-regulation register and the certificate issuing
system are simulated separately, but a hub exists to join them: a company's legal
representative is a person of the population, a certificate's holder is a person or a
company. A :class:`World` fixes the seed, the sizes and the defect rates of the sources,
so each simulator draws its related records from the same people and entities:

* persons are exactly :func:`connectors.simulator.population.generate` for the world's
  seed, size and rates (fill the registry with the same arguments and the people agree);
* legal representatives and person holders are drawn from the *clean* active persons (a
  planted defect must not turn a company or certificate into an unexpected quarantine);
* entity holders are drawn from the clean existing entities of the world's register.

The vectorised building blocks the simulators share (identifier checks, random blocks,
places, dates) are in :mod:`connectors.simulator.arrays`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa

from connectors.simulator import population
from connectors.simulator.arrays import Rates, clean_persons, start_of_today

DEFAULT_SEED = population.DEFAULT_SEED
DEFAULT_PERSONS = 20_000
"""Enough people for thousands of companies and certificates, generated in a fraction of a second."""
DEFAULT_ENTITIES = 5_000
"""Market entities the default world's register holds (certificate holders come from these)."""
ADULT_AGE = 19
"""Legal representatives are at least this old at ``as_of``, so a company can be set up after
their 18th birthday and before ``as_of``."""


@dataclass(frozen=True, eq=False)
class People:
    """Clean active persons of a world: who may represent a company or hold a certificate."""

    ids: pa.Array
    names: pa.Array
    births: np.ndarray
    divisions: np.ndarray
    adult: np.ndarray
    """Indexes (into the arrays above) of persons at least :data:`ADULT_AGE` at ``as_of``."""


@dataclass(frozen=True, eq=False)
class Holders:
    """Clean existing entities of a world's register: who may hold a certificate."""

    codes: pa.Array
    names: pa.Array
    divisions: np.ndarray
    established: np.ndarray


@dataclass(frozen=True, eq=False)
class World:
    """The seed, sizes, defect rates and reference time every simulator of a run shares.

    ``as_of`` anchors every date (records of day 1 change in the year before it, day-2
    changes fall on it); it defaults to the start of today, like the population simulator.
    """

    seed: int = DEFAULT_SEED
    persons: int = DEFAULT_PERSONS
    entities: int = DEFAULT_ENTITIES
    population_rates: population.DefectRates = field(default_factory=population.DefectRates)
    entity_rates: Rates | None = None
    """The register's defect rates; None: the legal-entity simulator's defaults."""
    as_of: dt.datetime = field(default_factory=start_of_today)
    population_chunk_rows: int = population.DEFAULT_CHUNK_ROWS
    """Must match the registry's fill: the population generator's output depends on its chunk size."""

    def key(self) -> tuple[object, ...]:
        return (
            self.seed, self.persons, self.entities, self.population_rates,
            self.entity_rates, self.as_of, self.population_chunk_rows,
        )  # fmt: skip

    def population(self) -> Iterator[pa.RecordBatch]:
        """The population registry's records, exactly as its simulator fills them."""
        return population.generate(
            self.persons,
            seed=self.seed,
            rates=self.population_rates,
            chunk_rows=self.population_chunk_rows,
            as_of=self.as_of,
        )

    @cached_property
    def people(self) -> People:
        table = pa.Table.from_batches(self.population()).combine_chunks()
        status = table.column("registration_status").to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(clean_persons(table) & (status == "1"))
        if keep.size == 0:
            raise ValueError(f"the world of seed {self.seed} has no clean active person among {self.persons}")
        chosen = table.take(pa.array(keep))
        births = chosen.column("birth_date").to_numpy(zero_copy_only=False).astype("M8[D]")
        cutoff = np.datetime64(self.as_of.date().replace(month=1, day=1), "D") - np.timedelta64(
            365 * ADULT_AGE + ADULT_AGE // 4 + 1, "D"
        )
        return People(
            ids=chosen.column("id_number").combine_chunks(),
            names=chosen.column("name").combine_chunks(),
            births=births,
            divisions=np.array(chosen.column("division_code").to_pylist(), dtype=np.int64),
            adult=np.flatnonzero(births <= cutoff),
        )

    def with_register(self, entities: int, rates: Rates | None) -> World:
        """This world with another register size or defect rates (same persons, not rebuilt)."""
        other = World(
            seed=self.seed,
            persons=self.persons,
            entities=entities,
            population_rates=self.population_rates,
            entity_rates=rates,
            as_of=self.as_of,
            population_chunk_rows=self.population_chunk_rows,
        )
        if "people" in self.__dict__:
            other.__dict__["people"] = self.__dict__["people"]
        return other
