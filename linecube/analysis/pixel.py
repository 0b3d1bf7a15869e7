"""Per-spaxel evaluation: anomaly maps against the simulator's truth maps (pixel AUROC).

The simulator writes one truth map per observation on the native MAPS grid
(``SURVEY/truth_maps.fits``, codes of ``linecube.simulate.galaxy.SPAXEL_CODES``). The store's
maps are the MAPS maps centred on the IFU centre and cropped / padded to ``size``, or resampled
to ``pixel_scale``; :func:`truth_on_grid` puts a truth map on that grid with the same
geometry. :func:`pixel_auroc` pools the valid spaxels of all galaxies, as MVTec AD does for
images, overall and per kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from linecube.errors import InputFileError
from linecube.preprocess.transform import NATIVE_SCALE, crop_or_pad, overlap_matrix, window_offset

ANOMALY_MAPS = "anomaly_maps.zarr"
NORMAL_KINDS = ("star_forming", "retired")


def truth_on_grid(codes: np.ndarray, center: tuple[float, float], size: int,
                  pixel_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A native (n, n) truth map on the store grid: ``(anomalous, covered)``, (size, size) bool.

    Without resampling the window is cut as ingest cuts it. With ``pixel_scale`` an output pixel
    is covered when truth-covered spaxels fill at least half of it, and anomalous when anomalous
    spaxels fill at least half of its covered area.
    """
    from linecube.simulate.galaxy import ANOMALOUS_CODES

    anomalous = np.isin(codes, ANOMALOUS_CODES)
    covered = codes >= 0
    factor = 1.0 if pixel_scale is None else pixel_scale / NATIVE_SCALE
    if factor == 1.0:
        offset = window_offset(center, size)
        stack = crop_or_pad(np.stack([anomalous, covered]), offset, size, fill=False)
        return stack[0], stack[1]
    ry = overlap_matrix(codes.shape[0], center[0], size, factor)
    rx = overlap_matrix(codes.shape[1], center[1], size, factor)
    cov_area = ry @ covered.astype(np.float64) @ rx.T
    anom_area = ry @ anomalous.astype(np.float64) @ rx.T
    cov = cov_area >= 0.5 * factor * factor - 1e-9
    return cov & (anom_area >= 0.5 * cov_area), cov


def store_truth(store, truth_maps: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth of every store galaxy on the store grid, matched on PLATEIFU.

    Returns:
        ``(anomalous, covered, kinds)``: (N, size, size) bool arrays and (N,) class names
        (``""`` and nothing covered for a galaxy the truth maps do not list).
    """
    from linecube.simulate.survey import read_truth_maps

    truth = read_truth_maps(truth_maps)
    where = {p: i for i, p in enumerate(truth["plateifu"])}
    size = store.meta.size
    scale = store.meta.preprocess.get("pixel_scale")
    cat = store.catalogue
    n = len(cat)
    anomalous = np.zeros((n, size, size), bool)
    covered = np.zeros((n, size, size), bool)
    kinds = np.full(n, "", dtype=object)
    for row, (plateifu, cy, cx) in enumerate(zip(cat["plateifu"], cat["center_y"],
                                                 cat["center_x"], strict=True)):
        i = where.get(str(plateifu))
        if i is None:
            continue
        anomalous[row], covered[row] = truth_on_grid(truth["codes"][i], (cy, cx), size, scale)
        kinds[row] = truth["class"][i]
    return anomalous, covered, kinds.astype(str)


def pixel_auroc(anomaly_maps: np.ndarray, truth: np.ndarray, valid: np.ndarray,
                kinds: np.ndarray, normal: tuple[str, ...] = NORMAL_KINDS) -> pd.DataFrame:
    """Pixel-level AUROC of (N, H, W) anomaly maps (higher = more anomalous) against (N, H, W)
    boolean truth, pooling the ``valid`` spaxels of all galaxies.

    One row ``all`` (every galaxy) and one per non-normal kind (that kind's galaxies plus the
    normal ones), with the galaxies, spaxels and anomalous spaxels counted; AUROC is NaN when
    no spaxel (or every spaxel) is anomalous.
    """
    from linecube.analysis.metrics import auroc

    valid = valid & np.isfinite(anomaly_maps)
    kinds = np.asarray(kinds).astype(str)
    groups = [("all", np.ones(len(kinds), bool))]
    groups += [(k, np.isin(kinds, (k, *normal))) for k in sorted(set(kinds) - set(normal))
               if k]
    rows = []
    for name, gal in groups:
        sel = valid & gal[:, None, None]
        score, label = anomaly_maps[sel].astype(np.float64), truth[sel].astype(np.float64)
        value = float(auroc(score[None], label[None])[0]) if len(score) else float("nan")
        rows.append({"kind": name, "n_galaxies": int((gal & sel.any(axis=(1, 2))).sum()),
                     "n_spaxels": int(sel.sum()), "n_anomalous": int(label.sum()),
                     "pixel_auroc": value})
    return pd.DataFrame(rows)


def read_anomaly_maps(analysis_dir: str | Path) -> np.ndarray:
    """The (N, H, W) per-spaxel anomaly maps of an analysis directory (NaN: no valid spaxel)."""
    import zarr

    path = Path(analysis_dir) / ANOMALY_MAPS
    if not path.exists():
        raise InputFileError(path, "no per-spaxel anomaly maps; run linecube embed with a "
                                   "calibrated model first")
    return np.asarray(zarr.open_group(path, mode="r")["score"][:], dtype=np.float32)


def pixel_evaluation(analysis_dir: str | Path, store, truth_maps: str | Path) -> pd.DataFrame:
    """Pixel AUROC of ``ANALYSIS_DIR/anomaly_maps.zarr`` against a survey's truth maps."""
    maps = read_anomaly_maps(analysis_dir)
    anomalous, covered, kinds = store_truth(store, truth_maps)
    if maps.shape != anomalous.shape:
        raise InputFileError(Path(analysis_dir) / ANOMALY_MAPS,
                             f"anomaly maps {maps.shape} do not match the store "
                             f"{anomalous.shape}")
    return pixel_auroc(maps, anomalous, covered, kinds)
