"""Settings of desensitization (``HUB_MASKING__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


def _default_keyring() -> Path:
    return Path.home() / ".config" / "gov-data-hub" / "keyring.json"


class MaskingSettings(BaseModel):
    """Where keys live."""

    keyring_path: Path = Field(
        default_factory=_default_keyring,
        description="Keyring file made by `hub keys init`; outside the repository by default "
        "so that keys can never be committed with the code.",
    )
