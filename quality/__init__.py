"""Quality gate: every row of a batch is judged against checks derived from its contract.

:mod:`quality.checks` holds the vectorised national-standard checks, :mod:`quality.expectations`
wraps them as Great Expectations custom expectations, :mod:`quality.suite` derives a dataset's
suite from its contract and :mod:`quality.validate` splits chunks into valid and quarantined
rows. Nothing heavy is imported here, because ``hub.settings`` imports ``quality.settings``.
"""
