"""The catalogue stage: hub metadata, shared Iceberg tables, DuckDB queries, deliveries.

Modules are imported where they are used (``catalog.store``, ``catalog.tables``,
``catalog.query``, ``catalog.publish``) so that importing the package stays cheap for
DAG parsing and the command line.
"""
