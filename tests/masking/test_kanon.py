"""k-anonymity: measured on the quasi-identifiers, enforced by generalising then suppressing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from masking.errors import MaskingInputError
from masking.kanon import enforce, measure
from schemas.contract import load_contract

QI = ("gender", "birth_year", "division_code")


@pytest.fixture(scope="module")
def population():
    return load_contract("population")


def _view(rows: list[tuple[str | None, str, str]]) -> pa.Table:
    gender, band, division = zip(*rows, strict=True)
    return pa.table({"gender": list(gender), "birth_year": list(band), "division_code": list(division)})


def test_measure_reports_smallest_group_and_small_groups() -> None:
    view = _view(
        [("1", "30-39", "110100")] * 6 + [("2", "30-39", "110100")] * 2 + [(None, "30-39", "110100")]
    )
    result = measure(view, QI, 5)
    assert (result.k, result.groups, result.small_groups, result.rows_in_small_groups) == (1, 3, 2, 3)
    assert not result.satisfied
    assert measure(view.slice(0, 6), QI, 5).satisfied


def test_measure_empty_and_unknown_columns() -> None:
    assert measure(_view([("1", "0-9", "110100")]).slice(0, 0), QI).k == 0
    with pytest.raises(MaskingInputError):
        measure(_view([("1", "0-9", "110100")]), ("gender", "nope"))


def test_enforce_generalises_when_many_rows_are_in_small_groups(population) -> None:
    # Every prefecture is its own small group; their province has enough people together.
    rows = [("1", "30-39", f"44{c:02d}00") for c in range(1, 11) for _ in range(3)]
    view, result = enforce(_view(rows), QI, 5, population)
    assert result.k >= 5 and result.suppressed_rows == 0
    assert "division_code: province" in result.generalised
    assert set(view.column("division_code").to_pylist()) == {"440000"}


def test_enforce_widens_age_bands(population) -> None:
    rows = [("1", band, "440300") for band in ("20-29", "30-39") for _ in range(3)]
    view, result = enforce(_view(rows), ("gender", "birth_year"), 5, population)
    assert result.generalised == ("birth_year: age band 20",)
    assert set(view.column("birth_year").to_pylist()) == {"20-39"}
    assert result.k == 6


def test_enforce_suppresses_few_outliers_instead_of_generalising(population) -> None:
    rows = [("1", "30-39", "440300")] * 100 + [("2", "90-99", "440305")]
    view, result = enforce(_view(rows), QI, 5, population)
    assert result.generalised == ()
    assert (result.suppressed_rows, result.k, view.num_rows) == (1, 100, 100)


def test_enforce_suppresses_what_generalising_cannot_fix(population) -> None:
    rows = [("1", "30-39", "440300")] * 5 + [("2", "30-39", "440300")] * 2
    view, result = enforce(_view(rows), ("gender",), 5, population)
    assert result.suppressed_rows == 2 and result.k == 5 and view.num_rows == 5
