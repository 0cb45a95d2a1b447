"""Fixtures of the command tests: ``hub`` runs the command in this process."""

from tests.hub.test_sharing_cli import hub  # noqa: F401 (a fixture, shared with every command test)
