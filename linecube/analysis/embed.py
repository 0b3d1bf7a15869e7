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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.calibrate import (
    GALAXY_STATISTICS,
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
from linecube.progress import progress_bar
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
    residual: Literal["shape", "flux"] = Field(
        "shape", description="what the calibrated scores measure: shape = each spaxel's line "
        "ratios against the model's (the reconstruction scaled to the spaxel's brightness), "
        "flux = the fluxes themselves")


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
        The catalogue with ``split``; the calibrated scores ``score_resid_peak``,
        ``score_resid_mean``, ``score_resid_contrast`` and per line ``score_line_<line>``
        (standardised on the calibration galaxies, 0 = typical); and, for comparison, the uncalibrated mean error
        ``score_recon`` and ``score_recon_<line>``.

    Raises:
        ConfigError: no calibration given and no validation galaxy of the run in ``store``.
    """
    run = _start_pass(
        model, store, out, cfg or EmbedConfig(), model_path, model_store_meta, calibration
    )
    run.calibration = _residual_calibration(run, calibration)
    _open_partial_products(run)
    _embed_batches(run, progress)
    sums = run.sums
    columns = embed_columns(
        run.split, sums["line_sum"][:], sums["line_weight"][:], sums["stats"][:], run.lines
    )
    return _finalise(run, columns)


@dataclass
class _EmbedPass:
    """One pass of the model over a store, resumable from ``ANALYSIS_DIR/.embed.partial``."""

    store: Store
    adir: AnalysisDir
    cfg: EmbedConfig
    model: Any  # the autoencoder, on ``device`` in eval mode
    device: Any  # torch.device
    model_path: str | Path | None
    split: np.ndarray  # (N,) object: each galaxy's role in the model's training run
    stamp: dict[str, Any]  # settings an interrupted pass must share to be resumed
    done: int  # galaxies embedded by an interrupted pass (0: a fresh start)
    calibration: ResidualCalibration | None = None
    sums: Any = None  # zarr group: line_sum, line_weight (N, L); stats (N, S + L)
    groups: dict[str, Any] = field(default_factory=dict)  # product name -> zarr group

    @property
    def partial(self) -> Path:
        return self.adir.path / PARTIAL

    @property
    def lines(self) -> list[str]:
        return list(self.store.meta.lines)

    @property
    def n(self) -> int:
        return len(self.store)


def _start_pass(
    model,
    store: Store,
    out: str | Path,
    cfg: EmbedConfig,
    model_path: str | Path | None,
    model_store_meta: StoreMeta | None,
    calibration: ResidualCalibration | None,
) -> _EmbedPass:
    """Check the model against the store, move it to its device, and find the point an
    interrupted pass with the same settings reached (else start a clean partial directory)."""
    if model_store_meta is not None:
        from linecube.training.modelfile import check_compatible

        check_compatible(model_store_meta, store.meta)
    adir = AnalysisDir(out)
    adir.open_store(store.path)
    device = resolve_device(cfg.device)
    model = model.to(device).eval()
    split = run_split(model_path, store)
    partial = adir.path / PARTIAL
    stamp = {
        "store": str(Path(store.path).resolve()),
        "n": len(store),
        "model": str(model_path),
        "config": cfg.model_dump(),
        "calibration": None if calibration is None else _digest(calibration.model_dump_json()),
        "statistics": list(GALAXY_STATISTICS),  # the layout of the running ``stats`` sums
    }
    done = _resume_point(partial, stamp)
    if done == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    return _EmbedPass(
        store=store, adir=adir, cfg=cfg, model=model, device=device, model_path=model_path,
        split=split, stamp=stamp, done=done,
    )


def _residual_calibration(
    run: _EmbedPass, calibration: ResidualCalibration | None
) -> ResidualCalibration:
    """The calibration given, else the one an interrupted pass fitted, else one fitted now on
    the run's validation galaxies; kept in the partial directory until the pass finishes."""
    cal_path = run.partial / CALIBRATION
    if calibration is not None and calibration.residual != run.cfg.residual:
        raise ConfigError(
            f"the calibration given scores the {calibration.residual} residual, but residual = "
            f"{run.cfg.residual!r}: set residual = {calibration.residual!r} or let embed fit a "
            "calibration on the run's validation galaxies"
        )
    if calibration is None and cal_path.is_file():
        calibration = ResidualCalibration.model_validate_json(cal_path.read_text())
    elif calibration is None:
        val_rows = np.flatnonzero(run.split == "val")
        if len(val_rows) == 0:
            raise ConfigError(
                f"no residual calibration for {run.store.path}: it holds no validation galaxy "
                f"of the model's run ({run.model_path}); pass the calibration.json of an "
                "analysis of the training store"
            )
        calibration = fit_calibration(
            run.model, run.store, val_rows, run.device, run.cfg.batch_size,
            residual=run.cfg.residual,
        )
    if not cal_path.is_file():
        atomic_write_bytes(cal_path, calibration.model_dump_json(indent=1).encode())
    return calibration


def _open_partial_products(run: _EmbedPass) -> None:
    """Open (creating them if new) the running sums and the product groups of the partial
    directory; their arrays are created with the first batch, which gives the latent size."""
    import zarr

    n, n_lines = run.n, len(run.lines)
    run.sums = zarr.open_group(run.partial / "sums.zarr", mode="a")
    if "line_sum" not in run.sums:
        run.sums.create_array("line_sum", shape=(n, n_lines), dtype="f8", fill_value=0.0)
        run.sums.create_array("line_weight", shape=(n, n_lines), dtype="f8", fill_value=0.0)
        run.sums.create_array("stats", shape=(n, len(GALAXY_STATISTICS) + n_lines),
                              dtype="f8", fill_value=np.nan)
    products = ("latents.zarr", "spaxel_error.zarr", "anomaly_maps.zarr") + (
        ("recon.zarr",) if run.cfg.save_recon else ()
    )
    # after a complete pass, a product missing from the partial directory was already moved
    # into place by an interrupted finalisation
    run.groups = {
        name: zarr.open_group(run.partial / name, mode="a")
        for name in products
        if run.done < n or (run.partial / name).exists()
    }


def _embed_batches(run: _EmbedPass, progress: bool) -> None:
    """Embed the galaxies from ``run.done`` on, batch by batch, recording progress after each."""
    n = run.n
    sigma = psf_sigma_of(run.store, np.arange(n))
    bar = progress_bar(n, "embed", "galaxy", initial=run.done, disable=not progress)
    for start in range(run.done, n, run.cfg.batch_size):
        stop = min(start + run.cfg.batch_size, n)
        _embed_batch(run, start, stop, sigma[start:stop])
        atomic_write_bytes(
            run.partial / "progress.json", json.dumps({**run.stamp, "done": stop}).encode()
        )
        bar.update(stop - start)
    bar.close()


def _embed_batch(run: _EmbedPass, start: int, stop: int, sigma: np.ndarray) -> None:
    """Run the model on galaxies ``start:stop`` and write their rows of every product and sum.

    ``sigma`` (B,) is each galaxy's PSF width, used by the calibrated scores.
    """
    data = reconstruct(run.model, run.store, np.arange(start, stop), run.device)
    output = data["output"]
    mu = output.mu.reshape(stop - start, -1).float().cpu().numpy()
    logvar = (
        None
        if output.logvar is None
        else output.logvar.reshape(stop - start, -1).float().cpu().numpy()
    )
    err = spaxel_error(data["recon"], data["x"], run.cfg.error)
    weight = data["weight"].astype(np.float32)
    stats, anomaly_map = batch_scores(data, sigma, run.calibration, True)
    groups = run.groups
    latents = groups["latents.zarr"]
    if "mu" not in latents:
        _create_product_arrays(run, mu.shape[1], vae=logvar is not None)
    latents["mu"][start:stop] = mu
    if logvar is not None:
        latents["logvar"][start:stop] = logvar
    groups["spaxel_error.zarr"]["error"][start:stop] = np.where(weight > 0, err, np.nan)
    groups["anomaly_maps.zarr"]["score"][start:stop] = anomaly_map.astype(np.float32)
    if run.cfg.save_recon:
        groups["recon.zarr"]["recon"][start:stop] = data["recon"].astype(np.float32)
    run.sums["line_sum"][start:stop] = (err * weight).sum(axis=(2, 3))
    run.sums["line_weight"][start:stop] = weight.sum(axis=(2, 3))
    run.sums["stats"][start:stop] = np.column_stack(
        [stats[name] for name in GALAXY_STATISTICS] + [stats[f"line_{name}"] for name in run.lines]
    )


def _create_product_arrays(run: _EmbedPass, latent_dim: int, vae: bool) -> None:
    """Create the (N, ...) arrays of every product, one galaxy per map chunk."""
    n, n_lines, size = run.n, len(run.lines), run.store.meta.size
    map_chunks = (1, n_lines, size, size)
    latents = run.groups["latents.zarr"]
    latents.create_array("mu", shape=(n, latent_dim), dtype="f4")
    if vae:
        latents.create_array("logvar", shape=(n, latent_dim), dtype="f4")
    run.groups["spaxel_error.zarr"].create_array(
        "error", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
    )
    run.groups["anomaly_maps.zarr"].create_array(
        "score", shape=(n, size, size), chunks=(1, size, size), dtype="f4"
    )
    if run.cfg.save_recon:
        run.groups["recon.zarr"].create_array(
            "recon", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
        )


def spaxel_error(recon: np.ndarray, x: np.ndarray, metric: str) -> np.ndarray:
    """(B, L, H, W) float32 per-spaxel error: ``l1`` = |x - recon|, ``mse`` = (x - recon)^2."""
    diff = recon - x
    return (np.abs(diff) if metric == "l1" else diff**2).astype(np.float32)


def embed_columns(
    split: np.ndarray,
    line_sum: np.ndarray,
    line_weight: np.ndarray,
    stats: np.ndarray,
    lines: list[str],
) -> dict[str, np.ndarray]:
    """The catalogue columns of an embedding.

    Args:
        split: (N,) each galaxy's role in the model's training run.
        line_sum: (N, L) weighted sum of the per-spaxel error of each line.
        line_weight: (N, L) sum of the spaxel weights of each line.
        stats: (N, S + L) calibrated residual scores: the S ``GALAXY_STATISTICS``, then one
            per line.
        lines: the L line names.

    Returns:
        ``split``, ``score_resid_<statistic>`` (peak, mean, contrast), ``score_recon``
        (weighted mean error over all lines), ``score_line_<line>`` and ``score_recon_<line>``; NaN where a
        galaxy has no weight.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        per_line = line_sum / line_weight
        total = line_sum.sum(axis=1) / line_weight.sum(axis=1)
    n_stats = len(GALAXY_STATISTICS)
    columns = {"split": split}
    columns.update({f"score_resid_{name}": stats[:, i] for i, name in enumerate(GALAXY_STATISTICS)})
    columns["score_recon"] = total
    columns.update({f"score_line_{name}": stats[:, n_stats + i] for i, name in enumerate(lines)})
    columns.update({f"score_recon_{name}": per_line[:, i] for i, name in enumerate(lines)})
    return columns


def _finalise(run: _EmbedPass, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Move the products into the analysis directory, write the catalogue columns (dropping
    those of a previous embedding), record the step and remove the partial directory."""
    import zarr

    adir, partial = run.adir, run.partial
    for name in run.groups:
        replace_dir(partial / name, adir.path / name)
    (partial / CALIBRATION).replace(adir.path / CALIBRATION)
    if not run.cfg.save_recon and (adir.path / "recon.zarr").exists():
        shutil.rmtree(adir.path / "recon.zarr")  # stale reconstructions of another model
    # scores and coordinates derived from a previous embedding would no longer match
    stale = [
        c
        for c in adir.catalogue(run.store).columns
        if c.startswith(("score_", "pct_", "umap_")) or c in ("rank", "flag_anomaly", "split")
    ]
    cat = adir.write_columns(columns, run.store, drop=stale)
    adir.forget_steps(["score", "umap", "evaluate"])
    latents = adir.path / "latents.zarr"
    dim = zarr.open_group(latents, mode="r")["mu"].shape[1] if run.n else 0
    adir.update_info(
        "embed",
        run.cfg.model_dump(),
        model=None if run.model_path is None else str(run.model_path),
        latent_dim=int(dim),
        vae=(latents / "logvar").exists(),
        calibration=f"{CALIBRATION}: {run.calibration.residual} residual, fitted on "
        f"{run.calibration.n_galaxies} galaxies",
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
