"""Helpers and fixtures the tests share: sample records, simulated worlds of departments and
systems, command runners, the connector suite. Test modules import from here, never from
each other."""
