"""What every command, pipeline step and task works with: the settings and what they open.

One :class:`HubContext` per set of settings gives the metadata store (one per metadata URL
for the life of the process, since it holds a connection pool and has run the migrations),
the shared tables, the keyring, the source files and "today" for the quality checks. The
command line and the pipeline both take these from here, so no module keeps a helper of
its own that opens them.

The catalogue, masking and connector packages are imported inside the methods: the command
line imports this module for every command, and ``hub --help`` must not load pyiceberg,
SQLAlchemy models or the keyring code.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from hub.settings import HubSettings, get_settings

if TYPE_CHECKING:
    from catalog.metadata import MetadataStore
    from catalog.tables import SharedTables
    from connectors.config import SourceConfig
    from masking.keys import Keyring


class HubContext:
    """The settings of one run and the stores they open, made on first use."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> MetadataStore:
        """The hub metadata store for ``settings.catalog.metadata_url``."""
        assert self.settings.catalog.metadata_url is not None
        return _store_for(self.settings.catalog.metadata_url)

    @cached_property
    def tables(self) -> SharedTables:
        """The shared tables (namespace ``settings.catalog.namespace``)."""
        return self.tables_in(self.settings.catalog.namespace)

    def tables_in(self, namespace: str) -> SharedTables:
        """The tables of another namespace of the same catalog (``internal``: derived tables)."""
        from catalog.tables import SharedTables

        catalog = self.settings.catalog
        assert catalog.iceberg_url is not None and catalog.warehouse is not None
        return SharedTables(catalog.iceberg_url, catalog.warehouse, namespace=namespace)

    def keyring(self) -> Keyring:
        """The keyring, read afresh (a rotation by another process is seen at once)."""
        from masking.keys import Keyring

        masking = self.settings.masking
        return Keyring.load(masking.keyring_path, master_key_file=masking.master_key_file)

    def source(self, name: str) -> SourceConfig:
        """The source file ``name`` from ``settings.connectors.sources_dir``."""
        from connectors.config import get_source

        return get_source(name, self.settings.connectors.sources_dir)

    def today(self) -> date:
        """ "Today" for date checks: ``settings.quality.today`` when set (replaying an old
        batch), else the real date."""
        if self.settings.quality.today:
            return date.fromisoformat(self.settings.quality.today)
        return date.today()


@lru_cache(maxsize=8)
def _store_for(url: str) -> MetadataStore:
    """One store (and connection pool) per metadata URL for the life of the process."""
    from catalog.metadata import MetadataStore

    return MetadataStore(url)


def hub_context() -> HubContext:
    """The context of a command: the process settings, with the hub home created."""
    settings = get_settings()
    settings.ensure_home()
    return HubContext(settings)
