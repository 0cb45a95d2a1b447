"""Great Expectations Data Docs of each batch, and the batch's quality profile beside them.

Each dataset is one Data Docs site under ``<root>/<dataset>/`` (``root`` is usually
``<hub home>/datadocs``): ``index.html`` lists the dataset's batches, newest first, each
batch has a validation page and each contract version a suite page. The validation
result behind a page is the whole batch's (the validator sums every expectation's counts
over the chunks), stored as JSON in the site's own stores (``.gx/``) so that later builds
list the earlier batches. Pages show counts and rules, never a value: the unexpected
values are personal data and stay in the access-controlled quarantine.

Beside the site, ``batches/<batch id>.json`` is the batch's quality profile (fields
present, rows per rule, the page's path), which :mod:`catalog.entries.scorecards` reads for
completeness.

GE's pages load their style sheets and scripts from public CDNs; without network access
they render unstyled but complete.
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from quality.errors import DataDocsError

if TYPE_CHECKING:
    from quality.tallies import BatchTallies, Tally

log = logging.getLogger(__name__)

DATADOCS_FOLDER = "datadocs"
SCORECARD_FILE = "scorecard.html"

SITE = "hub"
"""Name of the Data Docs site in each dataset's context."""
INDEX_LIMIT = 100
"""Batches the dataset's index page lists (newest first); older pages stay on disk and the
scorecard links them. Building the index reads each listed result, so this bounds the
time a build takes however many batches the dataset has seen."""
STORE_FOLDER = ".gx"
PROFILE_FOLDER = "batches"


def datadocs_root(home: Path) -> Path:
    """Where Data Docs and the scorecard live: ``<hub home>/datadocs``."""
    return Path(home) / DATADOCS_FOLDER


def site_folder(root: Path, dataset: str) -> Path:
    """Folder of a dataset's Data Docs site."""
    return Path(root) / dataset


def profile_path(root: Path, dataset: str, batch_id: str) -> Path:
    """Where the quality profile of a batch is written."""
    return site_folder(root, dataset) / PROFILE_FOLDER / f"{_safe(batch_id)}.json"


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", name) or "_"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One build at a time per site: concurrent batches of a dataset share its index page."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _context(base: Path) -> Any:
    """An in-process GE context whose suites, results and site live under ``base``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    def store(kind: str, folder: str) -> dict[str, Any]:
        backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base / folder)}
        return {"class_name": kind, "store_backend": backend}

    memory = {"class_name": "InMemoryStoreBackend"}
    config = DataContextConfig(
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        stores={
            "expectations_store": store("ExpectationsStore", f"{STORE_FOLDER}/expectations"),
            "validation_results_store": store("ValidationResultsStore", f"{STORE_FOLDER}/validations"),
            "checkpoint_store": {"class_name": "CheckpointStore", "store_backend": memory},
            "validation_definition_store": {
                "class_name": "ValidationDefinitionStore",
                "store_backend": memory,
            },
        },
        data_docs_sites={
            SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base)},
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": INDEX_LIMIT,
                },
            }
        },
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _expectation_result(tally: Tally) -> Any:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    total, missing, unexpected = tally.element_count, tally.missing_count, tally.unexpected_count
    present = total - missing
    result = {
        "element_count": total,
        "missing_count": missing,
        "missing_percent": _percent(missing, total),
        "unexpected_count": unexpected,
        "unexpected_percent": _percent(unexpected, present),
        "unexpected_percent_total": _percent(unexpected, total),
        "unexpected_percent_nonmissing": _percent(unexpected, present),
        "partial_unexpected_list": [],
    }
    if tally.config.type == "expect_column_values_to_not_be_null":
        # GE reports the nulls themselves as this expectation's unexpected values
        result["unexpected_percent"] = _percent(unexpected, total)
    return ExpectationValidationResult(
        success=unexpected == 0, expectation_config=tally.config, result=result
    )


def _suite_result(tallies: BatchTallies, run_id: Any, finished: datetime) -> Any:
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    results = [_expectation_result(t) for t in tallies.expectations.values()]
    passed = sum(1 for r in results if r.success)
    return ExpectationSuiteValidationResult(
        success=passed == len(results),
        results=results,
        suite_name=tallies.suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(results) - passed,
            "success_percent": _percent(passed, len(results)) if results else 100.0,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "run_id": run_id,
            "validation_time": finished.isoformat(),
            "batch_spec": {
                "data_asset_name": tallies.dataset,
                "batch": tallies.batch_id,
                "source": tallies.source or "",
                "contract_version": tallies.contract_version,
                "today": tallies.today.isoformat(),
            },
            "batch_markers": {
                "ge_load_time": tallies.started_at.strftime("%Y%m%dT%H%M%S.%fZ"),
                "rows_in": tallies.rows_in,
                "rows_failing_the_suite": tallies.rows_quarantined,
                "chunks": tallies.chunks,
                "validation_seconds": round(tallies.seconds, 3),
            },
        },
        batch_id=tallies.batch_id,
    )


def _profile(tallies: BatchTallies, root: Path, page: Path, finished: datetime) -> dict[str, Any]:
    return {
        "batch_id": tallies.batch_id,
        "dataset": tallies.dataset,
        "contract_version": tallies.contract_version,
        "suite": tallies.suite.name,
        "source": tallies.source,
        "today": tallies.today.isoformat(),
        "validated_at": finished.isoformat(),
        "rows_in": tallies.rows_in,
        "rows_failing_the_suite": tallies.rows_quarantined,
        "fields": {name: {"present": int(count)} for name, count in sorted(tallies.present.items())},
        "rules": [
            {"rule": rule, "field": field, "rows": int(rows)}
            for (rule, field), rows in sorted(tallies.rules.items())
        ],
        "expectations": [
            {
                "type": t.config.type,
                "rule": (t.config.meta or {}).get("rule", ""),
                "field": (t.config.meta or {}).get("field", ""),
                "element_count": t.element_count,
                "missing_count": t.missing_count,
                "unexpected_count": t.unexpected_count,
            }
            for t in tallies.expectations.values()
        ],
        "data_docs": page.relative_to(root).as_posix(),
    }


def build(tallies: BatchTallies, root: Path) -> Path:
    """Render one batch's validation page (and refresh its dataset's index); return the page.

    Raises :class:`DataDocsError` when GE could not render the page (GE itself only logs
    rendering errors).
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if not tallies.batch_id:
        raise DataDocsError(f"dataset {tallies.dataset}: Data Docs need the batch id of the validated rows")
    root = Path(root).resolve()
    base = site_folder(root, tallies.dataset)
    finished = datetime.now(UTC)
    run_id = RunIdentifier(run_name=tallies.batch_id, run_time=tallies.started_at)
    suite_key = ExpectationSuiteIdentifier(name=tallies.suite.name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_key, run_id=run_id, batch_identifier=tallies.batch_id
    )
    where = f"batch {tallies.batch_id} dataset {tallies.dataset}"
    try:
        with _locked(base):
            context = _context(base)
            context.suites.add_or_update(_stored_suite(tallies))
            context.validation_results_store.set(key, _suite_result(tallies, run_id, finished))
            context.build_data_docs(site_names=[SITE], resource_identifiers=[key, suite_key])
            urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE)
    except OSError as exc:
        raise DataDocsError(f"{where}: Data Docs could not be written under {base}: {exc}") from None
    page = Path(unquote(urlparse(urls[0]["site_url"]).path)) if urls else base / "missing.html"
    if not page.is_file():
        raise DataDocsError(f"{where}: Great Expectations did not render the validation page (see the log)")
    profile = profile_path(root, tallies.dataset, tallies.batch_id)
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(
        json.dumps(_profile(tallies, root, page, finished), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    log.info("%s: Data Docs at %s", where, page)
    return page


def _stored_suite(tallies: BatchTallies) -> Any:
    """A copy of the batch's suite for the site's store (GE binds a suite to one context)."""
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=tallies.suite.name,
        expectations=[e.configuration.to_domain_obj() for e in tallies.suite.expectations],
        meta={"dataset": tallies.dataset, "contract_version": tallies.contract_version},
    )


def read_profile(root: Path, dataset: str, batch_id: str) -> dict[str, Any] | None:
    """The quality profile written with a batch's Data Docs, or None when there is none."""
    path = profile_path(root, dataset, batch_id)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data
