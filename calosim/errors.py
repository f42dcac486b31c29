"""Errors calosim reports to users as one clear line (the CLI prints them without a traceback)."""


class CalosimError(Exception):
    """Base of every error meant for the user."""


class DataError(CalosimError):
    """A shower file is missing, corrupt, or holds data calosim cannot use; the message names the file."""


class ConfigError(CalosimError):
    """A model or run configuration is invalid."""


class TrainingError(CalosimError):
    """Training cannot go on (a NaN loss, a checkpoint that does not match the run)."""


class ExportError(CalosimError):
    """A model cannot be exported, or its export does not reproduce calosim (``calosim export --check``)."""
