"""Latent vectors, reconstructions and reconstruction errors of every galaxy of a store.

The model is run once over the store; everything that needs the model is computed in that
pass: latents (``latents.zarr``), optional reconstructions (``recon.zarr``), per-spaxel errors
(``spaxel_error.zarr``) and the per-galaxy and per-line reconstruction scores of the catalogue.
The pass resumes after a kill: finished batches are kept in ``ANALYSIS_DIR/.embed.partial``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir, replace_dir
from linecube.config import StrictModel
from linecube.store.store import Store, StoreMeta, atomic_write_bytes

PARTIAL = ".embed.partial"


class EmbedConfig(StrictModel):
    """Settings of ``linecube embed``.

    Attributes:
        batch_size: galaxies per forward pass.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        save_recon: also write ``recon.zarr`` (N, L, H, W), normalised units.
        error: per-spaxel error, ``"l1"`` = |x - recon| or ``"mse"`` = (x - recon)^2.
    """

    batch_size: int = Field(32, gt=0)
    device: str = "auto"
    save_recon: bool = False
    error: Literal["l1", "mse"] = "l1"


def resolve_device(name: str):
    """The torch device for ``name`` (``"auto"`` picks CUDA when available)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def recon_score_columns(lines: list[str] | tuple[str, ...]) -> list[str]:
    """Catalogue columns written by :func:`embed`: ``score_recon`` and one per line."""
    return ["score_recon"] + [f"score_recon_{name}" for name in lines]


def embed(
    model,
    store: Store,
    out: str | Path,
    cfg: EmbedConfig | None = None,
    model_path: str | Path | None = None,
    model_store_meta: StoreMeta | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Embed every galaxy of ``store`` and write the products into the analysis directory.

    Args:
        model: an autoencoder with ``forward(x (B, L, 1, H, W)) -> ModelOutput(recon, mu,
            logvar)``; spatial latents (B, C, h, w) are flattened to (B, C*h*w).
        store: the store to embed (all committed galaxies, in store order).
        out: the analysis directory.
        cfg: batch size, device, optional reconstructions, error metric.
        model_path: recorded in ``analysis.json``.
        model_store_meta: the store metadata the model was trained on; when given, a store
            that disagrees (lines, size, normalisation) raises CompatibilityError.
        progress: show a progress bar.

    Returns:
        The catalogue with ``score_recon`` (mean error over valid spaxels of all lines) and
        ``score_recon_<line>`` (mean over the valid spaxels of that line).
    """
    import torch
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

    partial = adir.path / PARTIAL
    stamp = {
        "store": str(Path(store.path).resolve()),
        "n": n,
        "model": str(model_path),
        "config": cfg.model_dump(),
    }
    done = _resume_point(partial, stamp)
    if done == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    map_chunks = (1, n_lines, size, size)
    sums = zarr.open_group(partial / "sums.zarr", mode="a")
    if "line_sum" not in sums:
        sums.create_array("line_sum", shape=(n, n_lines), dtype="f8", fill_value=0.0)
        sums.create_array("line_weight", shape=(n, n_lines), dtype="f8", fill_value=0.0)
    products = ("latents.zarr", "spaxel_error.zarr") + (("recon.zarr",) if cfg.save_recon else ())
    # after a complete pass, a product missing from the partial directory was already moved
    # into place by an interrupted finalisation
    groups = {
        name: zarr.open_group(partial / name, mode="a")
        for name in products
        if done < n or (partial / name).exists()
    }

    bar = tqdm(total=n, initial=done, disable=not progress, desc="embed", unit="galaxy")
    with torch.inference_mode():
        for start in range(done, n, cfg.batch_size):
            stop = min(start + cfg.batch_size, n)
            data = store.read(slice(start, stop))
            x = torch.from_numpy(data["x"]).to(device)
            output = model(x.unsqueeze(2))
            recon = output.recon.squeeze(2).float()
            mu = output.mu.reshape(stop - start, -1).float().cpu().numpy()
            logvar = (
                None
                if output.logvar is None
                else output.logvar.reshape(stop - start, -1).float().cpu().numpy()
            )
            diff = recon - x
            err = (diff.abs() if cfg.error == "l1" else diff.square()).cpu().numpy()
            weight = data["weight"].astype(np.float32)
            latents = groups["latents.zarr"]
            if "mu" not in latents:
                latents.create_array("mu", shape=(n, mu.shape[1]), dtype="f4")
                if logvar is not None:
                    latents.create_array("logvar", shape=(n, mu.shape[1]), dtype="f4")
                groups["spaxel_error.zarr"].create_array(
                    "error", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
                )
                if cfg.save_recon:
                    groups["recon.zarr"].create_array(
                        "recon", shape=(n, n_lines, size, size), chunks=map_chunks, dtype="f4"
                    )
            latents["mu"][start:stop] = mu
            if logvar is not None:
                latents["logvar"][start:stop] = logvar
            groups["spaxel_error.zarr"]["error"][start:stop] = np.where(weight > 0, err, np.nan)
            if cfg.save_recon:
                groups["recon.zarr"]["recon"][start:stop] = recon.cpu().numpy()
            sums["line_sum"][start:stop] = (err * weight).sum(axis=(2, 3))
            sums["line_weight"][start:stop] = weight.sum(axis=(2, 3))
            atomic_write_bytes(
                partial / "progress.json", json.dumps({**stamp, "done": stop}).encode()
            )
            bar.update(stop - start)
    bar.close()

    line_sum, line_weight = sums["line_sum"][:], sums["line_weight"][:]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_line = line_sum / line_weight
        total = line_sum.sum(axis=1) / line_weight.sum(axis=1)
    columns = {"score_recon": total}
    columns.update({f"score_recon_{name}": per_line[:, i] for i, name in enumerate(lines)})
    for name in groups:
        replace_dir(partial / name, adir.path / name)
    if not cfg.save_recon and (adir.path / "recon.zarr").exists():
        shutil.rmtree(adir.path / "recon.zarr")  # stale reconstructions of another model
    # scores and coordinates derived from a previous embedding would no longer match
    stale = [
        c
        for c in adir.catalogue(store).columns
        if c.startswith(("score_", "pct_", "umap_")) or c in ("rank", "flag_anomaly")
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
    )
    shutil.rmtree(partial, ignore_errors=True)
    return cat


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
