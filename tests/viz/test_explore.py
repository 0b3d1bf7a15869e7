import json
import threading
import urllib.request

import numpy as np
import pandas as pd
import pytest

from linecube.cli import main
from linecube.errors import ConfigError, InputFileError
from linecube.viz.explore import (
    build_explorer,
    downsample,
    nearest_neighbours,
    panel_image,
    serve,
)
from linecube.viz.results import AnalysisResults, GalaxyMaps


def read_data(page_dir):
    text = (page_dir / "data.js").read_text()
    prefix = "window.LINECUBE_DATA = "
    assert text.startswith(prefix)
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


def test_build_writes_page_data_and_images(analysis_dir, tmp_path, xss_label):
    index = build_explorer(analysis_dir, tmp_path / "page", k=3,
                           labels=analysis_dir.parent / "labels.csv")
    page = index.parent
    for name in ("index.html", "explorer.js", "explorer.css", "thumbs/sheet_000.png"):
        assert (page / name).is_file()
    data = read_data(page)
    cat = pd.read_parquet(analysis_dir / "catalogue.parquet")
    assert data["n"] == 12 and data["plateifu"] == cat.plateifu.tolist() and data["k"] == 3
    assert list(data["classes"]) == ["bpt_class", "whan_class", "flag_anomaly", "class", "is_agn"]
    sim = data["classes"]["class"]
    assert sim["names"][sim["codes"][9]] == xss_label  # stored raw, escaped by the page
    assert sim["names"][sim["codes"][11]] == "unmatched"
    assert sorted(data["scores"]) == sorted(
        f"{p}_{s}" for p in ("score", "pct") for s in ("combined", "recon", "iforest", "knn", "lof"))
    np.testing.assert_allclose(data["score_pct"], cat["pct_combined"], atol=0.01)
    # Neighbours: the 3 closest other galaxies in latent space, nearest first.
    mu = AnalysisResults.open(analysis_dir).latents()
    dist = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    np.testing.assert_array_equal(np.array(data["neighbours"]), np.argsort(dist, 1)[:, :3])
    np.testing.assert_allclose(data["distances"][:3], np.sort(dist[0])[:3], atol=1e-4)
    assert data["panel"]["rows"] == ["input", "reconstruction", "residual", "spaxel error"]
    assert len(list((page / "galaxies").glob("*.png"))) == 12
    (page / "galaxies" / "99.png").write_bytes(b"stale")  # from an earlier, larger survey
    build_explorer(analysis_dir, page, k=3)
    assert len(list((page / "galaxies").glob("*.png"))) == 12


def test_panel_image_layout(analysis_dir):
    maps = AnalysisResults.open(analysis_dir).galaxy(0)
    image = panel_image(maps)
    # 4 rows of 16 px tiles and 5 columns (4 lines + BPT), 1 px gaps
    assert image.mode == "P" and image.size == (5 * 17 - 1, 4 * 17 - 1)
    pixels = np.asarray(image)
    assert pixels[0, 0] == 1  # corner spaxel is masked (grey), y axis flipped for display
    assert pixels[16, :].max() == 0  # white gap between rows


def test_downsample_averages_valid_spaxels_only():
    x = np.arange(2 * 5 * 5, dtype="f4").reshape(2, 5, 5)
    weight = np.ones_like(x, bool)
    weight[0, 0, 0] = False  # excluded from its block's mean
    weight[1, :2, :2] = False  # a fully masked block stays masked
    bpt = np.arange(25, dtype="i1").reshape(5, 5)
    small = downsample(GalaxyMaps(x=x, weight=weight, recon=x, error=None, bpt=bpt), 2)
    assert small.x.shape == (2, 2, 2) and small.error is None
    assert small.x[0, 0, 0] == (1 + 5 + 6) / 3 and small.x[0, 1, 1] == (12 + 13 + 17 + 18) / 4
    assert not small.weight[1, 0, 0] and small.weight[1, 1, 1]
    np.testing.assert_array_equal(small.bpt, [[0, 2], [10, 12]])


def test_large_maps_are_block_averaged_in_panels(analysis_dir, tmp_path):
    page = build_explorer(analysis_dir, tmp_path / "page", panel_size=8).parent
    from PIL import Image

    with Image.open(page / "galaxies" / "0.png") as image:
        assert image.size == (5 * 9 - 1, 4 * 9 - 1)  # 16 px maps shown as 8 px tiles


def test_nearest_neighbours_excludes_self_even_with_duplicates():
    latents = np.array([[0.0], [0.0], [1.0], [3.0]])
    idx, dist = nearest_neighbours(latents, 2)
    assert idx.shape == (4, 2)
    assert all(i not in row for i, row in enumerate(idx))
    assert set(idx[0]) == {1, 2} and dist[0, 0] == 0.0
    idx, _ = nearest_neighbours(latents, 10)  # capped at N - 1
    assert idx.shape == (4, 3)


def test_missing_umap_is_a_clear_error(analysis_dir, tmp_path):
    cat = pd.read_parquet(analysis_dir / "catalogue.parquet")
    cat.drop(columns=["umap_x"]).to_parquet(analysis_dir / "catalogue.parquet")
    with pytest.raises(InputFileError, match="run `linecube umap` first"):
        build_explorer(analysis_dir, tmp_path / "page")


def test_neighbour_count_is_checked_before_anything_is_written(analysis_dir, tmp_path, capsys):
    with pytest.raises(ConfigError, match="k must be >= 1, got 0"):
        build_explorer(analysis_dir, tmp_path / "page", k=0)
    assert main(["explore", str(analysis_dir), "--out", str(tmp_path / "page"), "--k", "0"]) == 2
    assert "k must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "page").exists()


def test_serve_binds_localhost_only(analysis_dir, tmp_path):
    page = build_explorer(analysis_dir, tmp_path / "page").parent
    server = serve(page, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data.js") as resp:
            assert resp.read().startswith(b"window.LINECUBE_DATA")
    finally:
        server.shutdown()
        server.server_close()


def test_cli_explore(analysis_dir, tmp_path, capsys):
    assert main(["explore", str(analysis_dir), "--out", str(tmp_path / "p"), "--k", "2"]) == 0
    assert "explorer written to" in capsys.readouterr().out
    assert read_data(tmp_path / "p")["k"] == 2
    assert main(["explore", str(analysis_dir), "--out", str(tmp_path / "q"),
                 "--thumb-line", "OI-6302"]) == 2
    assert "thumb_line 'OI-6302'" in capsys.readouterr().err
