"""Errors meant for a person: each carries one line that says what was wrong and what to do.

The entry points catch ``MemlabError``, print its message on one line and exit non-zero;
anything else is a bug and keeps its traceback.
"""


class MemlabError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(MemlabError):
    """A configuration value is invalid (names the key and the allowed values)."""


class DataError(MemlabError):
    """A data file is missing, corrupt, or cannot be fetched."""


class DivergenceError(MemlabError):
    """Training produced a non-finite loss."""


class TrackingError(MemlabError):
    """The MLflow store cannot be used: an unknown URI, a server that does not answer or refuses
    the user, a store that is read-only, full or corrupt (``tracking.store_faults``)."""
