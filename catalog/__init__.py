"""The catalogue stage: everything the hub keeps about shared data, one concept per folder.

Lowest first (a subpackage imports only those below it; ``make lint`` checks it):

- ``metadata``: the metadata database, its tables per domain and migrations;
- ``audit``: the tamper-evident access log;
- ``sharing``: departments, systems, people, requests and grants;
- ``tables``: the shared Iceberg tables and DuckDB over them;
- ``entries`` and ``corrections``: catalogue entries (with lineage, coverage, scorecards) and
  correction requests;
- ``access`` and ``deliveries``: what consumers reach, by query, verification or HTTP, and
  by their grants' Kafka topics.

``errors`` and ``settings`` are shared by all of them. Nothing is imported here, so that
importing one subpackage does not load the others.
"""
