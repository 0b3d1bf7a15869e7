"""Read an analysis directory (the output of ``linecube embed/score/umap/bpt/evaluate``) for display.

The layout is documented in ``docs/analysis.md``: ``analysis.json``, ``catalogue.parquet``,
``latents.zarr`` (``mu``), ``recon.zarr`` (``recon``, optional), ``spaxel_error.zarr``
(``error``), ``bpt_maps.zarr`` (``bpt``) and ``evaluation/`` (CSV tables, PNG plots). Maps are
read lazily, a block of galaxies at a time, so a survey of any size can be shown. A label table
(``read_labels``) adds class columns for display without changing the analysis directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linecube.analysis.bpt import BPT_NAMES
from linecube.analysis.labels import AGN_VAC_FLAGS, find_column, id_column, read_table
from linecube.analysis.layout import CATALOGUE, INFO, AnalysisDir
from linecube.errors import InputFileError
from linecube.store import Store

# Columns with a fixed meaning; any other non-numeric column is treated as a label.
BUILTIN_COLUMNS = ("row", "plateifu", "mangaid", "rank", "bpt_class", "whan_class")
BUILTIN_PREFIXES = ("score_", "pct_", "umap_", "flag_")
# Label columns taken from a label table when none are named (see default_label_columns).
DEFAULT_LABEL_COLUMNS = ("class", "label", "is_agn", *AGN_VAC_FLAGS)
UNMATCHED = "unmatched"
SCORE_ORDER = ("score_combined", "score_recon", "score_iforest", "score_knn", "score_lof")
# Spaxel classes of bpt_maps.zarr, indexed by their int8 code (0..); negative codes = no data.
BPT_CLASSES = tuple(BPT_NAMES[code] for code in sorted(BPT_NAMES) if code >= 0)


@dataclass
class GalaxyMaps:
    """Everything shown for one galaxy, in normalised store units.

    Attributes:
        x: (L, H, W) input maps.
        weight: (L, H, W) bool, True where the spaxel is valid.
        recon: (L, H, W) reconstruction, or None when ``recon.zarr`` was not written.
        error: (L, H, W) per-spaxel reconstruction error, or None.
        bpt: (H, W) int8 BPT class codes, or None.
    """

    x: np.ndarray
    weight: np.ndarray
    recon: np.ndarray | None
    error: np.ndarray | None
    bpt: np.ndarray | None

    @property
    def residual(self) -> np.ndarray | None:
        """(L, H, W) input minus reconstruction, NaN where the spaxel is invalid."""
        if self.recon is None:
            return None
        return np.where(self.weight, self.x - self.recon, np.nan)


@dataclass
class AnalysisResults:
    """An opened analysis directory.

    Attributes:
        path: the analysis directory.
        info: the contents of ``analysis.json``.
        catalogue: one row per store galaxy, in store order.
        lines: channel names in sequence (wavelength) order.
        store: the store the analysis was made from.
    """

    path: Path
    info: dict[str, Any]
    catalogue: pd.DataFrame
    lines: list[str]
    store: Store
    _arrays: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path, labels: str | Path | None = None,
             label_columns: list[str] | None = None) -> AnalysisResults:
        """Open ``path``; raises InputFileError naming the missing or unreadable file.

        Args:
            path: the analysis directory.
            labels: optional label table (FITS, Parquet or CSV with PLATEIFU or MANGAID)
                whose ``label_columns`` are shown as classes (see :func:`read_labels`).
            label_columns: columns of ``labels`` to show (default:
                :func:`default_label_columns`).
        """
        path = Path(path)
        adir = AnalysisDir(path)
        if not (path / INFO).is_file():
            raise InputFileError(path, f"not an analysis directory (no {INFO}); "
                                 "run `linecube embed` and `linecube score` first")
        info = adir.info()
        catalogue = adir.require_columns(("row", "plateifu", "score_combined", "rank"))
        store = adir.open_store()
        lines = list(info.get("lines") or store.meta.lines)
        if lines != list(store.meta.lines):
            raise InputFileError(path / INFO, f"lines {lines} differ from the store's "
                                 f"{list(store.meta.lines)}")
        if len(catalogue) != len(store):
            raise InputFileError(path / CATALOGUE, f"{len(catalogue)} rows but the store "
                                 f"{store.path} holds {len(store)} galaxies")
        catalogue = catalogue.sort_values("row").reset_index(drop=True)
        if labels is not None:
            for name, values in read_labels(catalogue, labels, label_columns).items():
                catalogue[name] = values
        return cls(path=path, info=info, catalogue=catalogue, lines=lines, store=store)

    def __len__(self) -> int:
        return len(self.catalogue)

    # ------------------------------------------------------------------ columns
    @property
    def score_columns(self) -> list[str]:
        """Raw score columns present, overall scores first, then per-line ones."""
        cols = [c for c in SCORE_ORDER if c in self.catalogue.columns]
        return cols + [c for c in self.catalogue.columns
                       if c.startswith("score_") and c not in cols]

    @property
    def line_score_columns(self) -> list[str]:
        """``score_recon_<line>`` columns in line order (only those present)."""
        return [f"score_recon_{ln}" for ln in self.lines
                if f"score_recon_{ln}" in self.catalogue.columns]

    @property
    def class_columns(self) -> list[str]:
        """Categorical columns: ``bpt_class``, ``whan_class``, ``flag_*`` and label columns."""
        cols = [c for c in ("bpt_class", "whan_class") if c in self.catalogue.columns]
        cols += [c for c in self.catalogue.columns if c.startswith("flag_")]
        return cols + self.label_columns

    @property
    def label_columns(self) -> list[str]:
        """Non-numeric or boolean columns beyond the built-in ones (from a label table)."""
        out = []
        for col in self.catalogue.columns:
            if col in BUILTIN_COLUMNS or col.startswith(BUILTIN_PREFIXES):
                continue
            series = self.catalogue[col]
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
                out.append(col)
        return out

    def percentile(self, score: str) -> np.ndarray:
        """(N,) survey percentile (0-100) of ``score_<name>``: the ``pct_<name>`` column when
        the analysis wrote it, else the percentile rank of the raw score."""
        name = f"pct_{score.removeprefix('score_')}"
        if name in self.catalogue.columns:
            return self.catalogue[name].to_numpy(dtype=float)
        return self.catalogue[score].rank(pct=True).to_numpy() * 100

    @cached_property
    def line_percentiles(self) -> np.ndarray:
        """(N, L) percentile of each galaxy's per-line error among all galaxies (NaN where the
        analysis has no ``score_recon_<line>``)."""
        out = np.full((len(self), len(self.lines)), np.nan)
        for j, line in enumerate(self.lines):
            if f"score_recon_{line}" in self.catalogue.columns:
                out[:, j] = self.percentile(f"score_recon_{line}")
        return out

    def why_anomalous(self, row: int, limit: int = 3) -> str:
        """The lines with the highest per-line error percentiles, e.g. ``"OIII-5008 (99)"``."""
        pct = self.line_percentiles[row]
        if np.isnan(pct).all():
            return "no per-line scores"
        order = np.argsort(-np.nan_to_num(pct, nan=-1))[:limit]
        return ", ".join(f"{self.lines[j]} ({pct[j]:.0f})" for j in order)

    @property
    def overall_score_columns(self) -> list[str]:
        """Raw score columns that are not per line."""
        return [c for c in self.score_columns if c not in self.line_score_columns]

    @property
    def has_umap(self) -> bool:
        """True when ``umap_x`` and ``umap_y`` are in the catalogue."""
        return {"umap_x", "umap_y"} <= set(self.catalogue.columns)

    def class_values(self, column: str) -> pd.Series:
        """A categorical column as strings, missing values as ``"none"``."""
        series = self.catalogue[column]
        return series.astype("string").fillna("none").astype(str)

    # ------------------------------------------------------------------ arrays
    def _array(self, name: str, key: str):
        if name not in self._arrays:
            self._arrays[name] = AnalysisDir(self.path).array(name, key, required=False)
        return self._arrays[name]

    def latents(self) -> np.ndarray:
        """(N, D) latent means; raises when ``latents.zarr`` is missing."""
        mu, _ = AnalysisDir(self.path).latents()
        return np.asarray(mu, dtype=np.float32).reshape(len(self), -1)

    @property
    def has_recon(self) -> bool:
        """True when ``recon.zarr`` was written."""
        return self._array("recon.zarr", "recon") is not None

    def galaxy(self, row: int) -> GalaxyMaps:
        """Maps of the galaxy in store row ``row``."""
        return next(self.galaxies(row, row + 1))

    def galaxies(self, start: int, stop: int) -> Iterator[GalaxyMaps]:
        """Maps of store rows ``start`` to ``stop - 1``, read from disk as one block."""
        if not 0 <= start < stop <= len(self):
            raise IndexError(f"rows {start}:{stop} out of range for {len(self)} galaxies")
        x = np.asarray(self.store.x[start:stop], dtype=np.float32)
        weight = np.asarray(self.store.weight[start:stop]) > 0
        blocks = {}
        for name, key in (("recon.zarr", "recon"), ("spaxel_error.zarr", "error"),
                          ("bpt_maps.zarr", "bpt")):
            arr = self._array(name, key)
            blocks[key] = None if arr is None else np.asarray(arr[start:stop])
        for i in range(stop - start):
            yield GalaxyMaps(
                x=x[i], weight=weight[i],
                recon=None if blocks["recon"] is None else blocks["recon"][i].astype(np.float32),
                error=None if blocks["error"] is None else blocks["error"][i].astype(np.float32),
                bpt=None if blocks["bpt"] is None else blocks["bpt"][i],
            )

    # ------------------------------------------------------------------ evaluation
    def evaluation_tables(self) -> dict[str, pd.DataFrame]:
        """``evaluation/*.csv`` by file stem (empty when evaluate has not run)."""
        folder = self.path / "evaluation"
        tables = {}
        for csv in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
            try:
                tables[csv.stem] = pd.read_csv(csv)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise InputFileError(csv, f"unreadable CSV: {exc}") from None
        return tables

    def evaluation_images(self) -> list[Path]:
        """``evaluation/*.png`` paths, sorted."""
        folder = self.path / "evaluation"
        return sorted(folder.glob("*.png")) if folder.is_dir() else []


def default_label_columns(table: pd.DataFrame) -> list[str]:
    """``class`` (or else ``label``) and ``is_agn`` when present; otherwise the MaNGA AGN VAC
    flags present (``WISE_AGN``, ``BAT_AGN``, ``RADIO_AGN``, ``BROAD_AGN``)."""
    present = [c for c in DEFAULT_LABEL_COLUMNS if find_column(table, c) is not None]
    main = [c for c in present if c in ("class", "label")][:1]
    main += [c for c in present if c == "is_agn"]
    return main or [c for c in present if c in AGN_VAC_FLAGS]


def read_labels(catalogue: pd.DataFrame, path: str | Path,
                columns: list[str] | None = None) -> dict[str, pd.Series]:
    """Label columns of a table, aligned to the catalogue rows, as strings.

    Rows match on PLATEIFU when the table has it, else on MANGAID (every observation of a
    MANGAID gets its label; the first table row of a repeated ID is used). Galaxies not in the
    table get ``"unmatched"``. A label column whose name is already a catalogue column is
    renamed ``label_<name>``.

    Args:
        catalogue: the analysis catalogue (``plateifu``, ``mangaid``).
        path: FITS, Parquet or CSV table.
        columns: label columns (any case); default: :func:`default_label_columns`.

    Returns:
        ``{column name: (N,) string Series}``.
    """
    table = read_table(path)
    id_col, kind = id_column(table, path)
    wanted = columns if columns is not None else default_label_columns(table)
    if not wanted:
        raise InputFileError(path, "no label column given and none recognised "
                             f"({', '.join(DEFAULT_LABEL_COLUMNS)}); name them with "
                             f"label_columns; the columns are: {', '.join(map(str, table.columns))}")
    if kind not in catalogue.columns:
        raise InputFileError(path, f"the table matches on {kind} but the catalogue has no "
                             f"{kind} column")
    keys = table[id_col].astype(str).str.strip()
    first = table.assign(_key=keys.to_numpy()).drop_duplicates("_key").set_index("_key")
    cat_keys = catalogue[kind].astype(str).str.strip()
    out = {}
    for name in wanted:
        col = find_column(table, name)
        if col is None:
            raise InputFileError(path, f"no label column {name!r}; the columns are: "
                                 f"{', '.join(map(str, table.columns))}")
        values = cat_keys.map(first[col])
        text = values.astype(str).where(values.notna(), UNMATCHED)
        out[col if col not in catalogue.columns else f"label_{col}"] = text.reset_index(drop=True)
    return out
