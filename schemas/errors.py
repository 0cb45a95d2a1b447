"""One exception root for the hub, branched by what the caller should do.

Airflow tasks map :class:`TransientError` to a retry and everything else to a
failed task without retry; the ``hub`` command prints ``str(error)`` (never a
traceback) and exits with :attr:`HubError.exit_code`.

Messages carry the facts (source, batch, row, field, rule) and never secrets:
URLs are passed through :func:`redact_url` before they reach a message.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url


class HubError(Exception):
    """Root of every error the hub raises on purpose."""

    exit_code = 1
    retriable = False


class ConfigurationError(HubError):
    """Settings, files or keys are missing or wrong: the operator must fix them."""

    exit_code = 2


class ContractError(HubError):
    """A contract, or source data against its contract, is structurally wrong."""

    exit_code = 3


class QualityError(HubError):
    """A batch failed its quality gate or its accounting."""

    exit_code = 4


class AccessDeniedError(HubError):
    """The caller is not allowed to do or see this."""

    exit_code = 5


class TransientError(HubError):
    """A dependency (database, broker) is unreachable; retrying later may succeed."""

    exit_code = 6
    retriable = True


class FatalError(HubError):
    """An invariant was broken; retrying will not help."""

    exit_code = 7


def redact_url(url: str) -> str:
    """Render a connection URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Not a SQLAlchemy URL: drop anything that looks like credentials.
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return url
