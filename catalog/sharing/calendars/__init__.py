"""Working-day calendars (YAML) read by :mod:`catalog.sharing.workdays`."""
