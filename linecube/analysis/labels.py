"""Label tables (the MaNGA AGN VAC, a simulated truth table, any table with an ID column)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from linecube.errors import InputFileError

ID_CANDIDATES = ("plateifu", "mangaid")
AGN_VAC_FLAGS = ("WISE_AGN", "BAT_AGN", "RADIO_AGN", "BROAD_AGN")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a FITS (first table HDU), Parquet or CSV table; strings decoded and stripped.

    Multidimensional FITS columns are dropped (they cannot be labels).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "label table not found")
    name = path.name.lower()
    try:
        if name.endswith((".fits", ".fits.gz", ".fit")):
            from astropy.table import Table

            table = Table.read(path, format="fits")
            keep = [c for c in table.colnames if table[c].ndim <= 1]
            df = table[keep].to_pandas()
        elif name.endswith(".parquet"):
            df = pd.read_parquet(path)
        elif name.endswith((".csv", ".txt")):
            df = pd.read_csv(path)
        else:
            raise InputFileError(
                path, "unsupported label table format (use .fits, .parquet or .csv)"
            )
    except InputFileError:
        raise
    except Exception as exc:  # astropy/pyarrow/pandas raise many types for unreadable files
        raise InputFileError(path, f"cannot read the label table: {exc}") from None
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
            df[col] = df[col].map(lambda v: v.strip() if isinstance(v, str) else v)
    return df


def find_column(df: pd.DataFrame, name: str) -> str | None:
    """The column of ``df`` named ``name`` regardless of case, or None."""
    lower = {str(c).lower(): c for c in df.columns}
    return lower.get(name.lower())


def id_column(df: pd.DataFrame, path: str | Path) -> tuple[str, str]:
    """``(column, kind)`` of the ID to match on: PLATEIFU preferred, then MANGAID."""
    for kind in ID_CANDIDATES:
        col = find_column(df, kind)
        if col is not None:
            return col, kind
    raise InputFileError(
        path,
        "the label table has no PLATEIFU or MANGAID column to match on; "
        f"its columns are: {', '.join(map(str, df.columns))}",
    )


def label_vector(
    df: pd.DataFrame, path: str | Path, column: str | None, positive: str | None
) -> tuple[np.ndarray, str]:
    """1 for rows in the class of interest, 0 otherwise, and a description of the rule.

    Args:
        df: the label table.
        path: its path (for errors).
        column: the label column; ``None`` picks ``is_agn`` or else the OR of the AGN VAC
            flags (WISE_AGN, BAT_AGN, RADIO_AGN, BROAD_AGN) that are present.
        positive: for a text column, the value that marks the class (e.g. ``seyfert``).
    """
    if column is None:
        col = find_column(df, "is_agn")
        if col is not None:
            column = col
        else:
            flags = [find_column(df, f) for f in AGN_VAC_FLAGS]
            flags = [f for f in flags if f is not None]
            if not flags:
                raise InputFileError(
                    path,
                    "no label column given and none recognised (is_agn or "
                    f"{', '.join(AGN_VAC_FLAGS)}); pass --label-column; the "
                    f"columns are: {', '.join(map(str, df.columns))}",
                )
            values = np.column_stack([_truthy(df[f], path, f) for f in flags])
            return values.any(axis=1).astype(np.int8), f"any of {', '.join(flags)}"
    col = find_column(df, column)
    if col is None:
        raise InputFileError(
            path,
            f"label column {column!r} not found; the columns are: "
            f"{', '.join(map(str, df.columns))}",
        )
    values = df[col]
    if positive is not None:
        return (values.astype(str).str.lower() == positive.lower()).to_numpy().astype(
            np.int8
        ), f"{col} == {positive!r}"
    return _truthy(values, path, col).astype(np.int8), f"{col} is true"


def _truthy(values: pd.Series, path, column: str) -> np.ndarray:
    """Booleans from a bool / numeric column (non-zero = true); text needs ``positive``."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.fillna(0).to_numpy().astype(bool)
    distinct = sorted(map(str, values.dropna().unique()))[:20]
    raise InputFileError(
        path,
        f"label column {column!r} holds text; say which value marks the "
        f"class with --positive (values: {', '.join(distinct)})",
    )


def match_labels(
    catalogue: pd.DataFrame, table: pd.DataFrame, path: str | Path, labels: np.ndarray
) -> tuple[np.ndarray, str]:
    """Labels aligned to the catalogue rows: 1, 0, or -1 where the galaxy is not in the table.

    Matches on PLATEIFU when the table has it, else on MANGAID (every observation of a
    MANGAID gets its label). A catalogue galaxy listed several times takes the maximum.
    """
    col, kind = id_column(table, path)
    keys = table[col].astype(str).str.strip()
    lookup = pd.Series(labels, index=keys.to_numpy()).groupby(level=0).max()
    cat_keys = catalogue[kind].astype(str).str.strip()
    aligned = cat_keys.map(lookup)
    return aligned.fillna(-1).to_numpy().astype(np.int8), kind
