"""Source configuration: one YAML file per department source, checked when loaded.

A source names its department, the dataset contract it feeds, the connector kind and its
location, the column mapping (contract field -> source column), code-value mappings
(e.g. 男/女 -> 1/2), the incremental cursor and the schedule. Adding a source is adding a
file under ``connectors/sources/`` (or the folder ``HUB_CONNECTORS__SOURCES_DIR`` names).

Secrets are never written in these files: a URL or token comes from an environment
variable (``url_env``, ``token_env``) or an Airflow connection (``airflow_connection``);
an inline URL with a password in it is refused. Inline values may use ``${VAR}``
references, expanded from the environment when the connector opens (``${HUB_HOME}`` is
always set to the hub's home).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.errors import SourceFileError
from schemas.errors import ConfigurationError

if TYPE_CHECKING:
    from schemas.contract import Contract

SOURCES_DIR = Path(__file__).resolve().parent / "sources"
"""Where the source files shipped with the hub live; settings may point elsewhere."""

_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(description="Unified social credit code of the department.")
    name: str


class _Located(BaseModel):
    """Fields shared by connectors that reach a system by URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str | None = Field(
        default=None,
        description="Inline URL (no password; ${VAR} expanded); the default when url_env is unset.",
    )
    url_env: str | None = Field(
        default=None, description="Environment variable holding the URL (wins over url)."
    )
    airflow_connection: str | None = Field(default=None, description="Airflow connection id holding it.")

    @model_validator(mode="after")
    def _one_location(self) -> _Located:
        if self.airflow_connection and (self.url or self.url_env):
            raise ValueError("airflow_connection excludes url and url_env")
        if not (self.url or self.url_env or self.airflow_connection):
            raise ValueError("give url, url_env (optionally with url as its default) or airflow_connection")
        if self.url and re.search(r"://[^/@:]+:[^/@]+@", self.url):
            raise ValueError("url holds a password: put the URL in an environment variable (url_env)")
        return self


class SqlConnectorConfig(_Located):
    kind: Literal["sql"]
    table: str = Field(description="Table (or schema.table) holding the records.")


class HttpConnectorConfig(_Located):
    kind: Literal["http"]
    path: str = Field(default="/", description="Path of the paginated records endpoint.")
    token_env: str | None = Field(default=None, description="Environment variable holding the bearer token.")
    page_size: int = Field(default=1_000, ge=1, le=100_000)
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=5, ge=0, description="Retries on timeouts and 5xx, with backoff.")


class FileConnectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["file"]
    folder: str = Field(description="Drop folder watched for files (${VAR} expanded).")
    pattern: str = Field(default="*", description="Glob of the files to take.")
    formats: tuple[Literal["csv", "jsonl", "parquet"], ...] = ("csv", "jsonl", "parquet")
    encoding: str = Field(default="auto", description="'auto' detects UTF-8 or GB18030 (a superset of GBK).")


ConnectorConfig = Annotated[
    SqlConnectorConfig | HttpConnectorConfig | FileConnectorConfig, Field(discriminator="kind")
]


class SourceConfig(BaseModel):
    """One department source feeding one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Source name: DAG id and `hub run` argument.")
    department: Department
    dataset: str = Field(description="Contract name in schemas/.")
    connector: ConnectorConfig
    columns: dict[str, str] = Field(
        default_factory=dict, description="Contract field -> source column; unnamed fields map to themselves."
    )
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Per contract field, source value -> contract code."
    )
    cursor: str | None = Field(
        default=None, description="Contract field whose growth marks new or changed records."
    )
    schedule: str = Field(default="@daily", description="Airflow schedule of the source's DAG.")
    depends_on: tuple[str, ...] = Field(
        default=(),
        description="Datasets whose fresh tables this source's checks read (schedules on their assets).",
    )
    chunk_rows: int | None = Field(default=None, ge=1_000, description="Override of the chunk size setting.")
    path: Path | None = Field(default=None, exclude=True, description="File the source was loaded from.")

    @cached_property
    def contract(self) -> Contract:
        from schemas.contract import load_contract

        return load_contract(self.dataset)

    def source_column(self, field: str) -> str:
        return self.columns.get(field, field)


def expand(value: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``${VAR}`` references; an unset variable is a configuration error naming it."""
    env = os.environ if env is None else env

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigurationError(f"environment variable {name} is not set (used in {value!r})")
        return env[name]

    return _VAR.sub(one, value)


def resolve_url(
    location: SqlConnectorConfig | HttpConnectorConfig,
    env: Mapping[str, str] | None = None,
    *,
    source: str = "?",
) -> str:
    """The URL a connector reaches: ``url_env``'s value if set, else ``url`` expanded, else the
    Airflow connection's URI (looked up only then, so Airflow is not imported otherwise).

    Every failure is a :class:`SourceConfigError` naming ``source`` (never the URL's secrets).
    """
    from connectors.errors import SourceConfigError

    env = os.environ if env is None else env
    if location.url_env and env.get(location.url_env):
        return env[location.url_env]
    if location.url:
        try:
            return expand(location.url, env)
        except ConfigurationError as exc:
            raise SourceConfigError(f"source {source!r}: {exc}") from None
    if location.airflow_connection:
        return _airflow_uri(location.airflow_connection, source)
    raise SourceConfigError(
        f"source {source!r}: environment variable {location.url_env} is not set and no default url is given"
    )


def _airflow_uri(connection: str, source: str) -> str:
    from connectors.errors import SourceConfigError

    try:
        from airflow.sdk import BaseHook
    except ImportError:
        raise SourceConfigError(
            f"source {source!r}: names Airflow connection {connection!r} but Airflow is not installed"
        ) from None
    try:
        return str(BaseHook.get_connection(connection).get_uri())
    except Exception as exc:  # Airflow's not-found and secrets-backend errors have no common base
        raise SourceConfigError(
            f"source {source!r}: Airflow connection {connection!r} cannot be read ({type(exc).__name__})"
        ) from None


def load_source_file(path: Path, *, check_contract: bool = True) -> SourceConfig:
    """Load one source file; every problem (schema, contract, mapping) is listed in the error.

    ``check_contract=False`` skips loading the dataset's contract: DAG files use it to stay
    cheap to parse (the contract is checked when a task runs, and by ``hub sources``).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceFileError(f"source file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise SourceFileError(f"source file {path} is not valid YAML: {exc}") from None
    try:
        source = SourceConfig.model_validate({**(raw or {}), "path": path})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise SourceFileError(f"source file {path} is invalid: {'; '.join(problems)}") from None
    problems = _contract_problems(source) if check_contract else []
    if problems:
        raise SourceFileError(f"source file {path} is invalid: {'; '.join(problems)}")
    return source


def _contract_problems(source: SourceConfig) -> list[str]:
    from schemas.errors import ContractError

    try:
        contract = source.contract
    except ContractError as exc:
        return [f"dataset: {exc}"]
    fields = {f.name for f in contract.fields}
    problems = [
        f"columns: {f!r} is not a field of contract {contract.name!r}"
        for f in source.columns
        if f not in fields
    ]
    problems += [
        f"values: {f!r} is not a field of contract {contract.name!r}"
        for f in source.values
        if f not in fields
    ]
    if source.cursor is not None and source.cursor not in fields:
        problems.append(f"cursor: {source.cursor!r} is not a field of contract {contract.name!r}")
    return problems


def load_sources(folder: Path | None = None, *, check_contract: bool = True) -> dict[str, SourceConfig]:
    """Every source in ``folder`` by name; all files are checked and all problems reported at once."""
    folder = folder or SOURCES_DIR
    sources: dict[str, SourceConfig] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            source = load_source_file(path, check_contract=check_contract)
        except SourceFileError as exc:
            problems.append(str(exc))
            continue
        if source.name in sources:
            problems.append(f"source name {source.name!r} is used by {sources[source.name].path} and {path}")
        sources[source.name] = source
    if problems:
        raise SourceFileError("\n".join(problems))
    return sources


def get_source(name: str, folder: Path | None = None) -> SourceConfig:
    sources = load_sources(folder)
    if name not in sources:
        raise SourceFileError(
            f"no source {name!r} (sources: {', '.join(sorted(sources)) or 'none'} in {folder or SOURCES_DIR})"
        )
    return sources[name]
