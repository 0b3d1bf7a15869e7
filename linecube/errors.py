"""Exceptions that name the offending file (or field) and the reason."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class LinecubeError(Exception):
    """Base class for every error linecube raises on purpose."""


# Rejection categories (the ``kind`` column of a store's rejection table; docs/ingest.md).
REASON_KINDS = (
    "missing",      # no such file, or a dangling link
    "not_file",     # a FIFO, device, socket or symbolic-link loop
    "unreadable",   # not FITS/HDF5, truncated, corrupt gzip, an I/O error
    "corrupt",      # FITS DATASUM mismatch
    "too_large",    # a header claims more than a MaNGA product can be (InputChecks)
    "format",       # missing extension or keyword, inconsistent shapes, channels or types
    "lines",        # a requested emission line is not in the file
    "quality",      # the CRITICAL bit in DAPQUAL or DRP3QUAL
    "identity",     # an invalid PLATEIFU or MANGAID, or a file name that disagrees
    "duplicate",    # a PLATEIFU already kept from another file
    "bad_values",   # negative ivar, or NaN/Inf with nonfinite='reject'
    "no_data",      # no usable spaxel (masked, NaN or zero ivar, outside the window)
    "unexpected",   # an unexpected exception (a bug: please report it)
)


class InputFileError(LinecubeError):
    """A file that cannot be used, with the reason and its category (:data:`REASON_KINDS`).

    Batch jobs catch this, record ``(path, reason, kind)`` in their rejection table and carry
    on.
    """

    def __init__(self, path: str | Path, reason: str, kind: str = "format"):
        if kind not in REASON_KINDS:
            raise ValueError(f"unknown rejection kind {kind!r}")
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


class ConfigError(LinecubeError):
    """An invalid configuration file or setting."""


class CompatibilityError(LinecubeError):
    """A model and a store (or two artefacts) that disagree on lines, size or normalisation."""


class NumericsError(LinecubeError):
    """PyTorch computes a result wrongly on this host (checked against higher precision)."""


class OutputDirError(LinecubeError):
    """An output directory that linecube refuses to write into (it holds something else)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def describe_path(path: Path) -> str:
    """What a path is, in words: a file, a FIFO, a device, a dangling or looping link."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a dangling symbolic link" if os.path.islink(path) else "missing"
    except OSError as exc:
        if os.path.islink(path):
            return "a symbolic link loop" if exc.errno == errno.ELOOP else "an unreadable symbolic link"
        return f"unreadable ({exc.strerror})"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
