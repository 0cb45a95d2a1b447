"""The catalogue stage: hub metadata, shared Iceberg tables, DuckDB queries, deliveries.

Modules are imported where they are used (``catalog.metadata.store``, ``catalog.tables.iceberg``,
``catalog.tables.query``, ``catalog.deliveries.publish``) so that importing the package stays cheap for
DAG parsing and the command line.
"""
