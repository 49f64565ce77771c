"""Errors a user can act on. The CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user: a file, a field, a config key. The message names it."""


class DataError(UserError):
    """A damaged or malformed data file (session store, CSV, JSON, dataset)."""


class ConfigError(UserError):
    """A bad configuration key or value."""


class CheckpointError(UserError):
    """An incompatible, damaged or tampered checkpoint."""
