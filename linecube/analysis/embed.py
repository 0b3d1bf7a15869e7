"""Latent vectors, reconstructions and calibrated residual scores of every galaxy of a store.

The model is run once over the store; everything that needs the model is computed in that
pass: latents (``latents.zarr``), optional reconstructions (``recon.zarr``), per-spaxel errors
(``spaxel_error.zarr``), per-spaxel anomaly maps (``anomaly_maps.zarr``) and the per-galaxy
scores of the catalogue. Residuals are scored in units of their expected error with a
calibration fitted on galaxies the network did not train on (``calibration.json``, see
:mod:`linecube.analysis.calibrate`). The pass resumes after a kill: finished batches are kept
in ``ANALYSIS_DIR/.embed.partial``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.calibrate import (
    ResidualCalibration,
    batch_scores,
    fit_calibration,
    psf_sigma_of,
    reconstruct,
)
from linecube.analysis.layout import AnalysisDir, replace_dir
from linecube.atomic import atomic_write_bytes
from linecube.config import StrictModel
from linecube.errors import ConfigError
from linecube.store.store import Store, StoreMeta

PARTIAL = ".embed.partial"
CALIBRATION = "calibration.json"


class EmbedConfig(StrictModel):
    """Settings of ``linecube embed``."""

    batch_size: int = Field(32, gt=0, description="galaxies per forward pass")
    device: str = Field(
        "auto", description="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    save_recon: bool = Field(
        False, description="also write recon.zarr (N, L, H, W), in normalised units")
    error: Literal["l1", "mse"] = Field(
        "l1", description="per-spaxel error: l1 = |x - recon| or mse = (x - recon)^2")


def resolve_device(name: str):
    """The torch device for ``name`` (``"auto"`` picks CUDA when available); a device this
    machine cannot use is a ConfigError."""
    import torch

    from linecube.devices import check_device

    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_split(model_path: str | Path | None, store: Store) -> np.ndarray:
    """Each store galaxy's role in the model's training run, (N,) object.

    ``train``, ``val`` or ``holdout`` as recorded in the run's ``split.parquet`` (matched on
    PLATEIFU); ``unseen`` for galaxies the run never listed, and for every galaxy when the
    model file has no run directory beside it.
    """
    split = np.full(len(store), "unseen", dtype=object)
    path = None if model_path is None else Path(model_path).parent / "split.parquet"
    if path is None or not path.is_file():
        return split
    table = pd.read_parquet(path)
    if "plateifu" not in table or "split" not in table:
        return split
    known = dict(zip(table["plateifu"].astype(str), table["split"].astype(str), strict=True))
    plateifu = store.catalogue["plateifu"].astype(str)
    return plateifu.map(known).fillna("unseen").to_numpy(dtype=object)


def embed(
    model,
    store: Store,
    out: str | Path,
    cfg: EmbedConfig | None = None,
    model_path: str | Path | None = None,
    model_store_meta: StoreMeta | None = None,
    progress: bool = True,
    calibration: ResidualCalibration | None = None,
) -> pd.DataFrame:
    """Embed and score every galaxy of ``store``; write the products into the analysis directory.

    Args:
        model: an autoencoder with ``forward(x (B, L, 1, H, W)) -> ModelOutput(recon, mu,
            logvar)``; spatial latents (B, C, h, w) are flattened to (B, C*h*w).
        store: the store to embed (all committed galaxies, in store order).
        out: the analysis directory.
        cfg: batch size, device, optional reconstructions, error metric.
        model_path: recorded in ``analysis.json``; the run directory beside it gives each
            galaxy's ``split`` and, unless ``calibration`` is given, the validation galaxies
            the residual calibration is fitted on.
        model_store_meta: the store metadata the model was trained on; when given, a store
            that disagrees (lines, size, normalisation) raises CompatibilityError.
        progress: show a progress bar.
        calibration: a calibration fitted elsewhere (e.g. ``calibration.json`` of an analysis
            of the training store), for a store that holds no validation galaxies of the run.

    Returns:
        The catalogue with ``split``; the calibrated scores ``score_resid_peak`` and
        ``score_resid_mean`` and per line ``score_line_<line>`` (standardised on the
        calibration galaxies, 0 = typical); and, for comparison, the uncalibrated mean error
        ``score_recon`` and ``score_recon_<line>``.

    Raises:
        ConfigError: no calibration given and no validation galaxy of the run in ``store``.
    """
    import zarr
    from tqdm import tqdm

    cfg = cfg or EmbedConfig()
    if model_store_meta is not None:
        from linecube.training.modelfile import check_compatible

        check_compatible(model_store_meta, store.meta)
    adir = AnalysisDir(out)
    adir.open_store(store.path)
    lines = list(store.meta.lines)
    n, n_lines, size = len(store), len(lines), store.meta.size
    device = resolve_device(cfg.device)
    model = model.to(device).eval()
    split = run_split(model_path, store)

    partial = adir.path / PARTIAL
    stamp = {
        "store": str(Path(store.path).resolve()),
        "n": n,
        "model": str(model_path),
        "config": cfg.model_dump(),
        "calibration": None if calibration is None else _digest(calibration.model_dump_json()),
    }
    done = _resume_point(partial, stamp)
    if done == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    cal_path = partial / CALIBRATION
    if calibration is None and cal_path.is_file():
        calibration = ResidualCalibration.model_validate_json(cal_path.read_text())
    elif calibration is None:
        val_rows = np.flatnonzero(split == "val")
        if len(val_rows) == 0:
            raise ConfigError(
                f"no residual calibration for {store.path}: it holds no validation galaxy of "
                f"the model's run ({model_path}); pass the calibration.json of an analysis of "
                "the training store"
            )
        calibration = fit_calibration(model, store, val_rows, device, cfg.batch_size)
    if not cal_path.is_file():
        atomic_write_bytes(cal_path, calibration.model_dump_json(indent=1).encode())
    sigma = psf_sigma_of(store, np.arange(n))

    map_chunks = (1, n_lines, size, size)
    sums = zarr.open_group(partial / "sums.zarr", mode="a")
    if "line_sum" not in sums:
        sums.create_array("line_sum", shape=(n, n_lines), dtype="f8", fill_value=0.0)
        sums.create_array("line_weight", shape=(n, n_lines), dtype="f8", fill_value=0.0)
        sums.create_array("stats", shape=(n, 2 + n_lines), dtype="f8", fill_value=np.nan)
    products = ("latents.zarr", "spaxel_error.zarr", "anomaly_maps.zarr") + (
        ("recon.zarr",) if cfg.save_recon else ()
    )
    # after a complete pass, a product missing from the partial directory was already moved
    # into place by an interrupted finalisation
    groups = {
        name: zarr.open_group(partial / name, mode="a")
        for name in products
        if done < n or (partial / name).exists()
    }

    bar = tqdm(total=n, initial=done, disable=not progress, desc="embed", unit="galaxy")
    for start in range(done, n, cfg.batch_size):
        stop = min(start + cfg.batch_size, n)
        data = reconstruct(model, store, np.arange(start, stop), device)
        output = data["output"]
        mu = output.mu.reshape(stop - start, -1).float().cpu().numpy()
        logvar = (
            None
            if output.logvar is None
            else output.logvar.reshape(stop - start, -1).float().cpu().numpy()
        )
        diff = data["recon"] - data["x"]
        err = (np.abs(diff) if cfg.error == "l1" else diff**2).astype(np.float32)
        weight = data["weight"].astype(np.float32)
        stats, anomaly_map = batch_scores(data, sigma[start:stop], calibration, True)
        latents = groups["latents.zarr"]
        if "mu" not in latents:
            latents.create_array("mu", shape=(n, mu.shape[1]), dtype="f4")
            if logvar is not None:
                latents.create_array("logvar", shape=(n, mu.shape[1]), dtype="f4")
            groups["spaxel_error.zarr"].create_array(
                "error", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
            )
            groups["anomaly_maps.zarr"].create_array(
                "score", shape=(n, size, size), chunks=(1, size, size), dtype="f4"
            )
            if cfg.save_recon:
                groups["recon.zarr"].create_array(
                    "recon", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
                )
        latents["mu"][start:stop] = mu
        if logvar is not None:
            latents["logvar"][start:stop] = logvar
        groups["spaxel_error.zarr"]["error"][start:stop] = np.where(weight > 0, err, np.nan)
        groups["anomaly_maps.zarr"]["score"][start:stop] = anomaly_map.astype(np.float32)
        if cfg.save_recon:
            groups["recon.zarr"]["recon"][start:stop] = data["recon"].astype(np.float32)
        sums["line_sum"][start:stop] = (err * weight).sum(axis=(2, 3))
        sums["line_weight"][start:stop] = weight.sum(axis=(2, 3))
        sums["stats"][start:stop] = np.column_stack(
            [stats["peak"], stats["mean"]] + [stats[f"line_{name}"] for name in lines]
        )
        atomic_write_bytes(
            partial / "progress.json", json.dumps({**stamp, "done": stop}).encode()
        )
        bar.update(stop - start)
    bar.close()

    line_sum, line_weight = sums["line_sum"][:], sums["line_weight"][:]
    stat_table = sums["stats"][:]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_line = line_sum / line_weight
        total = line_sum.sum(axis=1) / line_weight.sum(axis=1)
    columns = {
        "split": split,
        "score_resid_peak": stat_table[:, 0],
        "score_resid_mean": stat_table[:, 1],
        "score_recon": total,
    }
    columns.update({f"score_line_{name}": stat_table[:, 2 + i] for i, name in enumerate(lines)})
    columns.update({f"score_recon_{name}": per_line[:, i] for i, name in enumerate(lines)})
    for name in groups:
        replace_dir(partial / name, adir.path / name)
    cal_path.replace(adir.path / CALIBRATION)
    if not cfg.save_recon and (adir.path / "recon.zarr").exists():
        shutil.rmtree(adir.path / "recon.zarr")  # stale reconstructions of another model
    # scores and coordinates derived from a previous embedding would no longer match
    stale = [
        c
        for c in adir.catalogue(store).columns
        if c.startswith(("score_", "pct_", "umap_")) or c in ("rank", "flag_anomaly", "split")
    ]
    cat = adir.write_columns(columns, store, drop=stale)
    adir.forget_steps(["score", "umap", "evaluate"])
    dim = zarr.open_group(adir.path / "latents.zarr", mode="r")["mu"].shape[1] if n else 0
    adir.update_info(
        "embed",
        cfg.model_dump(),
        model=None if model_path is None else str(model_path),
        latent_dim=int(dim),
        vae=(adir.path / "latents.zarr" / "logvar").exists(),
        calibration=f"{CALIBRATION}: fitted on {calibration.n_galaxies} galaxies",
    )
    shutil.rmtree(partial, ignore_errors=True)
    return cat


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _resume_point(partial: Path, stamp: dict) -> int:
    """Galaxies already embedded by an interrupted run with the same settings, else 0."""
    path = partial / "progress.json"
    if not path.is_file():
        return 0
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError:
        return 0
    if {k: saved.get(k) for k in stamp} != stamp:
        return 0
    return int(saved.get("done", 0))
