"""A self-contained static HTML report of an analysis, with every figure also as PNG and PDF.

``build_report(analysis_dir, out)`` writes::

    OUT/
      index.html           one file; figures embedded as base64 PNG
      figures/             scores.png|pdf, umap.png|pdf, anomaly_<rank>_<plateifu>.png|pdf
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd

from linecube import __version__
from linecube.errors import ConfigError
from linecube.outdir import claim_output_dir
from linecube.viz import figures
from linecube.viz.explore import write_page_file
from linecube.viz.results import AnalysisResults

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger(__name__)


def build_report(analysis_dir: str | Path, out: str | Path, top: int = 20,
                 labels: str | Path | None = None, label_columns: list[str] | None = None,
                 title: str = "linecube analysis report") -> Path:
    """Write the HTML report of ``analysis_dir`` into ``out``.

    Args:
        analysis_dir: an analysis directory (see ``docs/analysis.md``).
        out: the report directory: new, empty, or an earlier report (its figures are replaced);
            anything else is refused (:func:`linecube.outdir.claim_output_dir`).
        top: how many of the most anomalous galaxies get a full panel (0 or more).
        labels: optional label table (PLATEIFU or MANGAID column) whose classes colour the
            figures; see :func:`linecube.viz.results.read_labels`.
        label_columns: the columns of ``labels`` to use (default: class, label, is_agn or the
            AGN VAC flags present).
        title: the page title.

    Returns:
        The path of ``index.html``.

    Raises:
        ConfigError: ``top`` is negative.
    """
    import matplotlib

    if top < 0:
        raise ConfigError(f"top must be >= 0, got {top}")
    matplotlib.use("Agg")
    results = AnalysisResults.open(analysis_dir, labels, label_columns)
    out = claim_output_dir(out, "report")
    fig_dir = out / "figures"
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, html)

    fig = figures.score_distributions(results)
    sections.append(("scores", "Score distributions",
                     _figure_html(fig, fig_dir / "scores", "Raw anomaly scores, stacked by class.")))
    if results.has_umap:
        fig = figures.umap_figure(results)
        body = _figure_html(fig, fig_dir / "umap", "UMAP of the latent means, coloured by the "
                            "combined score percentile, the BPT class and each label.")
    else:
        body = _note("The catalogue has no umap_x/umap_y columns: run `linecube umap` first.")
    sections.append(("umap", "Latent space (UMAP)", body))
    sections.append(("top", f"Top {min(top, len(results))} anomalies", _top_html(results, top,
                                                                                   fig_dir)))
    sections.append(("evaluation", "Evaluation", _evaluation_html(results)))

    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<h2 id="{a}">{html.escape(h)}</h2>\n{b}\n' for a, h, b in sections)
    summary = (f"{len(results)} galaxies; lines: {', '.join(results.lines)}; "
               f"store: {results.store.path}; model: {results.info.get('model', 'unknown')}; "
               f"analysis: {results.path}"
               + (f"; labels: {labels} ({', '.join(results.label_columns)})" if labels else ""))
    page = Template((TEMPLATES / "report.html").read_text()).substitute(
        title=html.escape(title), summary=html.escape(summary), nav=nav, body=body,
        version=html.escape(__version__))
    index = out / "index.html"
    write_page_file(index, page.encode("utf-8"))
    return index


def _figure_html(fig, stem: Path, caption: str) -> str:
    """Save ``fig`` as PNG+PDF under ``stem`` and return an <figure> embedding the PNG."""
    png, pdf = figures.save_figure(fig, stem)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    links = (f'<span class="downloads"><a href="figures/{html.escape(png.name)}">PNG</a>'
             f'<a href="figures/{html.escape(pdf.name)}">PDF</a></span>')
    return (f'<figure><img alt="{html.escape(stem.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} {links}</figcaption></figure>")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _table_html(df: pd.DataFrame) -> str:
    """An HTML table of ``df`` with every header and cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for record in df.itertuples(index=False):
        cells = []
        for value in record:
            if isinstance(value, float | np.floating):
                cells.append(f"<td>{value:.4g}</td>")
            elif isinstance(value, int | np.integer) and not isinstance(value, bool):
                cells.append(f"<td>{value}</td>")
            else:
                cells.append(f'<td class="text">{html.escape(str(value))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _top_html(results: AnalysisResults, top: int, fig_dir: Path) -> str:
    cat = results.catalogue
    chosen = cat.sort_values("rank").head(top)
    columns = ["rank", "plateifu", "mangaid", "score_combined"]
    columns += [f"pct_{c[6:]}" for c in results.overall_score_columns]
    columns += results.class_columns
    table = chosen[[c for c in columns if c in cat.columns]].copy()
    table["highest per-line error (percentile)"] = [results.why_anomalous(int(r))
                                                     for r in chosen["row"]]
    parts = [_table_html(table)]
    if not results.has_recon:
        parts.append(_note("recon.zarr was not written, so reconstructions and residuals are "
                           "not shown; rerun `linecube embed` with reconstructions enabled."))
    for _, info in chosen.iterrows():
        rank, row = int(info["rank"]), int(info["row"])
        safe_id = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(info["plateifu"]))
        log.info("report: panel for rank %d (%s)", rank, info["plateifu"])
        fig = figures.galaxy_figure(results, row)
        caption = (f"Rank {rank}: {info['plateifu']}. Rows: input, reconstruction, residual "
                   "(input - reconstruction), spaxel error, in normalised units; grey = masked. "
                   "Bars: this galaxy's per-line error as a percentile of all galaxies.")
        parts.append(_figure_html(fig, fig_dir / f"anomaly_{rank:04d}_{safe_id}", caption))
    return "\n".join(parts)


def _evaluation_html(results: AnalysisResults) -> str:
    tables = results.evaluation_tables()
    images = results.evaluation_images()
    if not tables and not images:
        return _note("No evaluation/ folder: run `linecube evaluate` with a label table to "
                     "compare scores against known classes.")
    parts = []
    for name, df in tables.items():
        parts.append(f"<h3>{html.escape(name)}</h3>{_table_html(df)}")
    for path in images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(path.stem)}" '
                     f'src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(path.name)}</figcaption></figure>")
    return "\n".join(parts)
