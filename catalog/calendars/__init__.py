"""Working-day calendars (YAML) read by :mod:`catalog.workdays`."""
