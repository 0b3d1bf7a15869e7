"""Summaries and quick-look figures of input files (``linecube inspect``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linecube.io.galaxy import Galaxy
from linecube.io.readers import read_galaxies, reader_for
from linecube.preprocess.transform import stretch


@dataclass
class FileSummary:
    """What ``inspect`` reports for one galaxy of a file.

    Attributes:
        galaxy: the galaxy read with every catalogued line the file holds.
        table: one row per line: ``line``, ``mask_fraction`` (not good), ``median_snr``
            (flux * sqrt(ivar) over good spaxels), ``n_good``.
    """

    galaxy: Galaxy
    table: pd.DataFrame = field(repr=False)


def line_table(galaxy: Galaxy) -> pd.DataFrame:
    """Per-line mask fraction and median S/N of a galaxy."""
    rows = []
    for i, name in enumerate(galaxy.lines):
        good = galaxy.good[i]
        snr = galaxy.flux[i][good] * np.sqrt(galaxy.ivar[i][good])
        rows.append({"line": name, "mask_fraction": float(1 - good.mean()),
                     "median_snr": float(np.median(snr)) if snr.size else float("nan"),
                     "n_good": int(good.sum())})
    return pd.DataFrame(rows)


def inspect_file(path: str | Path, extension: str = "GFLUX", mask="donotuse") -> list[FileSummary]:
    """Summarise every galaxy of a MAPS or MMU file, with all the lines it holds.

    Files with the CRITICAL bit are read anyway (their ``dapqual``/``drp3qual`` are shown).
    """
    lines = reader_for(path).lines(Path(path), extension)
    galaxies = read_galaxies(path, lines=lines, extension=extension, mask=mask,
                             allow_critical=True)
    return [FileSummary(gal, line_table(gal)) for gal in galaxies]


def plot_line_grid(maps: np.ndarray, good: np.ndarray, lines: tuple[str, ...] | list[str],
                   out: str | Path, title: str = "", kind: str = "asinh",
                   softening: float = 0.01, stretched: bool = False) -> Path:
    """Save a grid of line maps: one panel per line, masked spaxels in grey.

    Args:
        maps: (L, H, W) physical flux, or already-stretched values if ``stretched``.
        good: (L, H, W) bool, False where masked.
        lines: panel titles.
        out: PNG path.
        title: figure title.
        kind: ``asinh`` or ``log`` stretch of flux / (99th percentile of good flux).
        softening: the stretch softening.
        stretched: ``maps`` are network values already; shown as they are.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(maps, dtype=np.float64)
    good = np.asarray(good, dtype=bool)
    if not stretched:
        scale = np.percentile(values[good], 99) if good.any() else 1.0
        scale = scale if scale > 0 else 1.0
        u = values / scale
        if kind == "log":
            good = good & (u > -softening)
        values = stretch(np.where(good, u, 0.0), kind, softening)
    shown = np.ma.masked_array(values, mask=~good)
    vmin = float(shown.min()) if good.any() else 0.0
    vmax = float(shown.max()) if good.any() else 1.0
    n = len(lines)
    cols = min(n, 5)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols + 1.0, 2.3 * rows + 0.5),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("magma").with_extremes(bad="0.75")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for i, name in enumerate(lines):
        ax = axes.ravel()[i]
        im = ax.imshow(shown[i], origin="lower", cmap=cmap, vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    label = "network units" if stretched else f"{kind}(flux / p99)"
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    fig.suptitle(f"{title}  (grey: masked)" if title else "grey: masked", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
