"""Whole surveys on disk: files, catalogues, determinism, workers, resume, formats."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from linecube.errors import ConfigError
from linecube.io.dapall import read_dapall
from linecube.io.maps import read_maps
from linecube.lines import DR15_LINES, DR17_LINES
from linecube.simulate import SimulationConfig, simulate_survey
from linecube.simulate.population import plan_survey

SMALL = SimulationConfig(bundles={19: 2, 37: 1}, repeat_fraction=0.3)
ALL35 = [ln.name for ln in DR17_LINES]


def digest(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("survey")
    return out, simulate_survey(out, 9, seed=3, config=SMALL, spaxel_classes=True)


def test_layout_and_summary(survey):
    out, summary = survey
    assert summary.n_observations == 9 and not summary.failures
    assert summary.n_galaxies < 9  # repeat observations at this (high) rate
    truth = pd.read_parquet(out / "truth.parquet")
    assert len(truth) == 9
    for col in ("plateifu", "mangaid", "class", "is_agn", "z", "re_arcsec", "log_mstar",
                "ebv_center", "oh_center", "cen_log_nii_ha", "cen_log_oiii_hb", "maps_file"):
        assert col in truth.columns
    assert truth["plateifu"].is_unique
    written = truth[truth["dapdone"]]
    for rel in written["maps_file"]:
        assert (out / rel).is_file()
        assert rel.startswith("maps/manga-") and rel.endswith("-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz")
    assert len(list((out / "maps").iterdir())) == len(written) == summary.n_written
    fits_truth = fits.getdata(out / "truth.fits", "TRUTH")
    assert [s.strip() for s in fits_truth["plateifu"]] == truth["plateifu"].tolist()
    assert len(list((out / "spaxel_classes").glob("*.fits.gz"))) == len(written)


def test_repeats_share_mangaid_and_galaxy(survey):
    out, _ = survey
    truth = pd.read_parquet(out / "truth.parquet")
    repeats = truth[truth["is_repeat"]]
    assert len(repeats) > 0
    for _, rep in repeats.iterrows():
        first = truth[(truth["observation"] == rep["galaxy"])].iloc[0]
        assert rep["mangaid"] == first["mangaid"] and rep["plateifu"] != first["plateifu"]
        for col in ("class", "z", "log_mstar", "ra", "dec", "pa", "ba"):
            assert rep[col] == first[col]


def test_reader_and_astropy_agree(survey):
    out, _ = survey
    truth = pd.read_parquet(out / "truth.parquet")
    path = out / truth[truth["dapdone"]]["maps_file"].iloc[0]
    gal = read_maps(path, lines=ALL35, mask="strict")
    with fits.open(path) as hdul:
        assert len(hdul) == 18 and hdul["EMLINE_GFLUX"].data.dtype.byteorder == ">"
        names = {v.strip(): int(k[1:]) - 1 for k, v in hdul["EMLINE_GFLUX"].header.items()
                 if k.startswith("C") and k[1:].isdigit()}
        order = [names[n] for n in gal.lines]
        np.testing.assert_array_equal(gal.flux, hdul["EMLINE_GFLUX"].data[order])
        np.testing.assert_array_equal(gal.ivar, hdul["EMLINE_GFLUX_IVAR"].data[order])
        np.testing.assert_array_equal(gal.mask, hdul["EMLINE_GFLUX_MASK"].data[order])
        assert gal.plateifu == hdul[0].header["PLATEIFU"]
        assert hdul[0].header["LCSIM"] is True
    assert gal.meta["z"] == pytest.approx(truth.set_index("plateifu").loc[gal.plateifu, "z"],
                                          rel=1e-6)


def test_simulate_galaxy_is_the_survey_observation(survey):
    from linecube.simulate import simulate_galaxy

    out, _ = survey
    truth = pd.read_parquet(out / "truth.parquet")
    row = truth[truth["dapdone"]].iloc[-1]
    obs = simulate_galaxy(seed=3, index=int(row["observation"]), config=SMALL)
    assert obs.plan.plateifu == row["plateifu"]
    with fits.open(out / row["maps_file"]) as hdul:
        for ext in ("EMLINE_GFLUX", "EMLINE_GFLUX_MASK", "EMLINE_GVEL", "SPX_SNR", "BINID"):
            np.testing.assert_array_equal(hdul[ext].data, obs.maps[ext])


def test_truth_maps_product_and_anomaly_columns(survey):
    from linecube.simulate import simulate_galaxy
    from linecube.simulate.galaxy import ANOMALOUS_CODES
    from linecube.simulate.survey import read_truth_maps

    out, _ = survey
    truth = pd.read_parquet(out / "truth.parquet")
    for col in ("host_class", "anomaly_kind", "ratio_normal", "anomaly_fraction",
                "integrated_class", "nlr_radius_kpc"):
        assert col in truth.columns
    assert truth["ratio_normal"].dtype == bool
    assert truth["anomaly_fraction"].between(0, 1).all()
    maps = read_truth_maps(out / "truth_maps.fits")
    assert maps["plateifu"].tolist() == truth["plateifu"].tolist()
    assert maps["map_size"].tolist() == truth["map_size"].tolist()
    for i in (0, len(truth) - 1):
        obs = simulate_galaxy(seed=3, index=i, config=SMALL)
        np.testing.assert_array_equal(maps["codes"][i], obs.spaxel_class)
        covered = maps["codes"][i] >= 0
        frac = np.isin(maps["codes"][i][covered], ANOMALOUS_CODES).mean()
        assert frac == pytest.approx(truth["anomaly_fraction"].iloc[i])
    hdr = fits.getheader(out / "truth_maps.fits", "CODES")
    assert hdr["CODE3"] == "star_forming" and hdr["OUTSIDE"] == -2


def test_dapall_catalogue(survey):
    out, _ = survey
    truth = pd.read_parquet(out / "truth.parquet")
    df = read_dapall(out / "dapall-v3_1_1-3.1.0.fits", done_only=False)
    assert df["PLATEIFU"].tolist() == truth["plateifu"].tolist()
    assert df["DAPDONE"].tolist() == truth["dapdone"].tolist()
    np.testing.assert_allclose(df["Z"], truth["z"])
    assert len(df["EMLINE_GFLUX_1RE"].iloc[0]) == 35
    other = read_dapall(out / "dapall-v3_1_1-3.1.0.fits", daptype="SPX-MILESHC-MASTARSSP",
                        done_only=False)
    assert not other["DAPDONE"].any()  # only HYB10-MILESHC-MASTARSSP was simulated
    deduped = read_dapall(out / "dapall-v3_1_1-3.1.0.fits", dedupe=True)
    assert deduped["MANGAID"].is_unique


def test_agn_catalogue(tmp_path):
    cfg = SimulationConfig(bundles={19: 2}, classes={"seyfert": 1, "liner": 1,
                                                     "star_forming": 1, "retired": 0,
                                                     "composite": 0, "shock_merger": 0,
                                                     "blueberry": 0},
                           agn_catalogue={"radio_liner": 1.0, "false_positive_rate": 0.0})
    simulate_survey(tmp_path, 12, seed=0, config=cfg)
    truth = pd.read_parquet(tmp_path / "truth.parquet")
    cat = fits.getdata(tmp_path / "agn_catalogue.fits", "AGN")
    assert set(cat.columns.names) >= {"MANGAID", "PLATEIFU", "WISE_AGN", "BAT_AGN",
                                      "RADIO_AGN", "BROAD_AGN"}
    listed = {m.strip() for m in cat["MANGAID"]}
    agn = truth[truth["is_agn"] & ~truth["is_repeat"]]
    liners = set(agn[agn["class"] == "liner"]["mangaid"])
    assert liners and liners <= listed  # every LINER is a radio source in this config
    assert listed <= set(agn["mangaid"])  # no false positives in this config
    for row in cat:
        assert row["WISE_AGN"] or row["BAT_AGN"] or row["RADIO_AGN"] or row["BROAD_AGN"]


def test_agn_catalogue_incomplete_by_default():
    cfg = SimulationConfig(classes={"seyfert": 1, "liner": 1, "retired": 0, "star_forming": 0,
                                    "composite": 1, "shock_merger": 0, "blueberry": 0})
    from linecube.simulate.population import draw_galaxy

    plans = plan_survey(300, 1, cfg)
    gals = [draw_galaxy(1, p, cfg) for p in plans if not p.is_repeat]
    agn = [g for g in gals if g.is_agn]
    found = [g for g in agn if g.wise_agn or g.bat_agn or g.radio_agn or g.broad_agn]
    assert 0.15 < len(found) / len(agn) < 0.8  # realistic incompleteness


@pytest.mark.slow
def test_workers_do_not_change_bytes_and_resume(tmp_path, survey):
    out1, _ = survey
    out2 = tmp_path / "w2"
    simulate_survey(out2, 9, seed=3, config=SMALL, spaxel_classes=True, workers=2)
    assert digest(out1) == digest(out2)
    # kill-like damage: one finished observation lost its record and file; resume redoes it
    victim = sorted((out2 / "maps").iterdir())[0]
    before = victim.read_bytes()
    record = next(p for p in (out2 / ".progress").iterdir()
                  if victim.name.split("-MAPS")[0].removeprefix("manga-") in p.read_text())
    victim.unlink()
    record.unlink()
    summary = simulate_survey(out2, 9, seed=3, config=SMALL, spaxel_classes=True)
    assert summary.n_resumed == 8 and summary.n_written == 1
    assert victim.read_bytes() == before
    assert digest(out1) == digest(out2)


def test_other_settings_in_same_directory_rejected(survey):
    out, _ = survey
    with pytest.raises(ConfigError, match="other settings.*seed"):
        simulate_survey(out, 9, seed=4, config=SMALL, spaxel_classes=True)


def test_dr15_format(tmp_path):
    simulate_survey(tmp_path, 2, seed=0, config=SimulationConfig(bundles={19: 2}),
                    format="dr15")
    files = sorted((tmp_path / "maps").glob("*-MAPS-HYB10-GAU-MILESHC.fits.gz"))
    assert files
    names = [ln.name for ln in DR15_LINES]
    gal = read_maps(files[0], lines=names)
    assert gal.meta["release"] == "dr15" and len(gal.lines) == 22
    with fits.open(files[0]) as hdul:
        assert len(hdul) == 18 and hdul["SPX_ELLCOO"].data.shape[0] == 3
        flux = hdul["EMLINE_GFLUX"].data
        assert np.array_equal(flux[names.index("OIII-4960")],
                              flux[names.index("OIII-5008")] * np.float32(0.340))
    assert (tmp_path / "dapall-v2_4_3-2.2.1.fits").is_file()


def test_mmu_format_matches_dr17(tmp_path):
    from linecube.io.mmu import read_mmu

    cfg = SimulationConfig(bundles={19: 2}, dapdone_failure_rate=0.0)
    simulate_survey(tmp_path / "mmu", 3, seed=2, config=cfg, format="mmu")
    simulate_survey(tmp_path / "dr17", 3, seed=2, config=cfg)
    files = sorted((tmp_path / "mmu" / "mmu" / "manga").glob("healpix=*/001-of-001.hdf5"))
    gals = {g.plateifu: g for f in files for g in read_mmu(f, lines=ALL35, mask="strict")}
    assert len(gals) == 3
    for path in sorted((tmp_path / "dr17" / "maps").iterdir()):
        ref = read_maps(path, lines=ALL35, mask="strict")
        got = gals[ref.plateifu]
        n = ref.shape[0]
        top = (96 - n) // 2
        np.testing.assert_array_equal(got.flux[:, top:top + n, top:top + n], ref.flux)


@pytest.mark.slow
def test_full_files_have_all_64_hdus(tmp_path):
    simulate_survey(tmp_path, 1, seed=0, config=SimulationConfig(bundles={19: 1}), full=True)
    path = next((tmp_path / "maps").iterdir())
    with fits.open(path) as hdul:
        assert len(hdul) == 64
        assert hdul["SPECINDEX"].data.shape[0] == 46
        assert np.any(hdul["STELLAR_VEL"].data != 0)
    gal = read_maps(path, lines=ALL35)
    assert gal.flux.shape[0] == 35


def test_full_dr15_files_have_48_hdus(tmp_path):
    cfg = SimulationConfig(bundles={19: 1}, dapdone_failure_rate=0.0)
    summary = simulate_survey(tmp_path, 1, seed=0, config=cfg, full=True, format="dr15")
    assert not summary.failures
    path = next((tmp_path / "maps").iterdir())
    with fits.open(path) as hdul:
        assert len(hdul) == 48
        assert "EMLINE_GA" not in hdul and hdul["EMLINE_SEW"].data.shape[0] == 22
    assert read_maps(path, lines=[ln.name for ln in DR15_LINES]).flux.shape[0] == 22


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="n must be"):
        simulate_survey(tmp_path, 0)
    with pytest.raises(ConfigError, match="format"):
        simulate_survey(tmp_path, 1, format="dr16")
    with pytest.raises(ConfigError, match="workers"):
        simulate_survey(tmp_path, 1, workers=0)


def test_plan_bundle_mix_and_plates():
    plans = plan_survey(170, 0, SimulationConfig())
    fibres = pd.Series([p.fibres for p in plans]).value_counts()
    assert fibres.to_dict() == {127: 50, 37: 40, 61: 40, 19: 20, 91: 20}  # 2:4:4:2:5 per plate
    assert len({p.plateifu for p in plans}) == 170
    assert plans == plan_survey(170, 0, SimulationConfig())
    assert plans[:50] == plan_survey(50, 0, SimulationConfig())  # prefix-stable
