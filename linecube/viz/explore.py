"""An interactive, offline explorer page of an analysis (plain JS + canvas, no network).

``build_explorer(analysis_dir, out)`` writes::

    OUT/
      index.html, explorer.js, explorer.css   the page (static; open it or serve it)
      data.js              ``window.LINECUBE_DATA``: IDs, UMAP, scores, classes, neighbours
      thumbs/sheet_NNN.png hover thumbnails, ``SHEET_COLS`` x ``SHEET_COLS`` tiles per sheet
      galaxies/ROW.png     per-galaxy panel: rows input / reconstruction / residual / error,
                           one column per line, and the BPT map after the last line (maps
                           block-averaged to at most ``panel_size`` pixels)

Strings from files reach the page only through ``data.js`` and are inserted with
``textContent``, never as HTML. ``serve`` serves the folder on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import shutil
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from PIL import Image

from linecube import __version__
from linecube.analysis.similar import NeighbourIndex
from linecube.errors import ConfigError, InputFileError
from linecube.outdir import claim_output_dir
from linecube.progress import progress_bar
from linecube.viz.figures import (
    BPT_COLOURS,
    MASKED_COLOUR,
    class_colours,
    map_limits,
    top_categories,
)
from linecube.viz.results import BPT_CLASSES, AnalysisResults, GalaxyMaps

TEMPLATES = Path(__file__).parent / "templates"
STATIC_FILES = {"explorer.html": "index.html", "explorer.js": "explorer.js",
                "explorer.css": "explorer.css"}  # template -> page file
SHEET_COLS = 32  # thumbnails per sheet row and column (1024 per sheet)
BLOCK = 64  # galaxies read from disk at a time
log = logging.getLogger(__name__)


def build_explorer(analysis_dir: str | Path, out: str | Path, *, k: int = 8,
                   labels: str | Path | None = None, label_columns: list[str] | None = None,
                   thumb_size: int = 48, thumb_line: str | None = None,
                   panel_size: int = 32, title: str = "linecube explorer") -> Path:
    """Write the explorer page of ``analysis_dir`` into ``out``.

    Args:
        analysis_dir: an analysis directory with ``umap_x``/``umap_y`` and ``latents.zarr``.
        out: the page directory: new, empty, or an earlier explorer (its files are replaced);
            anything else is refused (:func:`linecube.outdir.claim_output_dir`).
        k: nearest neighbours (in latent space) listed for each galaxy.
        labels: optional label table whose classes can colour and filter the scatter; see
            :func:`linecube.viz.results.read_labels`.
        label_columns: the columns of ``labels`` to use (default: class, label, is_agn or the
            AGN VAC flags present).
        thumb_size: side of a hover thumbnail in pixels.
        thumb_line: the line shown in thumbnails (default ``Ha-6564`` if present, else the first).
        panel_size: largest side in pixels of a map in the galaxy panels; larger maps are
            block-averaged by an integer factor (the report keeps full resolution).
        title: the page title.

    Returns:
        The path of ``index.html``.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    results = AnalysisResults.open(analysis_dir, labels, label_columns)
    if not results.has_umap:
        raise InputFileError(results.path / "catalogue.parquet",
                             "no umap_x/umap_y columns; run `linecube umap` first")
    if thumb_line is None:
        thumb_line = "Ha-6564" if "Ha-6564" in results.lines else results.lines[0]
    if panel_size < 4:
        raise ConfigError(f"panel_size must be at least 4 pixels, got {panel_size}")
    if thumb_line not in results.lines:
        raise ConfigError(f"thumb_line {thumb_line!r} is not one of the lines {results.lines}")
    out = claim_output_dir(out, "explorer")
    for folder in ("galaxies", "thumbs"):  # images of an earlier build may be stale
        shutil.rmtree(out / folder, ignore_errors=True)
    (out / "galaxies").mkdir(parents=True, exist_ok=True)
    (out / "thumbs").mkdir(exist_ok=True)
    neighbours, distances = nearest_neighbours(results.latents(), k)
    sheets = _write_images(results, out, thumb_size, results.lines.index(thumb_line),
                           panel_size)
    data = _page_data(results, neighbours, distances, sheets, thumb_size, thumb_line, title)
    payload = "window.LINECUBE_DATA = " + json.dumps(data, separators=(",", ":")) + ";\n"
    write_page_file(out / "data.js", payload.encode("utf-8"))
    for template, name in STATIC_FILES.items():
        shutil.copyfile(TEMPLATES / template, out / name)
    return out / "index.html"


def nearest_neighbours(latents: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other galaxies of each galaxy (Euclidean, latent space).

    Uses the index of ``linecube similar`` (:class:`linecube.analysis.similar.NeighbourIndex`).

    Args:
        latents: (N, D) latent means.
        k: neighbours per galaxy (capped at N - 1).

    Returns:
        ``(index, distance)``, both (N, k), nearest first.
    """
    n = len(latents)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), int), np.zeros((n, 0))
    dist, idx = NeighbourIndex(latents).query(latents, k + 1)
    # Drop each galaxy itself (not always column 0 when duplicates tie at distance 0).
    keep = idx != np.arange(n)[:, None]
    keep[keep.sum(1) > k, -1] = False
    return idx[keep].reshape(n, k), dist[keep].reshape(n, k)


# One 256-colour palette for every panel: white, masked grey, BPT classes and three colour maps.
LEVELS = 80
_BASE = {"white": 0, "masked": 1, "bpt": 2, "viridis": 8, "RdBu_r": 8 + LEVELS,
         "magma": 8 + 2 * LEVELS}


def _palette() -> list[int]:
    colours = [(1.0, 1.0, 1.0), to_rgb(MASKED_COLOUR)]
    colours += [to_rgb(c) for c in BPT_COLOURS]
    for name in ("viridis", "RdBu_r", "magma"):
        colours += [tuple(c[:3]) for c in colormaps[name](np.linspace(0, 1, LEVELS))]
    flat = [round(255 * float(v)) for rgb in colours for v in rgb]
    return flat + [0] * (768 - len(flat))


PALETTE = _palette()


def _indices(values: np.ndarray, cmap: str, lo: float, hi: float, valid: np.ndarray
             ) -> np.ndarray:
    """(H, W) values -> (H, W) palette indices of ``cmap``, masked spaxels grey, y axis up."""
    norm = np.clip(np.nan_to_num((values - lo) / (hi - lo)), 0, 1)
    out = (_BASE[cmap] + np.round(norm * (LEVELS - 1))).astype(np.uint8)
    out[~valid] = _BASE["masked"]
    return out[::-1]


def downsample(maps: GalaxyMaps, factor: int) -> GalaxyMaps:
    """Block-average the maps of a galaxy by ``factor`` (for display only).

    Each output spaxel is the mean of the valid spaxels of its ``factor`` x ``factor`` block,
    and it is valid if any of them is. BPT codes take the block's first spaxel. Edges that do
    not fill a block are dropped.
    """
    if factor <= 1:
        return maps
    n_lines, h, w = maps.x.shape
    h, w = h // factor * factor, w // factor * factor
    shape = (n_lines, h // factor, factor, w // factor, factor)
    weight = maps.weight[:, :h, :w].reshape(shape)
    count = weight.sum(axis=(2, 4))

    def mean(data):
        if data is None:
            return None
        total = np.where(weight, data[:, :h, :w].reshape(shape), 0).sum(axis=(2, 4))
        return (total / np.maximum(count, 1)).astype(np.float32)

    bpt = None if maps.bpt is None else maps.bpt[:h:factor, :w:factor]
    return GalaxyMaps(x=mean(maps.x), weight=count > 0, recon=mean(maps.recon),
                      error=mean(maps.error), bpt=bpt)


def panel_image(maps: GalaxyMaps, lim: dict | None = None) -> Image.Image:
    """Palette image of a galaxy: rows input / recon / residual / error, one column per line
    and one more for the BPT map (first row), tiles separated by 1 white pixel.

    ``lim`` is ``map_limits(maps)`` when the caller has it already.
    """
    lim = map_limits(maps) if lim is None else lim
    n_lines, h, w = maps.x.shape
    rows = [("input", maps.x), ("recon", maps.recon), ("residual", maps.residual),
            ("error", maps.error)]
    rows = [(name, data) for name, data in rows if data is not None]
    image = np.zeros((len(rows) * (h + 1) - 1, (n_lines + 1) * (w + 1) - 1), np.uint8)
    for i, (name, data) in enumerate(rows):
        for j in range(n_lines):
            valid = maps.weight[j] & np.isfinite(data[j])
            if name == "residual":
                tile = _indices(data[j], "RdBu_r", -lim["res"], lim["res"], valid)
            elif name == "error":
                tile = _indices(data[j], "magma", 0, lim["err"], valid)
            else:
                tile = _indices(data[j], "viridis", lim["lo"][j], lim["hi"][j], valid)
            image[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = tile
    if maps.bpt is not None:
        valid = (maps.bpt >= 0) & (maps.bpt < len(BPT_CLASSES))
        tile = np.where(valid, _BASE["bpt"] + np.clip(maps.bpt, 0, len(BPT_CLASSES) - 1),
                        _BASE["masked"]).astype(np.uint8)[::-1]
        image[:h, n_lines * (w + 1):n_lines * (w + 1) + w] = tile
    out = Image.fromarray(image, mode="P")
    out.putpalette(PALETTE)
    return out


def _write_images(results: AnalysisResults, out: Path, thumb_size: int, thumb_index: int,
                  panel_size: int) -> list[str]:
    """Write ``galaxies/ROW.png`` and the thumbnail sheets; returns the sheet paths."""
    n = len(results)
    per_sheet = SHEET_COLS * SHEET_COLS
    sheet_names = []
    sheet = None
    with progress_bar(n, "explorer images", "galaxy", disable=n < 500) as bar:
        for start in range(0, n, BLOCK):
            for row, maps in enumerate(results.galaxies(start, min(start + BLOCK, n)), start):
                lim = map_limits(maps)
                factor = -(-maps.x.shape[-1] // panel_size)  # ceil: tiles of <= panel_size px
                _save_png(panel_image(downsample(maps, factor), lim),
                          out / "galaxies" / f"{row}.png")
                j = thumb_index
                tile = Image.fromarray(_indices(maps.x[j], "viridis", lim["lo"][j],
                                                lim["hi"][j], maps.weight[j]), mode="P")
                tile.putpalette(PALETTE)
                tile = tile.convert("RGB").resize((thumb_size, thumb_size),
                                                  Image.Resampling.BILINEAR)
                slot = row % per_sheet
                if slot == 0:
                    rows_here = min(SHEET_COLS, -(-(n - row) // SHEET_COLS))
                    sheet = Image.new("RGB", (SHEET_COLS * thumb_size, rows_here * thumb_size),
                                      "white")
                sheet.paste(tile, ((slot % SHEET_COLS) * thumb_size,
                                   (slot // SHEET_COLS) * thumb_size))
                if slot == per_sheet - 1 or row == n - 1:
                    name = f"thumbs/sheet_{row // per_sheet:03d}.png"
                    _save_png(sheet, out / name)
                    sheet_names.append(name)
                bar.update()
    return sheet_names


def write_page_file(path: Path, data: bytes) -> None:
    """Write a page file through a temporary name and ``os.replace``, with the usual
    permissions (readable by a web server), and without fsync: pages are regenerated, and
    thousands of fsyncs would dominate the build time."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_png(image: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    write_page_file(path, buffer.getvalue())


def _rounded(values, digits: int = 4) -> list:
    """Floats rounded for a compact page, NaN as null."""
    arr = np.asarray(values, dtype=float)
    return [None if not np.isfinite(v) else float(v) for v in np.round(arr, digits)]


def _page_data(results: AnalysisResults, neighbours: np.ndarray, distances: np.ndarray,
               sheets: list[str], thumb_size: int, thumb_line: str, title: str) -> dict:
    cat = results.catalogue
    scores = {c: _rounded(cat[c]) for c in results.overall_score_columns}
    scores.update({f"pct_{c[6:]}": _rounded(results.percentile(c), 2) for c in list(scores)})
    classes = {}
    for col in results.class_columns:
        values = top_categories(results.class_values(col))
        names = list(values.value_counts().index)
        lookup = {name: i for i, name in enumerate(names)}
        classes[col] = {"names": names, "codes": [lookup[v] for v in values],
                        "colours": [class_colours(names)[name] for name in names]}
    why = [results.why_anomalous(r) for r in range(len(cat))]
    maps = results.galaxy(0)
    return {
        "title": title,
        "version": __version__,
        "analysis": str(results.path.resolve()),
        "lines": results.lines,
        "n": len(cat),
        "plateifu": cat["plateifu"].astype(str).tolist(),
        "mangaid": cat["mangaid"].astype(str).tolist() if "mangaid" in cat else [""] * len(cat),
        "rank": cat["rank"].astype(int).tolist(),
        "x": _rounded(cat["umap_x"], 5),
        "y": _rounded(cat["umap_y"], 5),
        "score_pct": _rounded(results.percentile("score_combined"), 2),
        "scores": scores,
        "classes": classes,
        "why": why,
        "neighbours": neighbours.astype(int).tolist(),
        "distances": _rounded(distances.ravel(), 4) if distances.size else [],
        "k": int(neighbours.shape[1]),
        "thumbs": {"sheets": sheets, "size": thumb_size, "cols": SHEET_COLS,
                   "line": thumb_line},
        "panel": {"rows": [name for name, data in (
            ("input", maps.x), ("reconstruction", maps.recon), ("residual", maps.residual),
            ("spaxel error", maps.error)) if data is not None],
            "bpt": maps.bpt is not None,
            "bpt_classes": list(BPT_CLASSES), "bpt_colours": list(BPT_COLOURS)},
    }


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        log.debug("explore: " + format, *args)


def serve(directory: str | Path, port: int = 8765) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` bound to 127.0.0.1 (call ``serve_forever`` on it).

    ``port=0`` picks a free port (``server.server_address[1]``).
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
