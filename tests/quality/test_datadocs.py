"""Data Docs of a validated batch: the suite's results over every chunk, no personal data."""

from __future__ import annotations

import html
import json
import random
import re
from pathlib import Path

import pytest

from quality.datadocs import datadocs_root, profile_path, read_profile, site_folder
from quality.errors import DataDocsError
from quality.validate import Validator
from schemas.contract import Contract
from tests.support.defects import defects
from tests.support.samples import TODAY, good_record, make_id, to_table

BATCH = "population-20250601T010203-ab12"


def text(page: Path) -> str:
    """The page's visible text, tags and scripts removed."""
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def validated(population: Contract, batch_id: str = BATCH, chunks: int = 3) -> tuple[Validator, list[str]]:
    """A batch of defects and good rows validated in ``chunks`` chunks; returns its raw ids too."""
    records, _ = defects()
    rng = random.Random(4)
    records += [good_record(rng, 6000 + i) for i in range(30)]
    table = to_table(population, records)
    twin = records[-34]["id_number"]
    validator = Validator(population, today=TODAY)
    size = -(-table.num_rows // chunks)
    for start in range(0, table.num_rows, size):
        validator.validate(
            table.slice(start, size), duplicate_keys=[twin], source="population", batch_id=batch_id
        )
    ids = [r["id_number"] for r in records if r["id_number"]]
    return validator, ids


def test_page_names_the_suite_and_shows_the_failed_expectations(population: Contract, tmp_path: Path) -> None:
    validator, _ = validated(population)
    page = validator.build_data_docs(BATCH, tmp_path)
    assert page.is_file() and page.suffix == ".html"
    assert page.is_relative_to(site_folder(tmp_path, "population"))
    shown = text(page)
    assert "population-1.0.0" in shown and BATCH in shown
    assert "Status: Failed" in shown
    for rule in (
        "gb11643.check_digit",
        "gb11643.format",
        "id_gender",
        "mobile_cn",
        "key.duplicate",
        "code_list",
    ):
        assert f"[ {rule} ]" in shown or rule in shown, rule
    assert "公民身份号码校验码正确" in shown  # the hub's own expectations render in both languages
    assert "unexpected" in shown
    index = site_folder(tmp_path, "population") / "index.html"
    assert BATCH in index.read_text(encoding="utf-8")
    assert list((site_folder(tmp_path, "population") / "expectations").rglob("*.html"))


def test_counts_are_the_whole_batch_whatever_the_chunking(population: Contract, tmp_path: Path) -> None:
    one, _ = validated(population, chunks=1)
    many, _ = validated(population, chunks=4)
    assert many.tallies.chunks == 4 and one.tallies.chunks == 1
    assert many.tallies.rows_in == one.tallies.rows_in == 55
    for key, tally in one.tallies.expectations.items():
        other = many.tallies.expectations[key]
        assert (other.element_count, other.unexpected_count) == (
            tally.element_count,
            tally.unexpected_count,
        ), key
    assert many.tallies.rules == one.tallies.rules
    assert many.tallies.rules[("key.duplicate", "id_number")] == 2
    assert many.tallies.rules[("required", "name")] == 3  # None, blank, and the row with three defects


def test_no_value_of_a_row_reaches_the_site(population: Contract, tmp_path: Path) -> None:
    validator, ids = validated(population)
    validator.build_data_docs(BATCH, tmp_path)
    written = "".join(
        p.read_text(encoding="utf-8", errors="ignore")
        for p in site_folder(tmp_path, "population").rglob("*")
        if p.is_file() and p.suffix in (".html", ".json")
    )
    leaked = [i for i in ids if len(i) >= 15 and i in written]
    assert leaked == []
    assert "11010519491231002x" not in written


def test_profile_beside_the_site_counts_present_values_and_rules(
    population: Contract, tmp_path: Path
) -> None:
    validator, _ = validated(population)
    page = validator.build_data_docs(BATCH, tmp_path)
    profile = read_profile(tmp_path, "population", BATCH)
    assert profile is not None
    assert json.loads(profile_path(tmp_path, "population", BATCH).read_text(encoding="utf-8")) == profile
    assert profile["rows_in"] == 55 and profile["suite"] == "population-1.0.0"
    assert tmp_path / profile["data_docs"] == page
    # None and "" are absent; "  " is text (the required rule rejects it, completeness counts it)
    assert profile["fields"]["name"]["present"] == 55 - 2
    assert profile["fields"]["ethnicity"]["present"] == 55 - 1
    rules = {(r["rule"], r["field"]): r["rows"] for r in profile["rules"]}
    assert rules[("mobile_cn", "mobile")] == 2
    assert read_profile(tmp_path, "population", "no-such-batch") is None


def test_index_lists_every_batch_of_the_dataset(population: Contract, tmp_path: Path) -> None:
    pages = []
    for n in range(3):
        validator, _ = validated(population, batch_id=f"population-2025060{n}T000000-0000", chunks=1)
        pages.append(validator.build_data_docs(validator.tallies.batch_id, tmp_path))
    index = (site_folder(tmp_path, "population") / "index.html").read_text(encoding="utf-8")
    assert all(f"population-2025060{n}T000000-0000" in index for n in range(3))
    assert all(p.is_file() for p in pages) and len(set(pages)) == 3


def test_a_clean_batch_passes(population: Contract, tmp_path: Path) -> None:
    rng = random.Random(8)
    validator = Validator(population, today=TODAY)
    validator.validate(to_table(population, [good_record(rng, i) for i in range(40)]), batch_id="clean-1")
    shown = text(validator.build_data_docs("clean-1", tmp_path))
    assert "Status: Succeeded" in shown


def test_data_docs_need_a_batch_id(population: Contract, tmp_path: Path) -> None:
    validator = Validator(population, today=TODAY)
    validator.validate(to_table(population, [good_record(random.Random(1), 0)]))
    with pytest.raises(DataDocsError, match="batch id"):
        validator.build_data_docs("", tmp_path)


def test_unwritable_root_is_a_clear_error(population: Contract, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    validator = Validator(population, today=TODAY)
    validator.validate(to_table(population, [good_record(random.Random(1), 0)]), batch_id="b-9")
    with pytest.raises(DataDocsError, match=r"batch b-9 dataset population: Data Docs could not be written"):
        validator.build_data_docs("b-9", blocker)


def test_a_new_batch_id_starts_new_tallies(population: Contract) -> None:
    validator = Validator(population, today=TODAY)
    record = good_record(random.Random(1), 0)
    record["id_number"] = make_id("110105", TODAY, 1)[:-1] + "Y"
    validator.validate(to_table(population, [record]), batch_id="first")
    validator.validate(to_table(population, [good_record(random.Random(2), 0)]), batch_id="second")
    assert validator.tallies.batch_id == "second" and validator.tallies.rows_in == 1
    assert validator.tallies.rows_quarantined == 0


def test_root_is_under_the_hub_home(tmp_path: Path) -> None:
    assert datadocs_root(tmp_path) == tmp_path / "datadocs"
