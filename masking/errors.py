"""Errors of desensitization, grouped by what the operator or caller must do.

Keyring problems are :class:`~hub.errors.ConfigurationError` (the operator fixes a file or
runs a command); rule and column problems are :class:`~hub.errors.ContractError` (the
contract or the data handed to masking is wrong). No message ever carries key material
or file content: only paths, versions, fields, rules, batch ids and row numbers.
"""

from __future__ import annotations

from hub.errors import ConfigurationError, ContractError


class KeyringError(ConfigurationError):
    """The keyring file is missing, unsafe, malformed or lacks a requested key."""


class KeyringMissingError(KeyringError):
    """No keyring file at the configured path: run ``hub keys init``."""


class KeyringExistsError(KeyringError):
    """``hub keys init`` would overwrite an existing keyring (and orphan every token)."""


class KeyringPermissionError(KeyringError):
    """The keyring file can be read or written by group or others."""


class KeyringFormatError(KeyringError):
    """The keyring file is not a keyring this version understands."""


class UnknownKeyVersionError(KeyringError):
    """A key version was asked for that the keyring does not hold."""


class MaskRuleError(ContractError):
    """A rule is unknown, or does not fit the type of the column it is applied to."""


class MaskingInputError(ContractError):
    """The rows handed to masking do not match the contract (column missing, bad type...)."""
