"""Per-spaxel evaluation against simulated truth maps, on small maps with known answers."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from linecube.analysis.pixel import (
    pixel_auroc,
    pixel_evaluation,
    read_anomaly_maps,
    store_truth,
    truth_on_grid,
)
from linecube.errors import InputFileError
from linecube.simulate.galaxy import SPAXEL_CODES

RING, SF, DIFFUSE, NOCOV = (SPAXEL_CODES[k] for k in ("ring", "star_forming", "diffuse",
                                                       "no_coverage"))


def brute_auroc(score, label):
    """P(score of an anomalous spaxel > a normal one), ties counting half."""
    pos, neg = score[label], score[~label]
    return ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        len(pos) * len(neg))


def test_pixel_auroc_pools_valid_spaxels_overall_and_per_kind():
    rng = np.random.default_rng(0)
    n, h = 4, 5
    truth = np.zeros((n, h, h), bool)
    truth[0, 1:3, 1:3] = True  # a ring galaxy
    truth[1, 0, :] = True  # a Seyfert
    kinds = np.array(["sf_ring", "seyfert", "star_forming", "retired"])
    maps = rng.normal(size=(n, h, h)) + 1.2 * truth
    valid = np.ones((n, h, h), bool)
    valid[:, -1, -1] = False
    maps[2, 0, 0] = np.nan  # no valid spaxel there: left out
    table = pixel_auroc(maps, truth, valid, kinds).set_index("kind")
    assert list(table.index) == ["all", "seyfert", "sf_ring"]
    ok = valid & np.isfinite(maps)
    assert table.loc["all", "pixel_auroc"] == pytest.approx(brute_auroc(maps[ok], truth[ok]))
    assert table.loc["all", "n_spaxels"] == ok.sum() and table.loc["all", "n_anomalous"] == 9
    sel = ok & np.isin(kinds, ["sf_ring", "star_forming", "retired"])[:, None, None]
    assert table.loc["sf_ring", "pixel_auroc"] == pytest.approx(
        brute_auroc(maps[sel], truth[sel]))
    assert table.loc["sf_ring", "n_galaxies"] == 3
    assert 0.5 < table.loc["all", "pixel_auroc"] < 1.0  # informative, not perfect


def test_pixel_auroc_hand_computed():
    maps = np.array([[[0.9, 0.3], [0.1, 0.4]]])
    truth = np.array([[[True, True], [False, False]]])
    table = pixel_auroc(maps, truth, np.ones_like(truth), np.array(["sf_ring"]))
    # pairs (pos > neg): 0.9 beats both, 0.3 beats 0.1 only -> 3 of 4
    assert table.set_index("kind").loc["all", "pixel_auroc"] == pytest.approx(0.75)


def test_truth_on_grid_cuts_the_ingest_window():
    codes = np.full((7, 7), SF, np.int8)
    codes[0, :] = NOCOV
    codes[3, 4] = RING
    anomalous, covered = truth_on_grid(codes, (3.0, 3.0), 4)
    # window_offset((3, 3), 4) = (1, 1): output (i, j) is native (i + 1, j + 1)
    assert anomalous.sum() == 1 and anomalous[2, 3]
    assert covered.all()
    anomalous, covered = truth_on_grid(codes, (3.0, 3.0), 10)  # padded: outside uncovered
    assert anomalous[5, 6] and not covered[0].any() and covered[2:9, 2:9].sum() == 42


def test_truth_on_grid_resampled_takes_half_area():
    codes = np.full((8, 8), DIFFUSE, np.int8)
    codes[2:4, 2:4] = RING  # fills one 2x2 output pixel
    codes[4, 4] = RING  # a quarter of another
    codes[6:8, 6:8] = NOCOV
    anomalous, covered = truth_on_grid(codes, (3.5, 3.5), 4, pixel_scale=1.0)
    # factor 2: output pixel j spans native [2j - 1, 2j + 1), i.e. native 2j and half of
    # each neighbour. Output (1, 1) is 2.25/4 ring; (2, 2) only 1.25/4.
    assert anomalous.sum() == 1 and anomalous[1, 1]
    assert not covered[3, 3]  # 2.25/4 of it has no coverage
    assert covered[0, 0]  # 1.5 x 1.5 native spaxels inside the map: more than half


def _write_truth(path, entries):
    import base64

    from linecube.simulate.survey import _write_truth_maps

    records = [{"plateifu": p, "truth": {"map_size": c.shape[0], "mangaid": f"1-{i}",
                                         "class": k},
                "truth_map": base64.b64encode(c.astype(np.int8).tobytes()).decode()}
               for i, (p, k, c) in enumerate(entries)]
    _write_truth_maps(path, records)


def _fake_store(plateifus, size=4, scale=None):
    cat = pd.DataFrame({"plateifu": plateifus, "center_y": 3.0, "center_x": 3.0})
    return SimpleNamespace(meta=SimpleNamespace(size=size, preprocess={"pixel_scale": scale}),
                           catalogue=cat)


def test_store_truth_matches_on_plateifu(tmp_path):
    ring = np.full((7, 7), SF, np.int8)
    ring[3, 3] = RING
    plain = np.full((9, 9), SF, np.int8)
    _write_truth(tmp_path / "truth_maps.fits", [("1-1", "sf_ring", ring),
                                                ("1-2", "star_forming", plain)])
    store = _fake_store(["1-2", "9-9", "1-1"])
    anomalous, covered, kinds = store_truth(store, tmp_path / "truth_maps.fits")
    assert kinds.tolist() == ["star_forming", "", "sf_ring"]
    assert anomalous[2, 2, 2] and anomalous.sum() == 1
    assert covered[0].all() and not covered[1].any()


def test_pixel_evaluation_reads_the_analysis_maps(tmp_path):
    import zarr

    ring = np.full((7, 7), SF, np.int8)
    ring[2:4, 2:4] = RING
    _write_truth(tmp_path / "truth_maps.fits", [("1-1", "sf_ring", ring),
                                                ("1-2", "retired", np.full((7, 7), DIFFUSE))])
    store = _fake_store(["1-1", "1-2"])
    adir = tmp_path / "analysis"
    with pytest.raises(InputFileError, match="run linecube embed with a calibrated model"):
        read_anomaly_maps(adir)
    score = np.zeros((2, 4, 4), np.float32)
    score[0, 1:3, 1:3] = 1.0  # exactly the ring (native 2:4 -> output 1:3)
    score[0, 0, 0] = 1.0  # one false alarm
    score[1, 3, 3] = np.nan
    group = zarr.open_group(adir / "anomaly_maps.zarr", mode="w")
    group.create_array("score", data=score)
    table = pixel_evaluation(adir, store, tmp_path / "truth_maps.fits").set_index("kind")
    # 4 anomalous spaxels at 1.0; 27 normal: 1 at 1.0 (tie), 26 at 0 -> (4*26 + 4*0.5) / 108
    assert table.loc["all", "pixel_auroc"] == pytest.approx((104 + 2) / 108)
    assert table.loc["all", "n_spaxels"] == 31


def test_evaluate_pixel_truth_option(embedded, store, tmp_path):
    import zarr

    from linecube.analysis.evaluate import EvaluateConfig, evaluate
    from linecube.analysis.scores import ScoreConfig, score

    score(embedded, ScoreConfig(k=5))
    cat = store.catalogue
    n, size = len(cat), store.meta.size
    kinds = np.where(np.arange(n) % 3 == 0, "sf_ring", "star_forming")
    entries = []
    for plateifu, kind in zip(cat["plateifu"], kinds, strict=True):
        codes = np.full((size, size), SF, np.int8)
        if kind == "sf_ring":
            codes[2:4, 2:5] = RING
        entries.append((plateifu, kind, codes))
    _write_truth(tmp_path / "truth_maps.fits", entries)
    labels = tmp_path / "truth.parquet"
    pd.DataFrame({"plateifu": cat["plateifu"], "class": kinds,
                  "ratio_normal": True}).to_parquet(labels)
    store.catalogue["center_y"] = store.catalogue["center_x"] = size / 2
    cfg = EvaluateConfig(n_bootstrap=20, top_k=3, purity_k=0, label_column="class",
                         per_class=True, pixel_truth=str(tmp_path / "truth_maps.fits"))
    import shutil

    shutil.rmtree(embedded / "anomaly_maps.zarr")  # as an analysis from before the maps existed
    with pytest.raises(InputFileError, match="calibrated model"):
        evaluate(embedded, labels, cfg, store=store)
    rng = np.random.default_rng(1)
    truth, _, _ = store_truth(store, tmp_path / "truth_maps.fits")
    maps = (truth + rng.normal(0, 0.8, truth.shape)).astype(np.float32)
    zarr.open_group(embedded / "anomaly_maps.zarr", mode="w").create_array("score", data=maps)
    result = evaluate(embedded, labels, cfg, store=store)
    pixel = result["pixel"].set_index("kind")
    assert 0.7 < pixel.loc["all", "pixel_auroc"] < 1.0
    assert pixel.loc["sf_ring", "ratio_normal"]
    assert result["metrics"]["ratio_normal"].all()
    assert (embedded / "evaluation" / "pixel_metrics.csv").is_file()
