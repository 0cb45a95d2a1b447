"""``hub keys ...`` and ``hub decrypt``: the keyring and the stewards' decryption.

Expected failures raise :class:`schemas.errors.HubError` subclasses, which ``hub.cli.main``
prints as one line with the error's exit code. Nothing here ever prints key material.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.context import hub_context
from hub.settings import get_settings

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

keys_app = typer.Typer(help="Keys: token and encryption keys wrapped by a master key.", no_args_is_help=True)
decrypt_app = typer.Typer()
"""Added to ``hub`` without a name, so that its one command is ``hub decrypt``."""

console = Console()


class Kind(StrEnum):
    token = "token"
    encrypt = "encrypt"
    audit = "audit"
    audit_sign = "audit-sign"


@keys_app.command("init")
def keys_init(
    force: Annotated[
        bool, typer.Option(help="Replace an existing keyring (tokens change, encrypted values are lost!).")
    ] = False,
) -> None:
    """Create the keyring (and the master key file when there is no master key yet)."""
    from masking.keys import Keyring

    path = get_settings().masking.keyring_path
    keyring = Keyring.init(path, force=force, master_key_file=get_settings().masking.master_key_file)
    console.print(
        f"keyring created at [bold]{path}[/] (mode 0600, format 2: token v1, encrypt v1, audit v1, audit-sign v1)"
    )
    _say_master(keyring.master.origin, keyring.master.created)


@keys_app.command("upgrade")
def keys_upgrade() -> None:
    """Wrap a format-1 keyring's keys with the master key (token keys and versions stay the same);
    add the audit keys to a keyring made before the access log."""
    from masking.keys import Keyring, keyring_format

    path = get_settings().masking.keyring_path
    if keyring_format(path) == 2:
        _, added = Keyring.load(path, master_key_file=get_settings().masking.master_key_file).add_missing()
        if added:
            console.print(f"keyring {path}: {', '.join(f'{k} v1' for k in added)} added")
        else:
            console.print(f"keyring {path} is already format 2 with every key kind; nothing to do")
        return
    keyring = Keyring.upgrade(path, master_key_file=get_settings().masking.master_key_file)
    tokens = ", ".join(str(i.version) for i in keyring.versions("token"))
    console.print(
        f"keyring {path} upgraded to format 2: token versions {tokens} kept, "
        "encrypt v1, audit v1 and audit-sign v1 added"
    )
    _say_master(keyring.master.origin, keyring.master.created)


@keys_app.command("rotate")
def keys_rotate(
    kind: Annotated[Kind, typer.Option(help="Which kind of key to rotate.")] = Kind.token,
) -> None:
    """Add a new current key version; older versions stay to recompute tokens and decrypt."""
    from masking.keys import Keyring

    settings = get_settings()
    rotated = Keyring.load(
        settings.masking.keyring_path, master_key_file=settings.masking.master_key_file
    ).rotate(kind.value)
    version = rotated.current_key(kind.value).version
    console.print(f"{kind.value} key version {version} is now current; versions 1-{version - 1} kept")
    if kind is Kind.token:
        days = settings.masking.token_mapping_days
        console.print(
            f"next: re-run every source with `hub run SOURCE --full` within {days} days; "
            "until then old -> new tokens are published in shared.token_map"
        )
    elif kind is Kind.audit_sign:
        console.print(
            "new checkpoints are signed with it: give auditors `hub audit public-key --all` "
            "(older versions still check older checkpoints)"
        )


@keys_app.command("list")
def keys_list() -> None:
    """List keys: kind, version, created, current (never key material)."""
    from masking.keys import Keyring

    keyring = Keyring.load(
        get_settings().masking.keyring_path, master_key_file=get_settings().masking.master_key_file
    )
    table = Table("kind", "version", "created", "current")
    for info in keyring.versions():
        table.add_row(
            info.kind,
            str(info.version),
            f"{info.created_at:%Y-%m-%d %H:%M:%S}",
            "yes" if info.current else "",
        )
    console.print(table)


@keys_app.command("verify")
def keys_verify() -> None:
    """Unwrap every key with the master key and check its key check value."""
    from masking.keys import Keyring

    keyring = Keyring.load(
        get_settings().masking.keyring_path, master_key_file=get_settings().masking.master_key_file
    )
    count = len(keyring.versions())
    console.print(f"{count} keys of {keyring.path} unwrap and match their check values")
    console.print(f"master key from {keyring.master.origin}")


@keys_app.command("decryptions")
def keys_decryptions(limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20) -> None:
    """Recorded uses of `hub decrypt`, refused ones included."""
    table = Table("time", "steward", "reason", "values", "key versions", "os user", "host", "outcome")
    for d in hub_context().store.list_decryptions(limit=limit):
        table.add_row(
            f"{d.at:%Y-%m-%d %H:%M:%S}",
            d.steward or "",
            d.reason or "",
            str(d.values),
            d.key_versions,
            d.os_user,
            d.host,
            d.outcome,
        )
    console.print(table)


@decrypt_app.command("decrypt")
def decrypt(
    values: Annotated[list[str] | None, typer.Argument(help="Encrypted values (e<version>:...).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read values from this file, one per line; '-' for stdin.")
    ] = None,
    steward: Annotated[
        str | None,
        typer.Option(
            "--steward",
            "--as",
            envvar="HUB_USER",
            help="The data steward asking: a registered steward of the values' dataset owner, or hub-wide.",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded with the use).")] = None,
    aad: Annotated[
        str | None, typer.Option(help="Field the values were encrypted for, e.g. population.id_number.")
    ] = None,
) -> None:
    """Decrypt encrypted values for a data steward; every use, and every refusal, is recorded."""
    import pyarrow as pa

    from catalog.sharing import require_steward
    from masking.crypto import decrypt_array, key_versions
    from masking.errors import CiphertextError, DecryptionDeniedError
    from masking.keys import Keyring
    from schemas.errors import AccessDeniedError

    given = _read_values(values or [], file)
    store = hub_context().store
    versions: list[int] = []
    steward, reason = (steward or "").strip() or None, (reason or "").strip() or None

    def record(outcome: str, detail: str | None = None) -> None:
        store.record_decryption(
            steward=steward,
            reason=reason,
            values=len(given),
            key_versions=versions,
            os_user=_os_user(),
            host=socket.gethostname(),
            outcome=outcome,
            detail=detail,
        )
        _log_decryption(store, steward, reason, len(given), versions, outcome, detail, aad)

    if steward is None or reason is None:
        missing = " and ".join(n for n, v in (("--steward", steward), ("--reason", reason)) if v is None)
        record("refused", f"missing {missing}")
        raise DecryptionDeniedError(f"decryption refused: {missing} is required (this refusal is recorded)")
    try:
        steward = require_steward(store, steward, _owner_of(aad))
    except AccessDeniedError as exc:
        record("refused", str(exc))
        raise DecryptionDeniedError(f"decryption refused: {exc} (this refusal is recorded)") from None
    array = pa.array(given, type=pa.string())
    try:
        versions = key_versions(array)
        plain = decrypt_array(
            array,
            Keyring.load(
                get_settings().masking.keyring_path, master_key_file=get_settings().masking.master_key_file
            ),
            aad=aad,
        )
    except CiphertextError as exc:
        record("failed", str(exc))
        raise
    record("decrypted")
    for value in plain.to_pylist():
        sys.stdout.write(f"{value}\n")


def _owner_of(aad: str | None) -> str | None:
    """The owner department of the dataset an ``--aad`` such as ``population.name`` names, if
    it names one: only its stewards (and hub-wide ones) may decrypt that dataset's values."""
    from catalog.sharing import dataset_terms, known_datasets

    dataset = (aad or "").split(".", 1)[0]
    return dataset_terms(dataset).owner if dataset in known_datasets() else None


def _log_decryption(
    store: MetadataStore,
    steward: str | None,
    reason: str | None,
    values: int,
    versions: list[int],
    outcome: str,
    detail: str | None,
    aad: str | None,
) -> None:
    """Append a use of ``hub decrypt`` to the access log too (never the values)."""
    from catalog.audit import record_access

    dataset, _, column = (aad or "").partition(".")
    record_access(
        store,
        action="decryption",
        outcome="denied" if outcome == "refused" else "allowed",
        actor=steward,
        dataset=dataset or None,
        columns=[column] if column else (),
        purpose=reason,
        rows=values if outcome == "decrypted" else 0,
        reason=detail,
        client=f"cli:{_os_user()}@{socket.gethostname()}",
        detail={"result": outcome, "values": values, "key_versions": sorted(set(versions))},
    )


def _read_values(values: list[str], file: Path | None) -> list[str]:
    if file is not None and values:
        raise typer.BadParameter("give values either as arguments or with --file, not both")
    if file is None:
        if not values:
            raise typer.BadParameter("no values given: pass them as arguments or with --file (- for stdin)")
        return values
    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _say_master(origin: str, created: bool) -> None:
    if created:
        console.print(
            f"master key created: {origin} (mode 0600); back it up apart from the keyring, "
            "or move it to HUB_MASTER_KEY in a secret manager"
        )
    else:
        console.print(f"keys wrapped with the master key from {origin}")


def register(app: typer.Typer) -> None:
    """Mount ``hub keys`` and ``hub decrypt``."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(decrypt_app)
