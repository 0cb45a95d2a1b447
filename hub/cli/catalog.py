"""``hub catalog ...``, ``hub lineage`` and ``hub status``: the shared catalogue as stewards use it.

Entries are generated from the contracts the first time any of these commands runs, and
follow new contract versions (:mod:`catalog.entries.catalogue`). Expected failures raise
:class:`schemas.errors.HubError` subclasses, which ``hub.cli.main`` prints as one line.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from hub.context import HubContext, hub_context
from hub.settings import HubSettings
from schemas.errors import ConfigurationError

if TYPE_CHECKING:
    from catalog.entries import Catalogue, EntryView

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

catalog_app = typer.Typer(
    help="The shared catalogue (政务数据目录): entries, versions, publishing, exports.", no_args_is_help=True
)
console = Console()

Steward = Annotated[
    str, typer.Option("--as", envvar="HUB_USER", help="The data steward acting (see `hub people`).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``hub`` app."""
    app.add_typer(catalog_app, name="catalog")
    app.command("lineage")(lineage)
    app.command("status")(status)


def _catalogue(settings: HubSettings | None = None) -> Catalogue:
    from catalog.entries import Catalogue

    settings = settings or hub_context().settings
    return Catalogue(HubContext(settings).store, tables=HubContext(settings).tables)


def _dump(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def _plain(value: Any) -> Text:
    """A cell shown as written: notes and names may hold brackets rich would read as markup."""
    return Text("" if value is None else str(value))


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


# -- entries -------------------------------------------------------------------------------


@catalog_app.command("list")
def catalog_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every entry: code, name, provider, share type, status (draft or published), freshness facts."""
    views = _catalogue().entries()
    if as_json:
        _dump([v.to_json() for v in views])
        return
    table = Table(
        "dataset",
        "resource code",
        "name",
        "provider",
        "share",
        "cycle",
        "status",
        "version",
        "contract",
        "rows",
        "last batch",
        "k",
    )
    for v in views:
        c, f = v.content, v.facts
        version = f"{v.current_version}" + (
            f" (published {v.published_version})" if v.published_version else ""
        )
        table.add_row(
            v.dataset,
            c.resource_code or Text("missing", style="yellow"),
            _plain(c.resource_name),
            _plain(c.provider),
            c.share_type,
            c.update_cycle.zh,
            v.status,
            version,
            c.contract_version,
            "" if f is None or f.rows is None else f"{f.rows:,}",
            "" if f is None else _when(f.last_batch_at),
            "" if f is None or f.k_anonymity is None else str(f.k_anonymity),
        )
    console.print(table)
    for v in views:
        if v.pending:
            console.print(f"[yellow]{v.dataset}:[/] {escape(v.pending)}", highlight=False)


@catalog_app.command("show")
def catalog_show(
    dataset: Annotated[str, typer.Argument(help="Dataset, e.g. population.")],
    version: Annotated[
        int | None, typer.Option(help="An earlier version (see `hub catalog history`).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (with the Kafka message schema).")
    ] = False,
) -> None:
    """One entry: core metadata, information items, share attributes and what the data is now."""
    view = _catalogue().entry(dataset, version)
    if as_json:
        _dump(view.to_json())
        return
    _print_entry(view)


def _print_entry(v: EntryView) -> None:
    c, f = v.content, v.facts
    title = (
        f"{c.resource_name} ({c.resource_name_en}) — version {v.version} of {v.current_version}, {v.status}"
    )
    record = Table(title=title, show_header=False, title_justify="left")
    record.add_column("field", no_wrap=True)
    record.add_column("value", overflow="fold")  # Chinese text has no spaces to wrap at
    classification = " / ".join(
        f"{code} {name or ''}".strip()
        for code, name in (
            (c.class_code, c.class_name),
            (c.item_code, c.item_name),
            (c.catalogue_code, c.catalogue_name),
            (c.sub_item_code, c.sub_item_name),
        )
        if code
    )
    methods = ", ".join(f"{m.zh} ({m.value})" for m in c.share_methods)
    rows: list[tuple[str, Any]] = [
        (
            "信息资源代码 resource code",
            c.resource_code or Text("missing: classification and sequence code", style="yellow"),
        ),
        ("信息资源分类 classification", classification or Text("missing", style="yellow")),
        ("信息资源提供方 provider", f"{c.provider} ({c.provider_code})"),
        ("信息资源摘要 abstract", c.abstract),
        ("abstract (en)", c.abstract_en),
        ("信息资源格式 format", c.format),
        ("共享类型 share type", c.share_type),
        ("共享条件 condition", c.share_condition),
        ("法律依据 legal basis", c.legal_basis),
        ("共享方式 share methods", methods),
        (
            "开放属性 open attribute",
            c.open_attribute.value + (f"（{c.open_condition}）" if c.open_condition else ""),
        ),
        ("更新周期 update cycle", f"{c.update_cycle.zh} ({c.update_cycle.value})"),
        ("发布日期 publication date", c.publication_date),
        ("关联资源代码 related", ", ".join(c.related_codes)),
        ("keywords", ", ".join(c.keywords)),
        ("contract version", c.contract_version),
        ("this version", f"{v.change} by {v.author} at {_when(v.created_at)}: {v.note}"),
        ("edited by stewards", ", ".join(v.edited)),
    ]
    if v.published_version:
        rows.append(
            ("published", f"version {v.published_version} by {v.published_by} at {_when(v.published_at)}")
        )
    if f is not None:
        k = "" if f.k_anonymity is None else f"k = {f.k_anonymity} (threshold {c.k_threshold})"
        if f.k_suppressed_rows:
            k += f", {f.k_suppressed_rows} rows suppressed"
        rows += [
            ("current snapshot", f.snapshot_id),
            ("rows", None if f.rows is None else f"{f.rows:,}"),
            (
                "last successful batch",
                f"{f.last_batch} ({f.last_batch_source}, {_when(f.last_batch_at)})"
                if f.last_batch
                else "none yet",
            ),
            ("k-anonymity of the unconditional view", k),
        ]
    for label, value in rows:
        record.add_row(label, value if isinstance(value, Text) else _plain(value))
    console.print(record)
    items = Table(
        "信息项 item",
        "item (en)",
        "column",
        "数据类型",
        "required",
        "sensitivity",
        "masks (uncond. / cond. / steward)",
        title="信息项 information items",
        title_justify="left",
    )
    for i in c.items:
        items.add_row(
            escape(i.name) + (" [bold](key)[/]" if i.key else ""),
            _plain(i.name_en),
            i.column,
            f"{i.data_type_name} {i.data_type} ({i.published_type})",
            "yes" if i.required else "",
            i.sensitivity,
            " / ".join(i.masks[level] for level in ("unconditional", "conditional", "steward")),
        )
    console.print(items)
    console.print(
        f"Kafka message schema: {len(c.message_schema['properties'])} properties "
        f"(`hub catalog show {v.dataset} --json`)"
    )
    if v.pending:
        console.print(f"[yellow]pending:[/] {escape(v.pending)}", highlight=False)


@catalog_app.command("history")
def catalog_history(dataset: Annotated[str, typer.Argument(help="Dataset, e.g. population.")]) -> None:
    """Every version of an entry: change, contract version, who, when and why."""
    table = Table("version", "change", "contract", "by", "at", "note", "")
    for h in _catalogue().history(dataset):
        table.add_row(
            str(h.version),
            h.change,
            h.contract_version,
            _plain(h.author),
            _when(h.created_at),
            _plain(h.note),
            "[green]published[/]" if h.published else "",
        )
    console.print(table)


@catalog_app.command("search")
def catalog_search(text: Annotated[str, typer.Argument(help="Words to find, Chinese or English.")]) -> None:
    """Find entries by name, code, abstract, keyword or information item (zh and en)."""
    hits = _catalogue().search(text)
    if not hits:
        console.print(f"no entry mentions {escape(repr(text))}")
        return
    table = Table("dataset", "resource code", "name", "found in")
    for h in hits:
        table.add_row(h.dataset, h.resource_code or "", _plain(h.resource_name), ", ".join(h.matched))
    console.print(table)


@catalog_app.command("publish")
def catalog_publish(
    dataset: Annotated[str, typer.Argument(help="Dataset, e.g. population.")],
    steward: Steward,
    note: Annotated[str | None, typer.Option(help="Why (recorded with the version).")] = None,
) -> None:
    """Make the entry's current version the one consumers see (stewards only)."""
    view = _catalogue().publish(dataset, by=steward, note=note)
    console.print(
        f"catalogue entry {dataset} ({view.content.resource_code}) published: version "
        f"{view.published_version}, publication date {view.content.publication_date}"
    )


@catalog_app.command("edit")
def catalog_edit(
    dataset: Annotated[str, typer.Argument(help="Dataset, e.g. population.")],
    steward: Steward,
    note: Annotated[str, typer.Option(help="Why (recorded with the new version).")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="FIELD=VALUE; lists comma-separated. Repeatable.")
    ] = None,
    reset: Annotated[
        list[str] | None, typer.Option(help="FIELD back to the contract's value. Repeatable.")
    ] = None,
) -> None:
    """Change catalogue fields as a new version (stewards only); `hub catalog fields` lists them."""
    changes: dict[str, str] = {}
    for pair in set_ or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"--set {pair!r}: write FIELD=VALUE, e.g. --set format=数据库")
        changes[name.strip()] = value
    view = _catalogue().edit(dataset, changes, by=steward, note=note, reset=reset or [])
    console.print(
        f"catalogue entry {dataset}: version {view.current_version} ({', '.join([*changes, *(reset or [])])}); "
        f"status {view.status}"
    )


@catalog_app.command("fields")
def catalog_fields() -> None:
    """The fields stewards edit; everything else comes from the contract."""
    from catalog.entries import EDITABLE

    table = Table("field", "meaning")
    for name, spec in EDITABLE.items():
        table.add_row(name, _plain(spec.description))
    console.print(table)


@catalog_app.command("sync")
def catalog_sync(
    steward: Steward,
    dataset: Annotated[str | None, typer.Argument(help="Only this dataset.")] = None,
    note: Annotated[str | None, typer.Option(help="Why (recorded with the new versions).")] = None,
) -> None:
    """Take in new contract versions, breaking ones too once no grant includes their lost columns.

    Evolves the shared tables to the new columns (renamed columns keep their data).
    """
    report = _catalogue().sync(dataset, steward=steward, note=note)
    for name, done in report.done.items():
        console.print(f"{name}: {escape(done)}", highlight=False)
    for name, why in report.pending.items():
        console.print(f"[red]{name}: not taken in:[/] {escape(why)}", highlight=False)
    if not report.done and not report.pending:
        console.print("every entry follows its contract")
    if report.pending:
        from catalog.entries import ContractChangeRefusedError

        raise ContractChangeRefusedError("; ".join(f"{n}: {w}" for n, w in report.pending.items()))


class ExportFormat(StrEnum):
    json = "json"
    dcat = "dcat"


@catalog_app.command("export")
def catalog_export(
    output: Annotated[
        ExportFormat, typer.Option("--format", help="json (whole catalogue) or dcat (JSON-LD).")
    ],
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    base_uri: Annotated[
        str | None,
        typer.Option(help="Base of the dataset IRIs in the DCAT export (default urn:gov-data-hub:)."),
    ] = None,
) -> None:
    """Export the catalogue: every entry as JSON, or the published entries as DCAT JSON-LD."""
    from catalog.entries import DEFAULT_BASE_URI, export_dcat, export_json

    catalogue = _catalogue()
    if output is ExportFormat.json:
        document = export_json(catalogue.entries())
    else:
        document = export_dcat(catalogue.published(), base_uri=base_uri or DEFAULT_BASE_URI)
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    count = len(document["entries"] if output is ExportFormat.json else document["dcat:dataset"])
    console.print(f"{count} entries written to {out} ({output.value})")


# -- lineage and status ----------------------------------------------------------------------


def lineage(
    dataset: Annotated[str, typer.Argument(help="Dataset, e.g. population.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a tree.")] = False,
    limit: Annotated[int, typer.Option(min=0, help="Newest batches per source; 0 for all.")] = 20,
) -> None:
    """Where a dataset's data came from: source -> batch -> snapshot (-> deliveries)."""
    from catalog.entries import dataset_lineage, openlineage_file

    settings = hub_context().settings
    catalogue = _catalogue(settings)
    dataset = catalogue.known(dataset)
    current = catalogue.facts(dataset).snapshot_id
    graph = dataset_lineage(
        catalogue.store,
        dataset,
        current_snapshot_id=current,
        limit=limit or None,
        openlineage=openlineage_file(settings.home),
    )
    if as_json:
        _dump(graph.to_json())
        return
    tree = Tree(f"[bold]{dataset}[/] (current snapshot {current if current is not None else 'none'})")
    if not graph.sources:
        tree.add("no batch yet: run `hub run SOURCE`")
    for source in graph.sources:
        branch = tree.add(
            f"source [bold]{source.name}[/]"
            + (f" ({escape(source.department)})" if source.department else "")
        )
        for b in source.batches:
            counts = f"in {b.rows_in}, valid {b.rows_valid}, quarantined {b.rows_quarantined}"
            colour = "red" if b.status == "failed" else "green" if b.snapshot else "yellow"
            node = branch.add(
                f"batch {b.batch_id} [{colour}]{b.status}[/] ({counts}; contract {b.contract_version}, "
                f"{'full' if b.full_refresh else 'since ' + str(b.watermark_from)})"
            )
            if b.snapshot is not None:
                s = b.snapshot
                snap = node.add(
                    f"snapshot {s.snapshot_id}"
                    + (" [bold](current)[/]" if s.current else "")
                    + f" at {_when(s.registered_at)}"
                )
                for d in s.deliveries:
                    snap.add(
                        Text(f"grant #{d.grant_id} -> {d.system} ({d.department}) {d.channel} {d.rows or ''}")
                    )
            elif b.error:
                node.add(Text(b.error, style="red"))
    console.print(tree)
    if graph.openlineage:
        console.print(f"Airflow OpenLineage events: {graph.openlineage}")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Departments connected and each dataset's freshness against its update cycle (a report: exit 0)."""
    from catalog.entries import Provider, allowed_age
    from catalog.entries import status as coverage
    from connectors.config import load_sources

    settings = hub_context().settings
    catalogue = _catalogue(settings)
    providers = [
        Provider(v.dataset, v.content.provider, v.content.provider_code, v.content.update_cycle)
        for v in catalogue.entries(facts=False)
    ]
    sources = load_sources(settings.connectors.sources_dir, check_contract=False)
    report = coverage(catalogue.store, sources, providers)
    if as_json:
        _dump(report.to_json())
        return
    departments = Table("department", "code", "sources", "datasets", "connected", "last successful batch")
    for d in report.departments:
        departments.add_row(
            _plain(d.name),
            d.code,
            ", ".join(d.sources) or "[yellow]no source file[/]",
            ", ".join(d.datasets),
            "[green]yes[/]" if d.connected else "[red]no[/]",
            _when(d.last_success),
        )
    console.print(departments)
    datasets = Table(
        "dataset", "provider", "update cycle", "last successful batch", "age", "allowed", "state"
    )
    for s in report.datasets:
        colour = {"fresh": "green", "stale": "red", "never": "red"}[s.state]
        datasets.add_row(
            s.dataset,
            _plain(s.provider),
            f"{s.update_cycle.zh} ({s.update_cycle.value})",
            f"{s.last_batch} ({_when(s.last_success)})" if s.last_batch else "",
            "" if s.age is None else f"{s.age.total_seconds() / 3600:.1f} h",
            f"{allowed_age(s.update_cycle).total_seconds() / 3600:.0f} h",
            f"[{colour}]{s.state}[/]",
        )
    console.print(datasets)
    rate = report.connection_rate
    connected = sum(d.connected for d in report.providers)
    console.print(
        f"connection rate (接入率): {connected}/{len(report.providers)}"
        + ("" if rate is None else f" = {rate:.0%}")
        + f"; stale or never loaded: {len(report.stale)} of {len(report.datasets)} datasets",
        highlight=False,
    )
