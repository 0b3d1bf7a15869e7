"""Exceptions that name the offending file (or field) and the reason."""

from __future__ import annotations

from pathlib import Path


class LinecubeError(Exception):
    """Base class for every error linecube raises on purpose."""


class InputFileError(LinecubeError):
    """A file that cannot be used, with the reason.

    Batch jobs catch this, record ``(path, reason)`` in their rejection table and carry on.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(LinecubeError):
    """An invalid configuration file or setting."""


class CompatibilityError(LinecubeError):
    """A model and a store (or two artefacts) that disagree on lines, size or normalisation."""


class OutputDirError(LinecubeError):
    """An output directory that linecube refuses to write into (it holds something else)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
