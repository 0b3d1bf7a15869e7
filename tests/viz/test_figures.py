import numpy as np

from linecube.viz import figures
from linecube.viz.results import AnalysisResults, GalaxyMaps


def test_map_limits_per_line_and_symmetric_residual():
    x = np.stack([np.full((4, 4), 1.0), np.arange(16, dtype="f4").reshape(4, 4)])
    weight = np.ones_like(x, bool)
    weight[1, 0, 0] = False
    maps = GalaxyMaps(x=x, weight=weight, recon=x - 0.5, error=np.abs(x) * 0, bpt=None)
    lim = figures.map_limits(maps)
    assert lim["lo"][0] == 1.0 and lim["hi"][0] > 1.0  # constant map gets a non-empty range
    assert lim["lo"][1] >= 1.0 and lim["hi"][1] <= 15.0  # masked spaxel (value 0) ignored
    assert np.isclose(lim["res"], 0.5)
    assert lim["err"] > 0


def test_galaxy_figure_has_every_line_and_row(analysis_dir, tmp_path):
    res = AnalysisResults.open(analysis_dir)
    fig = figures.galaxy_figure(res, 0)
    # 4 rows x 4 lines of maps, the BPT map and the per-line bar chart
    assert len(fig.axes) == 4 * 4 + 2
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == res.lines
    png, pdf = figures.save_figure(fig, tmp_path / "f" / "galaxy")
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"


def test_umap_and_score_figures_use_labels(analysis_dir):
    res = AnalysisResults.open(analysis_dir, labels=analysis_dir.parent / "labels.csv")
    umap = figures.umap_figure(res)
    assert [ax.get_title() for ax in umap.axes if ax.get_title()] == [
        "anomaly score", "bpt_class", "class", "is_agn"]
    scores = figures.score_distributions(res)
    assert scores.legends[0].get_title().get_text() == "class"
    assert len(scores.axes) == 5  # overall scores only, not the per-line ones
    assert figures.top_categories(res.class_values("class"), 1).nunique() == 2
