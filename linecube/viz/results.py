"""Read an analysis directory (the output of ``linecube embed/score/umap/bpt/evaluate``) for display.

The layout is documented in ``docs/analysis.md``: ``analysis.json``, ``catalogue.parquet``,
``latents.zarr`` (``mu``), ``recon.zarr`` (``recon``, optional), ``spaxel_error.zarr``
(``error``), ``bpt_maps.zarr`` (``bpt``) and ``evaluation/`` (CSV tables, PNG plots). Maps are
read lazily, one galaxy at a time, so a survey of any size can be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from linecube.analysis.bpt import BPT_NAMES
from linecube.analysis.layout import CATALOGUE, INFO, AnalysisDir
from linecube.errors import InputFileError
from linecube.store import Store

# Columns with a fixed meaning; any other non-numeric column is treated as a label.
BUILTIN_COLUMNS = ("row", "plateifu", "mangaid", "rank", "bpt_class", "whan_class")
BUILTIN_PREFIXES = ("score_", "pct_", "umap_")
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
    def open(cls, path: str | Path) -> AnalysisResults:
        """Open ``path``; raises InputFileError naming the missing or unreadable file."""
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
        """Categorical columns: ``bpt_class``, ``whan_class`` and any label columns."""
        cols = [c for c in ("bpt_class", "whan_class") if c in self.catalogue.columns]
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
            location = self.path / name
            if not location.exists():
                self._arrays[name] = None
            else:
                try:
                    self._arrays[name] = zarr.open_group(location, mode="r")[key]
                except (KeyError, FileNotFoundError, ValueError) as exc:
                    raise InputFileError(location, f"no array {key!r}: {exc}") from None
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
        arrays = self.store.read([row])
        recon = self._array("recon.zarr", "recon")
        error = self._array("spaxel_error.zarr", "error")
        bpt = self._array("bpt_maps.zarr", "bpt")
        return GalaxyMaps(
            x=arrays["x"][0],
            weight=arrays["weight"][0] > 0,
            recon=None if recon is None else np.asarray(recon[row], dtype=np.float32),
            error=None if error is None else np.asarray(error[row], dtype=np.float32),
            bpt=None if bpt is None else np.asarray(bpt[row]),
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
