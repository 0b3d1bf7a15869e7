"""Atomic file writes: write to a temporary name beside the target, then ``os.replace``.

A reader never sees a half-written file, and a killed writer leaves the old file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    ``suffix`` matters to writers that infer the format from the name (``.png``, ``.fits``).
    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, ``fsync`` and ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write a DataFrame as Parquet atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def json_default(value: Any) -> Any:
    """``json.dumps`` ``default=`` for the values linecube records: paths and numpy scalars/arrays."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, ending in a newline, atomically (paths and numpy values
    allowed)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=json_default) + "\n").encode())


def atomic_write_fits_table(df: pd.DataFrame, path: str | Path, extname: str | None = None) -> None:
    """Write a DataFrame as a FITS binary table atomically (strings fixed-width, booleans logical).

    The table is HDU 1 behind an empty primary HDU; ``extname`` names it.
    """
    from astropy.io import fits
    from astropy.table import Table

    table = Table()
    for name in df.columns:
        values = df[name].to_numpy()
        if values.dtype == object or pd.api.types.is_string_dtype(df[name]):
            values = np.array([str(v) for v in values], dtype=str) if len(values) else \
                np.array([], dtype="U1")
        table[name] = values
    hdu = fits.BinTableHDU(table, name=extname)
    with atomic_path(path, suffix=".fits") as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
