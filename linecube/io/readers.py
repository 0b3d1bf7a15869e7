"""Which files linecube reads, and which reader reads each (the one place that decides).

File types are told apart by name, case-insensitively:

* MaNGA DAP ``MAPS`` FITS (one galaxy): ``.fits``, ``.fits.gz``, ``.fit``, ``.fit.gz``;
* Multimodal Universe MaNGA HDF5 (one galaxy per group): ``.hdf5``, ``.h5``.

Ingest (which files of a folder to take), preprocessing and ``inspect`` all dispatch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from linecube.errors import InputFileError
from linecube.io.checks import InputChecks
from linecube.io.galaxy import Galaxy
from linecube.io.maps import Extension, MaskPolicy, NonFinite, maps_lines, read_maps
from linecube.io.mmu import mmu_lines, read_mmu


def _read_maps_file(path: str | Path, *, lines, extension, mask, allow_critical, nonfinite, checks,
                    errors) -> list[Galaxy]:
    """The one galaxy of a MAPS file (``errors`` unused: a bad galaxy is a bad file)."""
    return [read_maps(path, lines=lines, extension=extension, mask=mask,
                      allow_critical=allow_critical, nonfinite=nonfinite, checks=checks)]


def _read_mmu_file(path: str | Path, *, lines, extension, mask, allow_critical, nonfinite, checks,
                   errors) -> list[Galaxy]:
    """Every galaxy of an MMU file (``allow_critical`` unused: the format has no quality
    words)."""
    return list(read_mmu(path, lines=lines, extension=extension, mask=mask,
                         nonfinite=nonfinite, errors=errors, checks=checks))


@dataclass(frozen=True)
class FileType:
    """One readable file type.

    Attributes:
        name: short name (``maps``, ``mmu``).
        description: what the file is, for messages.
        suffixes: accepted name endings, lower case.
        multi_galaxy: one file may hold many galaxies (a bad one is skipped, not the file).
        read: ``read(path, *, lines, extension, mask, allow_critical, nonfinite, checks,
            errors) -> list[Galaxy]``.
        lines: ``lines(path, extension) -> list[str]``, the catalogued lines the file holds.
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    multi_galaxy: bool
    read: Callable[..., list[Galaxy]]
    lines: Callable[[Path, str], list[str]]


MAPS = FileType("maps", "MaNGA DAP MAPS FITS", (".fits", ".fits.gz", ".fit", ".fit.gz"),
                False, _read_maps_file, maps_lines)
MMU = FileType("mmu", "Multimodal Universe MaNGA HDF5", (".hdf5", ".h5"), True,
               _read_mmu_file, mmu_lines)
FILE_TYPES = (MAPS, MMU)


def accepted_types() -> str:
    """The readable file types for messages: ``MaNGA DAP MAPS FITS (.fits, ...); ...``."""
    return "; ".join(f"{t.description} ({', '.join(t.suffixes)})" for t in FILE_TYPES)


def file_type(path: str | Path) -> FileType | None:
    """The type of ``path`` by its name (any case), or None when linecube cannot read it."""
    name = Path(path).name.lower()
    return next((t for t in FILE_TYPES if name.endswith(t.suffixes)), None)


def reader_for(path: str | Path) -> FileType:
    """The type (and so the reader) of ``path``.

    Raises:
        InputFileError: the name has none of the accepted endings; the message lists them.
    """
    found = file_type(path)
    if found is None:
        raise InputFileError(path, f"unknown file type (accepted: {accepted_types()})")
    return found


def read_galaxies(path: str | Path, *, lines: str | list[str] | tuple[str, ...] | None = None,
                  extension: Extension = "GFLUX", mask: MaskPolicy = "donotuse",
                  allow_critical: bool = False, nonfinite: NonFinite = "mask",
                  checks: InputChecks | None = None,
                  errors: list[tuple[str, str, str]] | None = None) -> list[Galaxy]:
    """Read every galaxy of a file of any accepted type.

    Args:
        path: the file; its name decides the reader (:func:`reader_for`).
        lines, extension, mask, allow_critical, nonfinite, checks: as
            :func:`linecube.io.maps.read_maps` (``allow_critical`` has no effect on MMU files,
            which carry no quality words).
        errors: for a multi-galaxy file, a galaxy that fails is appended as
            ``(source, reason, kind)`` and skipped; without it the first failure raises.

    Raises:
        InputFileError: unknown file type, or the file is unusable.
    """
    return reader_for(path).read(path, lines=lines, extension=extension, mask=mask,
                                 allow_critical=allow_critical, nonfinite=nonfinite,
                                 checks=checks, errors=errors)
