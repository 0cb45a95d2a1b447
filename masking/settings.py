"""Settings of desensitization (``HUB_MASKING__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

DEFAULT_TOKEN_MAPPING_DAYS = 30
"""About one monthly update cycle plus slack: every consumer syncs at least once in it."""


def _default_keyring() -> Path:
    return Path.home() / ".config" / "gov-data-hub" / "keyring.json"


class MaskingSettings(BaseModel):
    """Where keys live and how long a token-key rotation keeps old tokens mapped."""

    keyring_path: Path = Field(
        default_factory=_default_keyring,
        description="Keyring file made by `hub keys init`; outside the repository by default "
        "so that keys can never be committed with the code.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key that wraps the keyring's data keys, used when "
        "HUB_MASTER_KEY is not set; default `master.key` in the keyring's folder "
        "(~/.config/gov-data-hub/master.key with the default keyring). Refused if group or "
        "others can read it or if it lies inside a git work tree. In production set "
        "HUB_MASTER_KEY from a secret manager or put this file on another volume.",
    )
    token_mapping_days: int = Field(
        default=DEFAULT_TOKEN_MAPPING_DAYS,
        ge=0,
        description="Days after a token-key rotation during which re-tokenised sources also "
        "publish old token -> new token mappings, so consumers can move their joins.",
    )
