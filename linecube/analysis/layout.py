"""The analysis directory: ``analysis.json``, the galaxy catalogue and the Zarr products.

Layout of an analysis directory (see ``docs/analysis.md``)::

    ANALYSIS_DIR/
      analysis.json        store path, model path, lines, latent dim, steps run with settings
      catalogue.parquet    one row per store galaxy, in store order (also catalogue.fits)
      latents.zarr/        mu (N, D) [, logvar (N, D)]
      recon.zarr/          recon (N, L, H, W)   (optional)
      spaxel_error.zarr/   error (N, L, H, W)
      bpt_maps.zarr/       bpt (N, H, W) int8
      evaluation/          CSV tables and PNG plots

Every write goes through a temporary file or directory and ``os.replace``; each step adds or
replaces its own catalogue columns and keeps all the others.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linecube.atomic import (
    atomic_write_fits_table,
    atomic_write_json,
    atomic_write_parquet,
)
from linecube.errors import InputFileError
from linecube.outdir import claim_output_dir
from linecube.store.store import Store, missing_chunks, read_table

CATALOGUE = "catalogue.parquet"
CATALOGUE_FITS = "catalogue.fits"
INFO = "analysis.json"

# The command that produces each product, for "run X first" messages.
PRODUCERS = {
    "latents.zarr": "linecube embed",
    "spaxel_error.zarr": "linecube embed",
    "recon.zarr": "linecube embed --save-recon",
    "bpt_maps.zarr": "linecube bpt",
    "score_recon": "linecube embed",
    "score_combined": "linecube score",
    "umap_x": "linecube umap",
    "bpt_class": "linecube bpt",
}


class AnalysisDir:
    """An analysis directory bound to one store.

    Args:
        path: the directory (created on first write).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # ---------------------------------------------------------------- analysis.json
    def info(self) -> dict[str, Any]:
        """The contents of ``analysis.json`` (empty dict when it does not exist yet)."""
        path = self.path / INFO
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputFileError(path, f"corrupt analysis metadata: {exc}") from None

    def update_info(
        self, step: str | None = None, settings: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Merge ``fields`` into ``analysis.json`` and record ``step`` with its settings."""
        info = self.info()
        info.update(fields)
        if step is not None:
            info.setdefault("steps", {})[step] = {
                "settings": settings or {},
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / INFO, info)
        return info

    def forget_steps(self, steps: list[str]) -> None:
        """Remove ``steps`` from ``analysis.json`` (their results were invalidated)."""
        info = self.info()
        if any(step in info.get("steps", {}) for step in steps):
            info["steps"] = {k: v for k, v in info["steps"].items() if k not in steps}
            atomic_write_json(self.path / INFO, info)

    def open_store(self, store: str | Path | None = None) -> Store:
        """Open the store given, or the one recorded in ``analysis.json``; remember it."""
        recorded = self.info().get("store")
        if store is None and recorded is None:
            raise InputFileError(
                self.path / INFO,
                "no store recorded for this analysis directory; "
                "pass --store STORE (or run `linecube embed` first)",
            )
        path = Path(store if store is not None else recorded)
        opened = Store.open(path)
        if recorded is None:
            claim_output_dir(self.path, "analysis")
        if recorded is not None and Path(recorded).resolve() != path.resolve():
            raise InputFileError(
                path,
                f"this analysis directory belongs to the store {recorded}; "
                "use a new analysis directory for another store",
            )
        if recorded is None:
            self.update_info(
                store=str(path.resolve()),
                lines=list(opened.meta.lines),
                size=opened.meta.size,
                n_galaxies=len(opened),
            )
        return opened

    # ---------------------------------------------------------------- catalogue
    def catalogue(self, store: Store | None = None) -> pd.DataFrame:
        """The catalogue, or a fresh one (``row``, ``plateifu``, ``mangaid``) from ``store``."""
        path = self.path / CATALOGUE
        if path.is_file():
            cat = read_table(path)
            if store is not None and len(cat) != len(store):
                raise InputFileError(
                    path,
                    f"catalogue has {len(cat)} rows but the store has "
                    f"{len(store)} galaxies; the store changed after the analysis "
                    "started: use a new analysis directory",
                )
            return cat
        if store is None:
            raise InputFileError(path, "no catalogue yet; run `linecube embed` first")
        src = store.catalogue
        return pd.DataFrame(
            {
                "row": np.arange(len(store), dtype=np.int64),
                "plateifu": src["plateifu"].astype(str).to_numpy(),
                "mangaid": (
                    src["mangaid"].astype(str).to_numpy()
                    if "mangaid" in src
                    else np.full(len(store), "", dtype=object)
                ),
            }
        )

    def write_columns(
        self,
        columns: pd.DataFrame | dict[str, Any],
        store: Store | None = None,
        drop: list[str] | tuple[str, ...] = (),
    ) -> pd.DataFrame:
        """Add or replace ``columns`` (row-aligned), remove ``drop``, rewrite Parquet + FITS."""
        cat = self.catalogue(store).drop(columns=list(drop), errors="ignore")
        new = pd.DataFrame(columns)
        if len(new) != len(cat):
            raise ValueError(f"{len(new)} rows given for a catalogue of {len(cat)}")
        for name in new.columns:
            cat[name] = new[name].to_numpy()
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(cat, self.path / CATALOGUE)
        atomic_write_fits_table(cat, self.path / CATALOGUE_FITS)
        return cat

    def require_columns(self, names: list[str] | tuple[str, ...]) -> pd.DataFrame:
        """The catalogue, raising (with the command that makes them) if a column is missing."""
        cat = self.catalogue()
        for name in names:
            if name not in cat.columns:
                maker = PRODUCERS.get(name, "the step that makes it")
                raise InputFileError(
                    self.path / CATALOGUE,
                    f"column {name!r} does not exist yet; run `{maker}` first",
                )
        return cat

    # ---------------------------------------------------------------- zarr products
    def product(self, name: str) -> Path:
        """Path of a product (e.g. ``"latents.zarr"``), raising if it was not made yet."""
        path = self.path / name
        if not path.exists():
            maker = PRODUCERS.get(name, "the step that makes it")
            raise InputFileError(path, f"{name} does not exist yet; run `{maker}` first")
        return path

    def latents(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(mu (N, D), logvar (N, D) or None)`` from ``latents.zarr``."""
        mu = self.array("latents.zarr", "mu")
        logvar = self.array("latents.zarr", "logvar", required=False)
        return mu[:], None if logvar is None else logvar[:]

    def array(self, name: str, key: str, required: bool = True):
        """Array ``key`` of product ``name``, checked against the catalogue: one row per
        galaxy and, for float arrays, every chunk present (a missing chunk is an error naming
        the galaxy, never a silent fill value).

        Returns None when ``required`` is False and the product or array does not exist.
        """
        import zarr

        if not required and not (self.path / name / key).exists():
            return None
        location = self.product(name)
        try:
            arr = zarr.open_group(location, mode="r")[key]
        except (KeyError, FileNotFoundError, ValueError, OSError) as exc:
            raise InputFileError(location, f"corrupt analysis product: no readable array "
                                 f"{key!r} ({exc}); rerun `{PRODUCERS.get(name)}`") from None
        cat = self.catalogue()
        if arr.shape[0] != len(cat):
            raise InputFileError(location / key, f"corrupt analysis product: {arr.shape[0]} rows "
                                 f"but the catalogue has {len(cat)}")
        # an integer map (BPT classes) may legitimately equal its fill value and have no chunk
        missing = missing_chunks(arr, location / key, len(cat)) if arr.dtype.kind == "f" else []
        if missing:
            row = missing[0]
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InputFileError(location / key, f"corrupt analysis product: the data of galaxy "
                                 f"{cat['plateifu'].iloc[row]} (row {row}){more} are missing; "
                                 f"rerun `{PRODUCERS.get(name)}`")
        return arr

    def write_arrays(
        self,
        name: str,
        arrays: dict[str, np.ndarray],
        chunks: dict[str, tuple[int, ...]] | None = None,
    ) -> Path:
        """Write a Zarr group ``name`` holding ``arrays`` through a temporary directory."""
        import zarr

        self.path.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=f".{name}.", suffix=".tmp"))
        try:
            group = zarr.open_group(tmp, mode="w")
            for key, value in arrays.items():
                group.create_array(key, data=value, chunks=(chunks or {}).get(key, "auto"),
                                   config={"write_empty_chunks": True})
            replace_dir(tmp, self.path / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.path / name


def replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst``; the old copy is removed last."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
