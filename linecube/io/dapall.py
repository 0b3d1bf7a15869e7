"""Read and write the DAPall summary catalogue (``dapall-v3_1_1-3.1.0.fits``, format doc §2).

HDU 0 carries ``VERSDRP3``/``VERSDAP`` and the ``ELG<n>``/``ELS<n>`` keywords naming the
emission-line vector positions; HDUs 1.. are binary tables named after each DAPTYPE, one row per
analysed cube.

De-duplication rule (:func:`deduplicate`): galaxies observed more than once share a ``MANGAID``.
For each ``MANGAID`` one row is kept, chosen in this order:

1. rows without the CRITICAL bit (30) in ``DAPQUAL`` or ``DRP3QUAL`` first;
2. then the highest median r-band S/N (``SNR_MED[1]``; ``SNR_MED`` is g, r, i, z);
3. then the lowest ``DAPQUAL``, then the lowest ``DRP3QUAL``;
4. then the smallest ``PLATEIFU`` (string order), so the choice is deterministic.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from linecube.atomic import atomic_write_bytes
from linecube.bits import CRITICAL_BIT
from linecube.errors import InputFileError
from linecube.io.maps_writer import DEFAULT_PRIMARY, sflux_channels
from linecube.lines import RELEASE_LINES

DAPTYPES = {"dr17": ("SPX-MILESHC-MASTARSSP", "VOR10-MILESHC-MASTARSSP",
                     "HYB10-MILESHC-MASTARSSP", "HYB10-MILESHC-MASTARHC2"),
            "dr15": ("VOR10-GAU-MILESHC", "HYB10-GAU-MILESHC")}  # HDUs of each release's DAPall
DR17_DAPTYPES = DAPTYPES["dr17"]
DEFAULT_DAPTYPE = "HYB10-MILESHC-MASTARSSP"
REQUIRED_COLUMNS = ("PLATEIFU", "MANGAID", "DAPDONE")


def write_dapall(path: str | Path, rows: pd.DataFrame | Mapping[str, Sequence[Any]],
                 daptypes: Sequence[str] = DR17_DAPTYPES, release: str = "dr17") -> None:
    """Write a DAPall file with one binary-table HDU per DAPTYPE.

    Args:
        path: output FITS file (written atomically, deterministic bytes).
        rows: one row per cube; needs ``PLATEIFU`` and ``MANGAID``. Vector columns (``SNR_MED``
            (4,), ``EMLINE_GFLUX_1RE`` (n_lines,), ...) hold one sequence per row. If a
            ``DAPTYPE`` column is present each HDU gets the rows of its DAPTYPE, otherwise every
            HDU gets all rows. ``PLATE``, ``IFUDESIGN``, ``DAPDONE`` (True), ``DAPQUAL`` and
            ``DRP3QUAL`` (0) are filled in when absent.
        daptypes: HDU names, in order.
        release: ``"dr17"`` or ``"dr15"``: version keywords and the ``ELG``/``ELS`` names.
    """
    df = pd.DataFrame(dict(rows)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    missing = [c for c in ("PLATEIFU", "MANGAID") if c not in df.columns]
    if missing:
        raise ValueError(f"write_dapall: rows lack column(s) {', '.join(missing)}")
    plate_ifu = df["PLATEIFU"].astype(str).str.split("-", n=1, expand=True)
    if "PLATE" not in df:
        df["PLATE"] = plate_ifu[0].astype(np.int32)
    if "IFUDESIGN" not in df:
        df["IFUDESIGN"] = plate_ifu[1].astype(np.int32)
    for col, default in (("DAPDONE", True), ("DAPQUAL", 0), ("DRP3QUAL", 0)):
        if col not in df:
            df[col] = default

    primary = fits.Header()
    defaults = DEFAULT_PRIMARY[release]
    primary["VERSDRP3"] = defaults["VERSDRP3"]
    primary["VERSDAP"] = defaults["VERSDAP"]
    lines = tuple(ln.name for ln in RELEASE_LINES[release])
    for i, name in enumerate(sflux_channels(lines, release)):
        primary[f"ELS{i + 1}"] = name
    for i, name in enumerate(lines):
        primary[f"ELG{i + 1}"] = name
    hdus: list[fits.hdu.base.ExtensionHDU] = [fits.PrimaryHDU(header=primary)]
    for daptype in daptypes:
        part = df[df["DAPTYPE"] == daptype] if "DAPTYPE" in df else df.assign(DAPTYPE=daptype)
        hdus.append(fits.BinTableHDU.from_columns(_columns(part), name=daptype))
    hdul = fits.HDUList(hdus)
    for hdu in hdul:
        hdu.add_datasum(when="data unit checksum")
        hdu.add_checksum(when="HDU checksum", override_datasum=True)
    buf = io.BytesIO()
    hdul.writeto(buf, checksum=False)
    atomic_write_bytes(Path(path), buf.getvalue())


def _columns(df: pd.DataFrame) -> list[fits.Column]:
    cols = []
    for name in df.columns:
        values = df[name].tolist()
        first = values[0] if values else None
        if isinstance(first, str) or df[name].dtype == object and not _is_vector(first):
            width = max([len(str(v)) for v in values] + [1])
            cols.append(fits.Column(name=name, format=f"{width}A",
                                    array=np.array([str(v) for v in values], dtype=f"U{width}")))
            continue
        if _is_vector(first):
            arr = np.stack([np.asarray(v) for v in values])
        else:
            arr = np.asarray(values)
        if arr.dtype == bool:
            fmt = "L"
        elif arr.dtype.kind in "iu":
            arr, fmt = arr.astype(np.int64), "K"
        else:
            arr, fmt = arr.astype(np.float64), "D"
        if arr.ndim == 2:
            fmt = f"{arr.shape[1]}{fmt}"
        cols.append(fits.Column(name=name, format=fmt, array=arr))
    return cols


def _is_vector(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1


def read_dapall(path: str | Path, daptype: str = DEFAULT_DAPTYPE, done_only: bool = True,
                dedupe: bool = False) -> pd.DataFrame:
    """One DAPTYPE's rows of a DAPall file as a DataFrame.

    Strings are stripped; vector columns hold one numpy array per row. The emission-line
    names of the vector columns are in ``df.attrs["ELG"]`` and ``df.attrs["ELS"]``.

    Args:
        path: the DAPall FITS file.
        daptype: which HDU to read (e.g. ``HYB10-MILESHC-MASTARSSP``).
        done_only: keep only rows with ``DAPDONE`` true (a MAPS file exists).
        dedupe: keep one row per ``MANGAID`` (see :func:`deduplicate`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "DAPall file not found")
    try:
        with fits.open(path, lazy_load_hdus=True) as hdul:
            header = hdul[0].header
            names = [h.name for h in hdul[1:]]
            if daptype not in names:
                raise InputFileError(path, f"no DAPTYPE HDU {daptype!r} (the file has: "
                                           f"{', '.join(names) or 'none'})")
            table = hdul[daptype].data
            columns = {}
            for name in table.columns.names:
                col = np.asarray(table[name])
                if col.dtype.kind in "SU":
                    columns[name] = np.char.strip(col.astype(str))
                elif col.ndim > 1:
                    columns[name] = list(col.astype(col.dtype.newbyteorder("=")))
                else:
                    columns[name] = col.astype(col.dtype.newbyteorder("="))
    except InputFileError:
        raise
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise InputFileError(path, f"not a readable DAPall FITS file: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputFileError(path, f"HDU {daptype} lacks column(s) {', '.join(missing)}")
    df = pd.DataFrame(columns)
    df.attrs["ELG"] = _numbered(header, "ELG")
    df.attrs["ELS"] = _numbered(header, "ELS")
    if done_only:
        df = df[df["DAPDONE"].astype(bool)].reset_index(drop=True)
    if dedupe:
        df = deduplicate(df)
    return df


def _numbered(header: fits.Header, prefix: str) -> list[str]:
    out, i = [], 1
    while f"{prefix}{i}" in header:
        out.append(str(header[f"{prefix}{i}"]).strip())
        i += 1
    return out


def deduplicate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``MANGAID``, chosen by the rule in this module's docstring."""
    critical = 1 << CRITICAL_BIT
    dapqual = df["DAPQUAL"].astype(np.int64) if "DAPQUAL" in df else pd.Series(0, index=df.index)
    drpqual = (df["DRP3QUAL"].astype(np.int64) if "DRP3QUAL" in df
               else pd.Series(0, index=df.index))
    if "SNR_MED" in df:
        snr_r = df["SNR_MED"].map(lambda v: float(np.asarray(v).ravel()[1]))
    else:
        snr_r = pd.Series(0.0, index=df.index)
    keys = pd.DataFrame({
        "critical": ((dapqual | drpqual) & critical) != 0,
        "neg_snr": -snr_r.fillna(-np.inf),
        "dapqual": dapqual, "drp3qual": drpqual,
        "plateifu": df["PLATEIFU"].astype(str),
    }, index=df.index)
    order = keys.sort_values(["critical", "neg_snr", "dapqual", "drp3qual", "plateifu"],
                             kind="mergesort").index
    kept = df.loc[order].drop_duplicates("MANGAID", keep="first")
    return kept.sort_values("PLATEIFU", kind="mergesort").reset_index(drop=True)
