"""Errors of desensitization, grouped by what the operator or caller must do.

Keyring and master-key problems are :class:`~schemas.errors.ConfigurationError` (the operator
fixes a file, a variable or runs a command); rule, column and ciphertext problems are
:class:`~schemas.errors.ContractError` (the contract or the data handed over is wrong); a
decryption without a steward or a reason is :class:`~schemas.errors.AccessDeniedError`. No
message ever carries key material, file content or a value: only paths, kinds, versions,
fields, rules, batch ids and row numbers.
"""

from __future__ import annotations

from schemas.errors import AccessDeniedError, ConfigurationError, ContractError


class KeyringError(ConfigurationError):
    """The keyring file is missing, unsafe, malformed or lacks a requested key."""


class KeyringMissingError(KeyringError):
    """No keyring file at the configured path: run ``hub keys init``."""


class KeyringExistsError(KeyringError):
    """``hub keys init`` would overwrite an existing keyring (and orphan every token)."""


class KeyringPermissionError(KeyringError):
    """The keyring or master key file can be read or written by group or others."""


class KeyringFormatError(KeyringError):
    """The keyring file is not a keyring this version understands."""


class KeyringUpgradeNeededError(KeyringFormatError):
    """The keyring is format 1 (unwrapped keys): run ``hub keys upgrade``."""


class UnknownKeyVersionError(KeyringError):
    """A key version was asked for that the keyring does not hold."""


class MasterKeyError(KeyringError):
    """The master key is missing, malformed, unsafely stored or not the keyring's."""


class KeyVerificationError(KeyringError):
    """A data key does not unwrap with the master key or fails its key check value."""


class MaskRuleError(ContractError):
    """A rule is unknown, or does not fit the type of the column it is applied to."""


class MaskingInputError(ContractError):
    """The rows handed to masking do not match the contract (column missing, bad type...)."""


class CiphertextError(MaskingInputError):
    """An encrypted value is malformed, tampered with, or bound to another field."""


class DecryptionDeniedError(AccessDeniedError):
    """A decryption was asked for without a steward or without a reason."""
