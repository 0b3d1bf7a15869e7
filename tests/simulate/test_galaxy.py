"""Physics and DAP behaviour of single simulated observations (small 19/37-fibre maps)."""

import numpy as np
import pytest

from linecube.bits import DAPPIXMASK
from linecube.lines import DR17_LINES
from linecube.simulate import CLASSES, SimulationConfig, simulate_galaxy
from linecube.simulate.config import BASE_CLASSES
from linecube.simulate.emission import IDX
from linecube.simulate.galaxy import APERTURE, SIGMA_TIES

DONOTUSE = 1 << DAPPIXMASK["DONOTUSE"]
N_PER_CLASS = 15


def k03(x):
    return np.where(x < 0.05, 0.61 / (x - 0.05) + 1.30, -np.inf)


def k01(x):
    return np.where(x < 0.47, 0.61 / (x - 0.47) + 1.19, -np.inf)


def central(obs):
    """Summed unmasked GFLUX per line in the central 2.5-arcsec aperture."""
    m = obs.maps
    n = m["EMLINE_GFLUX"].shape[-1]
    yy, xx = np.mgrid[0:n, 0:n]
    ap = np.hypot(yy - n // 2, xx - n // 2) * 0.5 <= APERTURE
    good = (m["EMLINE_GFLUX_MASK"] & DONOTUSE) == 0
    return np.where(good, m["EMLINE_GFLUX"], 0)[:, ap].sum(axis=1)


@pytest.fixture(scope="module")
def by_class():
    """N_PER_CLASS observations per class, alternating 19- and 37-fibre bundles."""
    return {cls: [simulate_galaxy(seed=5, index=i, galaxy_class=cls, fibres=(19, 37)[i % 2])
                  for i in range(N_PER_CLASS)] for cls in CLASSES}


def bpt(observations):
    s = np.array([central(o) for o in observations])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log10(s[:, IDX["NII-6585"]] / s[:, IDX["Ha-6564"]])
        y = np.log10(s[:, IDX["OIII-5008"]] / s[:, IDX["Hb-4862"]])
        o1 = np.log10(s[:, IDX["OI-6302"]] / s[:, IDX["Ha-6564"]])
    return x, y, o1


def test_all_35_channels_and_shapes():
    obs = simulate_galaxy(seed=0, fibres=19, full=False)
    n = obs.maps["EMLINE_GFLUX"].shape[-1]
    assert n in (32, 34)
    for key in ("EMLINE_GFLUX", "EMLINE_GFLUX_IVAR", "EMLINE_GFLUX_MASK", "EMLINE_SFLUX",
                "EMLINE_SFLUX_IVAR", "EMLINE_SFLUX_MASK", "EMLINE_GEW", "EMLINE_GVEL",
                "EMLINE_GVEL_IVAR", "EMLINE_GVEL_MASK", "EMLINE_GSIGMA", "EMLINE_GSIGMA_IVAR",
                "EMLINE_GSIGMA_MASK"):
        assert obs.maps[key].shape == (35, n, n), key
        assert obs.maps[key].dtype == (np.int32 if key.endswith("MASK") else np.float32)
    assert obs.maps["SPX_SKYCOO"].shape == (2, n, n)
    assert obs.maps["SPX_ELLCOO"].shape == (4, n, n)
    assert obs.maps["BINID"].shape == (5, n, n) and obs.maps["BINID"].dtype == np.int32
    for key in ("PLATEIFU", "MANGAID", "OBJRA", "OBJDEC", "SCINPVEL", "REFF", "GFWHM",
                "RFWHM", "IFUDSGN", "DAPQUAL", "DRP3QUAL", "EBVGAL", "ECOOPA", "ECOOELL"):
        assert key in obs.header
    assert obs.header["SCINPVEL"] == pytest.approx(299792.458 * obs.params.z, abs=1e-3)


def test_dap_ties_hold_exactly():
    obs = simulate_galaxy(seed=1, galaxy_class="seyfert", fibres=37)
    m = obs.maps
    for ln in DR17_LINES:
        if ln.tied_to:
            i, j = IDX[ln.name], IDX[ln.tied_to]
            r = np.float32(ln.tie_ratio)
            assert np.array_equal(m["EMLINE_GFLUX"][i], m["EMLINE_GFLUX"][j] * r)
            assert np.array_equal(m["EMLINE_GFLUX_IVAR"][i], m["EMLINE_GFLUX_IVAR"][j] / (r * r))
            assert np.array_equal(m["EMLINE_GFLUX_MASK"][i], m["EMLINE_GFLUX_MASK"][j])
    for name, partner in SIGMA_TIES.items():
        assert np.array_equal(m["EMLINE_GSIGMA"][IDX[name]], m["EMLINE_GSIGMA"][IDX[partner]])
    # one velocity for every line (tied to Hα), wherever a line was fitted
    good = (m["EMLINE_GVEL_MASK"] & DONOTUSE) == 0
    ha = m["EMLINE_GVEL"][IDX["Ha-6564"]]
    assert np.array_equal(np.where(good, m["EMLINE_GVEL"], 0), np.where(good, ha, 0))


def test_masks_values_and_ivar_follow_the_dap():
    obs = simulate_galaxy(seed=2, galaxy_class="star_forming", fibres=37)
    m = obs.maps
    flux, ivar, mask = m["EMLINE_GFLUX"], m["EMLINE_GFLUX_IVAR"], m["EMLINE_GFLUX_MASK"]
    nocov = (mask[IDX["Ha-6564"]] & 1) != 0
    corner = mask[IDX["Ha-6564"], 0, 0]
    assert corner == DONOTUSE | 1 | 2  # NOCOV | LOWCOV | DONOTUSE, as in real files
    assert np.all(flux[:, nocov] == 0) and np.all(ivar[:, nocov] == 0)
    assert 0.3 < nocov.mean() < 0.7  # hexagon inside the square
    good = (mask & DONOTUSE) == 0
    assert np.all(flux[good] >= 0) and np.all(ivar[good] > 0)
    assert np.all(np.isfinite(flux)) and np.all(np.isfinite(ivar))
    # exact zeros are non-detections with a valid ivar
    weak = good[IDX["HeII-4687"]]
    zeros = flux[IDX["HeII-4687"]][weak] == 0
    assert zeros.mean() > 0.2  # 316 of 747 in the real file of format doc §7
    assert np.all(ivar[IDX["HeII-4687"]][weak][zeros] > 0)
    # DONOTUSE is consolidated from its sources, never set alone
    sources = sum(1 << DAPPIXMASK[b] for b in ("NOCOV", "LOWCOV", "DEADFIBER", "FORESTAR",
                                               "NOVALUE", "MATHERROR", "FITFAILED",
                                               "NEARBOUND"))
    assert np.array_equal((mask & DONOTUSE) != 0, (mask & sources) != 0)
    # SFLUX can be negative; its empty channels carry no data
    sgood = (m["EMLINE_SFLUX_MASK"] & DONOTUSE) == 0
    assert (m["EMLINE_SFLUX"][sgood] < 0).any()
    assert not sgood[IDX["OII-3729"]].any()
    # BINID -1 exactly where nothing was analysed
    binid = m["BINID"]
    analysed = binid[3] >= 0
    assert np.array_equal(analysed, (mask[IDX["Ha-6564"]] & (1 | 8 | 16)) == 0)
    assert np.array_equal(np.sort(binid[3][analysed]), np.arange(analysed.sum()))


def test_ivar_matches_the_noise_added():
    chis = []
    for i in range(4):
        obs = simulate_galaxy(seed=3, index=i, galaxy_class="star_forming", fibres=37)
        m = obs.maps
        good = (m["EMLINE_GFLUX_MASK"] & DONOTUSE) == 0
        sigma = 1 / np.sqrt(np.where(good, m["EMLINE_GFLUX_IVAR"], np.inf))
        bright = good & (obs.model > 5 * sigma)  # far from the clipping at zero
        for ln in DR17_LINES:  # tied channels are scaled copies; count each noise draw once
            if ln.tied_to:
                bright[IDX[ln.name]] = False
        chis.append(((m["EMLINE_GFLUX"] - obs.model) * np.sqrt(m["EMLINE_GFLUX_IVAR"]))[bright])
    chi = np.concatenate(chis)
    assert chi.size > 5000
    assert abs(chi.mean()) < 0.05
    assert 0.95 < chi.std() < 1.05


def test_blue_lines_noisier():
    obs = simulate_galaxy(seed=4, galaxy_class="star_forming", fibres=37)
    m = obs.maps
    good = (m["EMLINE_GFLUX_MASK"] & DONOTUSE) == 0
    ivar = m["EMLINE_GFLUX_IVAR"]
    med = {name: np.median(1 / np.sqrt(ivar[IDX[name]][good[IDX[name]]]))
           for name in ("OII-3727", "Hdel-4102", "Hb-4862", "Ha-6564")}
    assert med["OII-3727"] > med["Hdel-4102"] > med["Hb-4862"]
    assert med["OII-3727"] > 1.6 * med["Hb-4862"]  # 2.1 in the real file of format doc §7


def test_balmer_decrement_at_least_case_b_within_noise(by_class):
    """Per spaxel for extended galaxies; summed over detected spaxels for all (the PSF is ~2 %
    wider at Hβ than at Hα, which moves a compact source's per-spaxel ratios by a few per cent,
    as in real cubes)."""
    for cls in CLASSES:
        for obs in by_class[cls]:
            m = obs.maps
            good = (m["EMLINE_GFLUX_MASK"] & DONOTUSE) == 0
            ha, hb = m["EMLINE_GFLUX"][IDX["Ha-6564"]], m["EMLINE_GFLUX"][IDX["Hb-4862"]]
            iva = m["EMLINE_GFLUX_IVAR"][IDX["Ha-6564"]]
            ivb = m["EMLINE_GFLUX_IVAR"][IDX["Hb-4862"]]
            # spaxels where Hβ is detectable (selected on the noiseless model, so the selection
            # does not favour upward noise): zero-clipped fluxes bias fainter ones
            good = (good[IDX["Ha-6564"]] & good[IDX["Hb-4862"]]
                    & (obs.model[IDX["Hb-4862"]] * np.sqrt(ivb) > 3))
            if not good.any():
                continue
            tot_ha, tot_hb = ha[good].sum(), hb[good].sum()
            # neighbouring spaxels' noise is correlated (as in real cubes): the error of a sum
            # is ~2.5x the one from ivar alone (correlation area 4 pi sigma^2, sigma 0.7 spaxel)
            err = 2.5 * np.hypot(np.sqrt(np.sum(1 / iva[good])) / tot_ha,
                                 np.sqrt(np.sum(1 / ivb[good])) / tot_hb)
            assert tot_ha / tot_hb >= 2.86 * (1 - 3 * err), cls
            assert obs.truth["cen_ha_hb"] >= 2.86 * 0.98, cls
            use = good & (obs.model[IDX["Hb-4862"]] * np.sqrt(ivb) > 10)
            if cls == "blueberry" or not use.any():
                continue
            rel = np.hypot(1 / (ha[use] * np.sqrt(iva[use])), 1 / (hb[use] * np.sqrt(ivb[use])))
            assert np.mean(ha[use] / hb[use] >= 2.86 * (1 - 3 * rel)) > 0.99, cls


def test_bpt_placement_by_class(by_class):
    """Stated fractions of central (2.5-arcsec) line ratios measured from the noisy maps."""
    x, y, _ = bpt(by_class["star_forming"])
    assert np.mean(y < k03(x)) >= 0.9  # star-forming disks below Kauffmann et al. 2003
    x, y, _ = bpt(by_class["seyfert"])
    assert np.mean((y > k01(x)) & (y > 1.05 * x + 0.45)) >= 0.8  # above Kewley 2001, Seyfert
    x, y, _ = bpt(by_class["liner"])
    assert np.mean((y > k01(x)) & (y < 1.05 * x + 0.45)) >= 0.8  # above Kewley 2001, LINER
    x, y, _ = bpt(by_class["composite"])
    assert np.mean((y > k03(x)) & (y < k01(x))) >= 0.8  # between the two lines
    x, y, _ = bpt(by_class["retired"])
    assert np.mean(y > k03(x)) >= 0.9  # LIER-like
    x, y, o1 = bpt(by_class["shock_merger"])
    assert np.mean(o1 > -1.0) >= 0.8  # enhanced [OI]/Hα (star-forming: about -1.6)
    _, _, o1_sf = bpt(by_class["star_forming"])
    assert np.median(o1) > np.median(o1_sf) + 0.5
    x, y, _ = bpt(by_class["blueberry"])
    assert np.mean((y < k03(x)) & (y > 0.5) & (x < -1.0)) >= 0.9  # extreme [OIII], metal-poor


def test_equivalent_widths_by_class(by_class):
    ew = {cls: np.array([o.truth["cen_ew_ha"] for o in obs]) for cls, obs in by_class.items()}
    assert np.mean(ew["retired"] < 3) >= 0.9  # WHAN retired
    assert np.mean(ew["liner"] > 3) >= 0.8
    assert np.median(ew["star_forming"]) > 6
    assert np.median(ew["blueberry"]) > 300
    sigma = [np.median(o.maps["EMLINE_GSIGMA"][IDX["Ha-6564"]][
        (o.maps["EMLINE_GSIGMA_MASK"][IDX["Ha-6564"]] & DONOTUSE) == 0])
        for o in by_class["shock_merger"]]
    assert np.median(sigma) > 150  # shocked gas is turbulent


def test_flux_and_snr_in_format_doc_ranges(by_class):
    """Format doc §7: Hα median ~4 (1e-17/spaxel), S/N median ~88; weak lines weak."""
    med_flux, med_snr, heii_snr = [], [], []
    for obs in by_class["star_forming"]:
        m = obs.maps
        good = (m["EMLINE_GFLUX_MASK"] & DONOTUSE) == 0
        f = m["EMLINE_GFLUX"]
        snr = f * np.sqrt(m["EMLINE_GFLUX_IVAR"])
        med_flux.append(np.median(f[IDX["Ha-6564"]][good[IDX["Ha-6564"]]]))
        med_snr.append(np.median(snr[IDX["Ha-6564"]][good[IDX["Ha-6564"]]]))
        heii_snr.append(np.median(snr[IDX["HeII-4687"]][good[IDX["HeII-4687"]]]))
        assert f[IDX["Ha-6564"]][good[IDX["Ha-6564"]]].max() < 2000
        for weak in ("HeI-7067", "ArIII-7753", "NI-5201", "Peta-9017"):
            assert np.median(f[IDX[weak]][good[IDX[weak]]]) <= np.median(
                f[IDX["Hb-4862"]][good[IDX["Hb-4862"]]]) * 0.1
    assert 0.5 < np.median(med_flux) < 30
    assert 10 < np.median(med_snr) < 300
    assert np.median(heii_snr) < 2


def test_same_seed_byte_identical_and_seed_matters():
    a = simulate_galaxy(seed=7, index=3, fibres=19, full=True)
    b = simulate_galaxy(seed=7, index=3, fibres=19, full=True)
    assert a.maps.keys() == b.maps.keys()
    for key in a.maps:
        assert a.maps[key].tobytes() == b.maps[key].tobytes(), key
    assert a.header == b.header and a.truth == pytest.approx(b.truth, nan_ok=True)
    assert np.array_equal(a.spaxel_class, b.spaxel_class)
    c = simulate_galaxy(seed=8, index=3, fibres=19)
    assert c.maps["EMLINE_GFLUX"].tobytes() != a.maps["EMLINE_GFLUX"].tobytes()
    default = simulate_galaxy(seed=7, index=3, fibres=19)  # a full file shows the same data
    assert len(a.maps) == 63 and len(default.maps) == 17
    for key in default.maps:
        assert default.maps[key].tobytes() == a.maps[key].tobytes(), key
    assert default.header == a.header


def test_spaxel_classes_mark_the_nucleus():
    obs = simulate_galaxy(seed=0, galaxy_class="seyfert", fibres=37)
    n = obs.spaxel_class.shape[0]
    assert obs.spaxel_class[n // 2, n // 2] == 3  # Seyfert nucleus dominates the centre
    assert obs.spaxel_class[0, 0] == -1  # no coverage


def test_config_rejects_unknown_keys_and_bad_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SimulationConfig(classes={"quasar": 0.1})
    with pytest.raises(ValidationError):
        SimulationConfig(bundles={20: 1})
    with pytest.raises(ValidationError):
        SimulationConfig(classes={name: 0 for name in BASE_CLASSES})
    with pytest.raises(ValueError, match="unknown class"):
        simulate_galaxy(galaxy_class="quasar")
