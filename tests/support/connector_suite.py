"""The one test suite every connector kind passes.

A connector kind's tests subclass :class:`ConnectorSuite` and provide a ``harness``
fixture returning a :class:`Harness`: an object that can put canonical population rows
into the kind's source (a table, an API's records, a drop folder), change them, break the
source's schema or one value, and make the source unreachable. The tests only speak
Arrow tables in the population contract's canonical schema, so they say the same thing
of every kind::

    class TestSqliteConnector(ConnectorSuite):
        @pytest.fixture
        def harness(self, tmp_path): return SqliteHarness(tmp_path)
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from connectors.base import ERRORS_COLUMN, Connector, batch_schema
from connectors.simulator.population import DefectRates, generate
from schemas.contract import load_contract
from schemas.errors import ContractError, TransientError

CONTRACT = load_contract("population")
SCHEMA = CONTRACT.arrow_schema()
KEY = "id_number"
AS_OF = dt.datetime(2025, 6, 1)
"""Every generated ``updated_at`` lies in the year before this; changes come after it."""


class Harness(Protocol):
    """What a connector kind's tests provide to the shared suite."""

    source_name: str
    """Name of the source: messages must name it."""

    def connector(self, full: bool = False) -> Connector:
        """A fresh connector on the current source (``full``: re-read everything, ``--full``)."""

    def load(self, rows: pa.Table) -> None:
        """Replace the source's records with these canonical-schema population rows."""

    def upsert(self, rows: pa.Table) -> None:
        """Day 2: add new rows and replace changed ones (same key, later cursor)."""

    def drop_column(self, field: str) -> None:
        """The source column mapped to ``field`` disappears (dropped or renamed)."""

    def add_column(self, name: str) -> None:
        """A new column ``name`` appears in the source."""

    def put_bad_value(self, field: str, row: int) -> None:
        """Row ``row`` (position in the last loaded table) gets a value of ``field`` that
        cannot convert (or, for files, bad encoding)."""

    def make_unreachable(self) -> str | None:
        """Point the source somewhere unreachable; returns a secret now in its configuration
        (password, token) that no message may show, or None."""


def population_rows(n: int, *, seed: int = 7) -> pa.Table:
    """``n`` clean canonical population rows, ``updated_at`` before :data:`AS_OF`."""
    batches = list(generate(n, seed=seed, rates=DefectRates.uniform(0.0), chunk_rows=max(n, 1), as_of=AS_OF))
    return pa.Table.from_batches(batches, schema=SCHEMA)


def day_two(base: pa.Table, *, changed: int, new: int, seed: int = 8) -> pa.Table:
    """``changed`` rows of ``base`` with a new status, plus ``new`` rows not in ``base``,
    all with an ``updated_at`` after :data:`AS_OF` (one second apart)."""
    edited = base.slice(0, changed)
    status = edited.schema.get_field_index("registration_status")
    edited = edited.set_column(status, "registration_status", pa.array(["4"] * changed, pa.string()))
    extra = population_rows(new * 2 + 10, seed=seed)
    extra = extra.filter(pc.invert(pc.is_in(extra[KEY], value_set=base[KEY]))).slice(0, new)
    rows = pa.concat_tables([edited, extra])
    stamps = [AS_OF + dt.timedelta(days=1, seconds=i) for i in range(rows.num_rows)]
    at = rows.schema.get_field_index("updated_at")
    return rows.set_column(at, "updated_at", pa.array(stamps, pa.timestamp("us")))


def read_all(connector: Connector, since: str | None = None) -> pa.Table:
    """Every batch of one read, checked to be in the connector batch schema."""
    expected = batch_schema(SCHEMA)
    batches = list(connector.read(since=since))
    for batch in batches:
        assert batch.schema.equals(expected), batch.schema
    return pa.Table.from_batches(batches, schema=expected)


def canonical(table: pa.Table) -> pa.Table:
    """Rows without the errors column, in key order, for comparison."""
    if ERRORS_COLUMN in table.column_names:
        table = table.drop_columns([ERRORS_COLUMN])
    return table.cast(SCHEMA).sort_by(KEY)


class ConnectorSuite:
    """Behaviour every connector kind must have; subclasses provide ``harness``."""

    rows = 120
    """Small enough for a fast suite, more than one chunk when the harness chunks by 50."""
    bad_field = "birth_date"
    """A field whose source value can be made unconvertible; files may choose a text field."""

    @pytest.fixture
    def harness(self) -> Harness:
        raise NotImplementedError("a connector suite subclass provides the harness fixture")

    def _full(self, harness: Harness) -> tuple[pa.Table, str | None]:
        connector = harness.connector(full=True)
        try:
            read = read_all(connector)
            mark = connector.watermark
            connector.commit()
        finally:
            connector.close()
        return read, mark

    def test_full_load_returns_every_row_in_the_canonical_schema(self, harness: Harness) -> None:
        rows = population_rows(self.rows)
        harness.load(rows)
        read, mark = self._full(harness)
        assert read.num_rows == rows.num_rows
        assert read[ERRORS_COLUMN].null_count == read.num_rows
        assert canonical(read).equals(canonical(rows))
        assert mark == pc.max(rows["updated_at"]).as_py().isoformat()

    def test_incremental_read_returns_only_new_and_changed_rows(self, harness: Harness) -> None:
        rows = population_rows(self.rows)
        harness.load(rows)
        _, first = self._full(harness)
        assert first is not None
        changes = day_two(rows, changed=5, new=7)
        harness.upsert(changes)
        connector = harness.connector()
        try:
            read = read_all(connector, since=first)
            second = connector.watermark
        finally:
            connector.close()
        assert canonical(read).equals(canonical(changes))
        assert second == pc.max(changes["updated_at"]).as_py().isoformat()
        assert second is not None and second > first

    def test_watermark_stays_when_nothing_changed(self, harness: Harness) -> None:
        harness.load(population_rows(self.rows))
        _, mark = self._full(harness)
        connector = harness.connector()
        try:
            assert read_all(connector, since=mark).num_rows == 0
            assert connector.watermark == mark
        finally:
            connector.close()

    def test_empty_source_gives_no_rows_and_no_error(self, harness: Harness) -> None:
        harness.load(population_rows(0))
        read, mark = self._full(harness)
        assert read.num_rows == 0
        assert mark is None

    def test_unreachable_source_is_transient_and_names_the_source_without_secrets(
        self, harness: Harness
    ) -> None:
        harness.load(population_rows(3))
        secret = harness.make_unreachable()
        connector = harness.connector(full=True)
        try:
            for call in (connector.check, lambda: read_all(connector)):
                with pytest.raises(TransientError) as caught:
                    call()
                message = str(caught.value)
                assert caught.value.retriable
                assert harness.source_name in message
                if secret:
                    assert secret not in message and secret not in repr(connector)
        finally:
            connector.close()

    def test_dropped_column_fails_naming_column_and_source(self, harness: Harness) -> None:
        harness.load(population_rows(self.rows))
        harness.drop_column("mobile")
        connector = harness.connector(full=True)
        try:
            with pytest.raises(ContractError) as caught:
                read_all(connector)
        finally:
            connector.close()
        assert "mobile" in str(caught.value) and harness.source_name in str(caught.value)

    def test_added_column_is_a_warning_and_rows_still_come(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        rows = population_rows(self.rows)
        harness.load(rows)
        harness.add_column("hjlx_new")
        with caplog.at_level(logging.WARNING):
            read, _ = self._full(harness)
        assert "hjlx_new" in caplog.text
        assert canonical(read).equals(canonical(rows))

    def test_bad_value_flags_its_row_and_field_and_keeps_the_others(self, harness: Harness) -> None:
        rows = population_rows(self.rows)
        harness.load(rows)
        harness.put_bad_value(self.bad_field, 3)
        read, _ = self._full(harness)
        assert read.num_rows == rows.num_rows
        bad_key = rows[KEY][3].as_py()
        is_bad = pc.equal(read[KEY], bad_key)
        (flagged,) = read.filter(is_bad).to_pylist()
        assert flagged[ERRORS_COLUMN] == [self.bad_field]
        assert flagged[self.bad_field] is None
        others = read.filter(pc.invert(is_bad))
        assert others[ERRORS_COLUMN].null_count == others.num_rows
        expected = rows.filter(pc.not_equal(rows[KEY], bad_key))
        assert canonical(others).equals(canonical(expected))
