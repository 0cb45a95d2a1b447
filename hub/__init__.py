"""The hub itself: settings, the context a run works in, the pipeline that sequences the
stages' steps and keeps the batch record, and the ``hub`` command (:mod:`hub.cli`). The top
layer: it may import every package below, none of them imports it."""
