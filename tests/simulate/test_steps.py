"""The named steps of one simulated observation and of one drawn galaxy."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from linecube.bits import DAPQUAL, DRP3QUAL, bit_value
from linecube.demarcation import schawinski07
from linecube.lines import C_KMS
from linecube.simulate import SimulationConfig
from linecube.simulate import instrument as ins
from linecube.simulate.galaxy import (
    _footprint,
    _Grid,
    _quality,
    _ring_snr,
    integrated_class,
)
from linecube.simulate.population import (
    HEX_DIAMETER,
    RE_PER_DISK_SCALE,
    ObservationPlan,
    _draw_identity,
    _draw_size,
    draw_galaxy,
    sersic_b,
    stream,
)
from linecube.simulate.survey import AGN_COLUMNS, _agn_catalogue


def plan(i=0, fibres=37):
    return ObservationPlan(i, i, 7443, fibres * 100 + 1, fibres, 7443)


def test_sersic_b_matches_the_exponential_disk_and_de_vaucouleurs():
    assert sersic_b(1.0) == pytest.approx(RE_PER_DISK_SCALE, abs=2e-3)  # b_1 = 1.678
    assert sersic_b(4.0) == pytest.approx(7.669, abs=1e-3)


def test_integrated_class_follows_the_demarcation_lines():
    assert integrated_class(-0.5, schawinski07(-0.5) + 0.1, 10.0) != "liner"
    assert integrated_class(0.3, schawinski07(0.3) - 0.1, 10.0) == "liner"
    # Kauffmann 2003 at x = -0.5: y = 0.61 / -0.55 + 1.30 = 0.1909 (literature coefficients)
    assert integrated_class(-0.5, 0.18, 10.0) != integrated_class(-0.5, 0.20, 10.0)


def test_line_noise_uses_the_continuum_noise_per_pixel():
    wave = np.array([5000.0, 8000.0])
    cont = np.full((2, 3, 3), 0.7)
    sigma_kms = np.full((2, 3, 3), 80.0)
    err = ins.line_noise(np.zeros_like(cont), cont, wave, sigma_kms, sigma0=0.02)
    w = wave[:, None, None]
    dlam = w * np.log(10) * ins.LOG_STEP
    sig_lam = w * sigma_kms / C_KMS
    pix = ins.continuum_noise(cont, w, 0.02)
    np.testing.assert_allclose(err, pix * dlam * np.sqrt(2 * np.sqrt(np.pi) * sig_lam / dlam))


def test_footprint_masks_and_zero_spaxels():
    p = draw_galaxy(0, plan(), SimulationConfig(), galaxy_class="star_forming")
    grid = _Grid(44, p)
    cont_g = np.full((44, 44), 0.5)
    cfg = SimulationConfig(forestar_rate=0.0, fitfailed_rate=0.5)
    foot = _footprint(plan(), grid, cont_g, 0.013, cfg, np.random.default_rng(1))
    assert foot.base.shape == (44, 44) and foot.base.dtype == np.int32
    assert np.all(foot.base[foot.nocov] & ins.BIT["NOCOV"])
    assert np.all(foot.base[foot.fitfailed] & ins.BIT["FITFAILED"])
    assert not foot.star.any() and foot.fitfailed.any()
    assert not np.any(foot.base[foot.analysed & ~foot.fitfailed & ~foot.lowcov])
    np.testing.assert_array_equal(foot.zero, ~foot.analysed | foot.fitfailed)
    assert not foot.analysed[foot.nocov].any()


def test_quality_flags_follow_the_rates():
    always = SimulationConfig(critical_rate=1.0, dapdone_failure_rate=1.0)
    q = _quality(np.random.default_rng(0), always, has_star=True)
    assert q.drp3qual & bit_value(["CRITICAL"], DRP3QUAL)
    assert q.dapqual & bit_value(["DRPCRIT", "CRITICAL", "FORESTAR"], DAPQUAL) == \
        bit_value(["DRPCRIT", "CRITICAL", "FORESTAR"], DAPQUAL)
    assert q.dapdone is False
    never = SimulationConfig(critical_rate=0.0, dapdone_failure_rate=0.0)
    q = _quality(np.random.default_rng(0), never, has_star=False)
    assert q.dapqual == 0 and q.dapdone is True


def test_ring_snr_is_zero_without_analysed_ring_spaxels():
    p = draw_galaxy(0, plan(), SimulationConfig(), galaxy_class="star_forming")
    grid = _Grid(44, p)
    cfg = SimulationConfig(forestar_rate=0.0)
    foot = _footprint(plan(), grid, np.full((44, 44), 0.5), 0.013, cfg,
                      np.random.default_rng(2))
    med, mean = _ring_snr(grid, p, foot)
    assert med > 0 and mean > 0
    foot.analysed[:] = False
    assert _ring_snr(grid, p, foot) == (0.0, 0.0)


def test_identity_puts_a_rare_kind_on_its_host():
    cfg = SimulationConfig()
    rng, srng = stream(0, 0, 1), stream(0, 0, 4)
    who = _draw_identity(plan(), cfg, "double_nucleus", rng, srng)
    assert who.kind == "double_nucleus" and who.cls in ("star_forming", "retired")
    who = _draw_identity(plan(), cfg, "composite", stream(0, 0, 1), stream(0, 0, 4))
    assert who.kind == "" and who.cls == "composite" and who.host == "star_forming"
    with pytest.raises(ValueError, match="unknown class"):
        _draw_identity(plan(), cfg, "quasar", stream(0, 0, 1), stream(0, 0, 4))


def test_size_redshift_sets_the_coverage():
    cfg = SimulationConfig()
    for i in range(20):
        rng = stream(3, i, 1)
        who = _draw_identity(plan(i, 61), cfg, None, rng, stream(3, i, 4))
        size = _draw_size(who, plan(i, 61), cfg, rng)
        assert 0.01 <= size["z"] <= 0.15
        assert size["coverage_re"] * size["re_arcsec"] == pytest.approx(HEX_DIAMETER[61] / 2)
        assert 0 < size["ba"] <= 1 and 0 <= size["inclination"] <= 90


def test_agn_catalogue_keeps_first_observations_found_by_a_method():
    truth = pd.DataFrame({
        "mangaid": ["1-1", "1-2", "1-1"], "plateifu": ["1-101", "1-102", "2-101"],
        "ra": [1.0, 2.0, 1.0], "dec": [0.0, 0.0, 0.0], "z": [0.02, 0.03, 0.02],
        "is_repeat": [False, False, True], "wise_agn": [True, False, True],
        "bat_agn": [False, False, False], "radio_agn": [False, False, False],
        "radio_class": ["", "", ""], "broad_agn": [False, False, False]})
    table = _agn_catalogue(truth)
    assert list(table.columns) == list(AGN_COLUMNS)
    assert table["PLATEIFU"].tolist() == ["1-101"]
    assert list(_agn_catalogue(truth.iloc[:0]).columns) == list(AGN_COLUMNS)


def test_fractions_are_bounded():
    with pytest.raises(ValidationError, match="less than or equal to 0.2"):
        SimulationConfig(rare_kinds={"sf_ring": 0.3})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        SimulationConfig(agn_catalogue={"radio_liner": 1.5})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        SimulationConfig(forestar_rate=-0.1)
