"""Matplotlib figures of an analysis: score distributions, UMAP views and per-galaxy panels.

Every function returns a ``matplotlib.figure.Figure`` (no pyplot state), and ``save_figure``
writes it as PNG and PDF. Display scaling of maps lives in ``map_limits`` so that the report
and the explorer show the same colours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from linecube.viz.results import BPT_CLASSES, AnalysisResults, GalaxyMaps

MAX_CLASSES = 9  # categories beyond the most frequent ones are drawn as "other"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
BPT_COLOUR = {"SF": "#2c7bb6", "composite": "#abd9e9", "Seyfert": "#d7191c", "LINER": "#fdae61",
              "ambiguous": "#984ea3", "invalid": "#bdbdbd", "no_data": "#ececec"}
BPT_COLOURS = tuple(BPT_COLOUR[name] for name in BPT_CLASSES)  # in code order
MASKED_COLOUR = "#d9d9d9"


def save_figure(fig: Figure, stem: str | Path, dpi: int = 110) -> list[Path]:
    """Write ``fig`` to ``stem.png`` and ``stem.pdf``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, dpi=dpi, format=path.suffix[1:], bbox_inches="tight")
        tmp.replace(path)
    return paths


def top_categories(values: pd.Series, limit: int = MAX_CLASSES) -> pd.Series:
    """``values`` with all but the ``limit`` most frequent categories replaced by ``"other"``."""
    keep = values.value_counts().index[:limit]
    return values.where(values.isin(keep), "other")


def class_colours(categories: list[str]) -> dict[str, str]:
    """A stable colour per category (BPT classes get their conventional colours)."""
    if set(categories) <= set(BPT_COLOUR) | {"none", "other"}:
        return {c: BPT_COLOUR.get(c, PALETTE[-1]) for c in categories}
    return {c: PALETTE[-1] if c == "other" else PALETTE[i % (len(PALETTE) - 1)]
            for i, c in enumerate(categories)}


def map_limits(maps: GalaxyMaps) -> dict[str, np.ndarray | float]:
    """Colour limits shared by the report and the explorer.

    Returns:
        ``lo``/``hi``: (L,) per-line limits of input and reconstruction (1st / 99.5th percentile
        of valid input spaxels); ``res``: symmetric residual limit over all lines;
        ``err``: upper limit of the spaxel error.
    """
    n_lines = maps.x.shape[0]
    lo, hi = np.zeros(n_lines), np.ones(n_lines)
    for j in range(n_lines):
        valid = maps.x[j][maps.weight[j]]
        if valid.size:
            lo[j], hi[j] = np.percentile(valid, [1, 99.5])
            if hi[j] <= lo[j]:
                hi[j] = lo[j] + 1e-6
    res = maps.residual
    res_lim = _upper(np.abs(res[np.isfinite(res)])) if res is not None else 1.0
    err_lim = _upper(maps.error[maps.weight]) if maps.error is not None else 1.0
    return {"lo": lo, "hi": hi, "res": res_lim, "err": err_lim}


def _upper(values: np.ndarray) -> float:
    """99th percentile of ``values`` (at least a tiny positive number)."""
    return float(max(np.percentile(values, 99), 1e-6)) if values.size else 1.0


def score_distributions(results: AnalysisResults, by: str | None = None) -> Figure:
    """Histograms of each overall score, stacked by the classes of ``by``.

    ``by`` defaults to the first label column, else ``bpt_class``.
    """
    cat = results.catalogue
    scores = results.overall_score_columns
    if by is None:
        by = (results.label_columns or [c for c in ("bpt_class",) if c in cat.columns] or [None])[0]
    classes = top_categories(results.class_values(by)) if by else pd.Series(["all"] * len(cat))
    order = list(classes.value_counts().index)
    colours = class_colours(order)
    fig = Figure(figsize=(3.4 * len(scores), 3.0), layout="constrained")
    for i, col in enumerate(scores):
        ax = fig.add_subplot(1, len(scores), i + 1)
        values = cat[col].to_numpy(dtype=float)
        finite = np.isfinite(values)
        bins = np.histogram_bin_edges(values[finite], bins=30) if finite.any() else 10
        ax.hist([values[finite & (classes == c).to_numpy()] for c in order], bins=bins,
                stacked=True, color=[colours[c] for c in order], label=order)
        ax.set_xlabel(col)
        ax.set_ylabel("galaxies" if i == 0 else "")
    if by:
        fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside right upper",
                   title=by, fontsize="small")
    fig.suptitle("Anomaly score distributions (higher = more anomalous)")
    return fig


def umap_figure(results: AnalysisResults) -> Figure:
    """UMAP of the latents coloured by combined score percentile, BPT class and each label."""
    cat = results.catalogue
    colour_by = ["score"] + [c for c in ("bpt_class",) if c in cat.columns] + results.label_columns
    fig = Figure(figsize=(4.3 * len(colour_by), 4.0), layout="constrained")
    size = float(np.clip(3000 / max(len(cat), 1), 0.5, 30))
    x, y = cat["umap_x"].to_numpy(), cat["umap_y"].to_numpy()
    for i, col in enumerate(colour_by):
        ax = fig.add_subplot(1, len(colour_by), i + 1)
        if col == "score":
            score = results.percentile("score_combined")
            order = np.argsort(score)
            sc = ax.scatter(x[order], y[order], c=score[order], s=size, cmap="viridis",
                            vmin=0, vmax=100, linewidths=0)
            fig.colorbar(sc, ax=ax, label="combined score percentile")
            ax.set_title("anomaly score")
        else:
            classes = top_categories(results.class_values(col))
            colours = class_colours(list(classes.value_counts().index))
            for name, colour in colours.items():
                sel = (classes == name).to_numpy()
                ax.scatter(x[sel], y[sel], s=size, color=colour, label=name, linewidths=0)
            ax.legend(fontsize="small", markerscale=max(1.0, 12 / size) ** 0.5, loc="best")
            ax.set_title(col)
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_aspect("equal", adjustable="datalim")
    return fig


def galaxy_figure(results: AnalysisResults, row: int) -> Figure:
    """Input, reconstruction, residual and error maps per line, the BPT map and per-line errors."""
    maps = results.galaxy(row)
    lim = map_limits(maps)
    rows = [("input", maps.x), ("reconstruction", maps.recon), ("residual", maps.residual),
            ("spaxel error", maps.error)]
    rows = [(name, data) for name, data in rows if data is not None]
    n_lines = len(results.lines)
    width = max(1.15 * n_lines + 0.8, 8.0)
    row_height = 0.93 * (width - 0.8) / n_lines
    fig = Figure(figsize=(width, row_height * len(rows) + 3.6))
    outer = GridSpec(2, 1, figure=fig, height_ratios=[row_height * len(rows), 3.0], hspace=0.12)
    grid = outer[0].subgridspec(len(rows), n_lines, hspace=0.06, wspace=0.05)
    for i, (name, data) in enumerate(rows):
        for j, line in enumerate(results.lines):
            ax = fig.add_subplot(grid[i, j])
            image = np.where(maps.weight[j], data[j], np.nan)
            if name == "residual":
                kw = {"cmap": _cmap("RdBu_r"), "vmin": -lim["res"], "vmax": lim["res"]}
            elif name == "spaxel error":
                kw = {"cmap": _cmap("magma"), "vmin": 0, "vmax": lim["err"]}
            else:
                kw = {"cmap": _cmap("viridis"), "vmin": lim["lo"][j], "vmax": lim["hi"][j]}
            ax.imshow(image, origin="lower", interpolation="nearest", **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(line, fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    bottom = outer[1].subgridspec(1, 3, width_ratios=[3.0, 1.1, width - 4.1])
    ax_bpt = fig.add_subplot(bottom[0, 0])
    if maps.bpt is not None:
        codes = np.where((maps.bpt >= 0) & (maps.bpt < len(BPT_CLASSES)), maps.bpt, np.nan)
        ax_bpt.imshow(codes, origin="lower", interpolation="nearest", vmin=-0.5,
                      vmax=len(BPT_CLASSES) - 0.5, cmap=_cmap(ListedColormap(BPT_COLOURS)))
        handles = [ax_bpt.scatter([], [], color=c, marker="s", label=n)
                   for n, c in zip(BPT_CLASSES, BPT_COLOURS, strict=True)]
        ax_bpt.legend(handles=handles, fontsize=6, ncol=3, loc="upper center",
                      bbox_to_anchor=(0.5, -0.02), frameon=False, handletextpad=0.1,
                      columnspacing=0.6)
    else:
        ax_bpt.text(0.5, 0.5, "no BPT map", ha="center", va="center", transform=ax_bpt.transAxes)
    ax_bpt.set_title("BPT map", fontsize=9)
    ax_bpt.set_xticks([])
    ax_bpt.set_yticks([])
    ax_err = fig.add_subplot(bottom[0, 2])
    pct = results.line_percentiles[row]
    bars = ax_err.bar(range(n_lines), np.nan_to_num(pct), color=[
        "#d62728" if p >= 95 else "#fdae61" if p >= 80 else "#9e9e9e" for p in pct])
    ax_err.axhline(50, color="k", lw=0.6, ls=":")
    ax_err.set_xticks(range(n_lines), results.lines, rotation=60, fontsize=7, ha="right")
    ax_err.set_ylim(0, 109)
    ax_err.set_yticks(range(0, 101, 20))
    ax_err.set_ylabel("per-line error percentile", fontsize=8)
    ax_err.set_title("per-line reconstruction error vs. all galaxies", fontsize=9)
    for bar, p in zip(bars, pct, strict=True):
        if p >= 80:
            ax_err.annotate(f"{p:.0f}", (bar.get_x() + bar.get_width() / 2, p), ha="center",
                            va="bottom", fontsize=6)
    info = results.catalogue.iloc[row]
    fig.suptitle(f"{info['plateifu']}  (rank {int(info['rank'])}, combined score "
                 f"{info['score_combined']:.3g})", fontsize=11)
    return fig


def _cmap(base):
    """A copy of colormap ``base`` that draws NaN (masked spaxels) in light grey."""
    cmap = colormaps[base] if isinstance(base, str) else base
    return cmap.with_extremes(bad=MASKED_COLOUR)
