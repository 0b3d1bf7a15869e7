"""Spatial structure of the simulated galaxies: extended AGN, rare kinds, per-spaxel truth."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from linecube.simulate import SimulationConfig, cosmology, emission, simulate_galaxy
from linecube.simulate.config import RARE_KINDS
from linecube.simulate.galaxy import SPAXEL_CODES, _components, _Grid, integrated_class
from linecube.simulate.population import (
    NLR_SCATTER,
    ObservationPlan,
    draw_galaxy,
    nlr_radius_relation,
    plan_survey,
)

CODE_OF_KIND = {"sf_ring": "ring", "nuclear_ring": "nuclear_ring", "stripped_tail": "tail",
                "double_nucleus": "second_nucleus", "dust_lane": "dust_lane",
                "agn_cloud": "agn_cloud"}


def plan(i, fibres=61):
    return ObservationPlan(i, i, 7443, fibres * 100 + 1, fibres, 7443)


def test_nlr_radius_follows_chen_2019_within_its_scatter():
    gals = [draw_galaxy(2, plan(i), SimulationConfig(), galaxy_class="seyfert")
            for i in range(400)]
    log_l = np.array([g.log_l_oiii_nucleus for g in gals])
    log_r = np.log10([g.nlr_radius_kpc for g in gals])
    resid = log_r - nlr_radius_relation(log_l)
    assert abs(np.median(resid)) < NLR_SCATTER / 4
    assert 0.75 * NLR_SCATTER < np.std(resid) < 1.25 * NLR_SCATTER
    assert np.polyfit(log_l, log_r, 1)[0] == pytest.approx(0.42, abs=0.15)


def test_enlr_extent_in_the_maps_follows_the_drawn_radius():
    """The intrinsic ENLR holds 95 % of its flux inside the drawn radius (plus its 0.3-arcsec
    soft edge and a spaxel), and its measured size follows the drawn one."""
    measured, drawn = [], []
    for i in range(30):
        p = draw_galaxy(4, plan(i, 127), SimulationConfig(), galaxy_class="seyfert")
        grid = _Grid(72, p)
        cont = np.zeros_like(grid.r)
        enlr = [c for c in _components(grid, p, cont, np.ones(35)) if c.code == "enlr"][0]
        order = np.argsort(grid.rc.ravel())
        cum = np.cumsum(enlr.halpha.ravel()[order]) / enlr.halpha.sum()
        r95 = grid.rc.ravel()[order][np.searchsorted(cum, 0.95)]
        kpc = float(cosmology.kpc_per_arcsec(p.z))
        measured.append(r95 * kpc)
        drawn.append(p.nlr_radius_kpc)
        assert r95 <= p.nlr_radius_kpc / kpc + 0.8
    ratio = np.array(measured) / np.array(drawn)
    assert 0.7 < np.median(ratio) < 1.1
    assert spearmanr(drawn, measured).statistic > 0.8


def test_ionisation_falls_along_the_cone():
    p = draw_galaxy(1, plan(0, 127), SimulationConfig(), galaxy_class="seyfert")
    grid = _Grid(72, p)
    comps = _components(grid, p, np.zeros_like(grid.r), np.ones(35))
    enlr = [c for c in comps if c.code == "enlr"][0]
    ratios = emission.line_ratios(enlr.state)
    o3 = np.log10(ratios[emission.IDX["OIII-5008"]] / ratios[emission.IDX["Hb-4862"]])
    radius = p.nlr_radius_kpc / float(cosmology.kpc_per_arcsec(p.z))
    inner, outer = grid.rc < 0.2 * radius, (grid.rc > 0.8 * radius) & (grid.rc < radius)
    assert o3[inner].mean() > o3[outer].mean() + 0.25
    assert p.cone_sides in (1, 2) and 20 <= p.cone_opening <= 45


def test_liner_has_extended_low_ionisation_emission():
    obs = simulate_galaxy(seed=3, index=0, galaxy_class="liner", fibres=61)
    assert obs.truth["nlr_radius_kpc"] > 0.9
    assert (obs.spaxel_class == SPAXEL_CODES["liner_extended"]).any() or \
        (obs.spaxel_class == SPAXEL_CODES["liner"]).sum() > 20


@pytest.mark.parametrize("kind", RARE_KINDS)
def test_rare_kinds_keep_normal_ratios_and_mark_their_spaxels(kind):
    obs = [simulate_galaxy(seed=9, index=i, galaxy_class=kind, fibres=(37, 61)[i % 2])
           for i in range(8)]
    truth = [o.truth for o in obs]
    assert all(t["class"] == kind and t["anomaly_kind"] == kind for t in truth)
    assert all(t["host_class"] in ("star_forming", "retired") for t in truth)
    assert np.mean([t["ratio_normal"] for t in truth]) >= 0.8
    code = SPAXEL_CODES[CODE_OF_KIND[kind]]
    assert np.mean([(o.spaxel_class == code).any() for o in obs]) >= 0.6
    assert np.mean([0 < t["anomaly_fraction"] < 0.6 for t in truth]) >= 0.6


def test_normal_galaxies_have_no_anomalous_spaxels():
    for cls in ("star_forming", "retired"):
        for i in range(4):
            t = simulate_galaxy(seed=9, index=i, galaxy_class=cls, fibres=37).truth
            assert t["anomaly_kind"] == "none" and t["anomaly_fraction"] == 0.0
            assert t["ratio_normal"] and t["integrated_class"] == cls


def test_blueberries_and_shocks_are_not_ratio_normal():
    for cls in ("blueberry", "shock_merger"):
        t = simulate_galaxy(seed=9, index=0, galaxy_class=cls, fibres=37).truth
        assert not t["ratio_normal"] and t["anomaly_fraction"] > 0.5


def test_integrated_class_follows_bpt_and_whan():
    assert integrated_class(-0.6, -0.2, 20) == "star_forming"
    assert integrated_class(0.1, 0.0, 1.0) == "retired"
    assert integrated_class(-0.2, 0.1, 10) == "composite"
    assert integrated_class(0.0, 0.9, 10) == "seyfert"
    assert integrated_class(0.2, 0.1, 10) == "liner"


def test_every_rare_kind_in_a_300_galaxy_survey_and_plan_is_a_prefix():
    cfg = SimulationConfig()
    plans = plan_survey(300, 0, cfg)
    forced = [p.forced_kind for p in plans if p.forced_kind and not p.is_repeat]
    assert sorted(forced) == sorted(RARE_KINDS)
    assert plan_survey(40, 0, cfg) == plans[:40]
    for p in plans:
        if p.is_repeat:
            assert p.forced_kind == plans[p.galaxy].forced_kind
    classes = [draw_galaxy(0, p, cfg).galaxy_class for p in plans if not p.is_repeat]
    for kind in RARE_KINDS:
        assert kind in classes
    share = np.mean([c in RARE_KINDS for c in classes])
    assert share < 0.2
    none = SimulationConfig(min_per_kind=0, rare_kinds={k: 0 for k in RARE_KINDS})
    assert not any(draw_galaxy(0, p, none).galaxy_class in RARE_KINDS
                   for p in plan_survey(100, 0, none))


def test_rare_kinds_must_fit_their_hosts():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rare kinds take"):
        SimulationConfig(classes={"star_forming": 0.05}, rare_kinds={"sf_ring": 0.2})
