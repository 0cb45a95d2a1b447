"""Source files: checked when loaded, every problem listed, secrets only by reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.config import (
    SOURCES_DIR,
    SourceFileError,
    expand,
    get_source,
    load_source_file,
    load_sources,
    resolve_url,
)
from schemas.errors import ConfigurationError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_sources_load_against_their_contracts() -> None:
    sources = load_sources(SOURCES_DIR)
    assert set(sources) == {"population", "legal_entity", "certificate_api", "certificate_files"}
    assert {s.connector.kind for s in sources.values()} == {"sql", "http", "file"}
    assert sources["certificate_api"].depends_on == ("population", "legal_entity")
    assert sources["legal_entity"].values["entity_type"]["有限责任公司"] == "1100"


def test_every_problem_of_a_file_is_listed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad",
        """
name: bad
department: {code: "11100000000013338W", name: 公安厅}
dataset: population
connector: {kind: sql, url: "sqlite:///x.db", table: t}
columns: {id_number: sfzh, nickname: nc}
values: {colour: {红: "1"}}
cursor: changed_on
""",
    )
    with pytest.raises(SourceFileError) as info:
        load_source_file(path)
    message = str(info.value)
    assert str(path) in message
    for problem in ("'nickname' is not a field", "'colour' is not a field", "cursor: 'changed_on'"):
        assert problem in message


def test_inline_password_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "leaky",
        """
name: leaky
department: {code: "11100000000013338W", name: 公安厅}
dataset: population
connector: {kind: sql, url: "postgresql://registry:hunter2@db/registry", table: t}
""",
    )
    with pytest.raises(SourceFileError, match="password") as info:
        load_source_file(path)
    assert "hunter2" not in str(info.value)


def test_unknown_kind_and_dataset_are_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "ftp",
        "name: ftp\ndepartment: {code: x, name: y}\ndataset: population\nconnector: {kind: ftp}\n",
    )
    _write(
        tmp_path,
        "nodata",
        "name: nodata\ndepartment: {code: x, name: y}\ndataset: weather\n"
        "connector: {kind: file, folder: /tmp/x}\n",
    )
    with pytest.raises(SourceFileError) as info:
        load_sources(tmp_path)
    message = str(info.value)
    assert "ftp.yaml" in message and "connector" in message
    assert "nodata.yaml" in message and "weather" in message


def test_url_env_wins_over_the_default_and_unset_variables_are_named(tmp_path: Path) -> None:
    source = get_source("population")
    env = {"HUB_HOME": "/srv/hub"}
    assert resolve_url(source.connector, env) == "sqlite:////srv/hub/sources/population.db"  # type: ignore[arg-type]
    env["HUB_SOURCE_POPULATION_URL"] = "postgresql+psycopg://registry@db/registry"
    assert resolve_url(source.connector, env).startswith("postgresql")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="HUB_HOME"):
        expand("sqlite:///${HUB_HOME}/x.db", {})


def test_unknown_source_lists_the_known_ones() -> None:
    with pytest.raises(SourceFileError, match=r"no source 'nope'.*population"):
        get_source("nope")
