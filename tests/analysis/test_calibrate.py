"""Noise-calibrated residuals: S/N independence, compact anomalies, the fitted model error."""

import numpy as np
import pytest

from linecube.analysis.calibrate import (
    ResidualCalibration,
    fit_model_variance,
    galaxy_covariates,
    galaxy_statistics,
    peak_contrast,
    read_calibration,
    residual_z,
    robust_reference,
    shape_residual,
    shape_squared_residual,
    smooth_map,
    standardise,
)
from linecube.errors import InputFileError

LINES = ["Hb-4862", "OIII-4960", "OIII-5008", "Ha-6564"]  # OIII-4960 is tied
SIZE = 12
MODEL_ERROR = 0.03  # the stand-in model's own error, network units


def _truth(rng):
    """(L, H, W) smooth noiseless maps in network units (peak ~1)."""
    yy, xx = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    profile = np.exp(-(yy**2 + xx**2) / (2 * rng.uniform(2.5, 3.5) ** 2))
    return np.stack([profile * rng.uniform(0.3, 1.0) for _ in LINES])


def _observe(rng, noise, n):
    """n galaxies: truth + noise of sigma ``noise``; recon = truth + a model error."""
    x_true = np.stack([_truth(rng) for _ in range(n)])
    recon = x_true + rng.normal(0, MODEL_ERROR, x_true.shape)
    x = x_true + rng.normal(0, 1, x_true.shape) * noise
    ivar = np.full(x.shape, 1.0 / noise**2)
    return {"x": x, "recon": recon, "ivar": ivar, "weight": np.ones(x.shape, np.uint8)}


def _calibrate(rng, residual="flux"):
    parts = [_observe(rng, noise, 40) for noise in (0.005, 0.02, 0.08, 0.3)]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    le, ne, mv = [], [], []
    for li in range(len(LINES)):
        r2 = (data["x"][:, li] - data["recon"][:, li]).ravel() ** 2
        a, b, c = fit_model_variance(
            data["recon"][:, li].ravel(), 1 / data["ivar"][:, li].ravel(), r2, 4, 4
        )
        le.append(a), ne.append(b), mv.append(c)
    cal = ResidualCalibration(lines=LINES, level_edges=le, noise_edges=ne, model_var=mv)
    if residual == "shape":
        linear = {"u": data["x"], "u_hat": data["recon"], "ivar_u": data["ivar"],
                  "weight": data["weight"]}
        r2 = shape_squared_residual(linear, cal)
        shape_var = [fit_model_variance(data["recon"][:, li].ravel(),
                                        1 / data["ivar"][:, li].ravel(), r2[:, li].ravel(),
                                        len(le[li]) + 1, len(ne[li]) + 1, edges=(le[li], ne[li]))[2]
                     for li in range(len(LINES))]
        cal = cal.model_copy(update={"residual": "shape", "shape_var": shape_var})
    stats = _stats(data, cal)
    cov = galaxy_covariates(data)
    cal.reference = {k: robust_reference(v, cov) for k, v in stats.items()}
    return cal


def _stats(data, cal):
    z = residual_z(data["x"], data["recon"], data["ivar"], data["weight"], cal)
    stats, _, _ = galaxy_statistics(z, np.full(len(z), 1.0), cal.untied)
    return stats


def _standardised(data, cal):
    cov = galaxy_covariates(data)
    return {k: standardise(v, cov, cal.reference[k]) for k, v in _stats(data, cal).items()}


def test_the_fitted_model_error_is_the_true_one_where_it_dominates():
    rng = np.random.default_rng(0)
    n = 20000
    recon = rng.uniform(0, 1, n)
    noise_var = np.full(n, 1e-6)
    r2 = rng.normal(0, MODEL_ERROR, n) ** 2
    _, _, table = fit_model_variance(recon, noise_var, r2, 2, 1)
    assert np.sqrt(np.asarray(table)) == pytest.approx(MODEL_ERROR, rel=0.1)
    # where the noise alone explains the residuals, no model error is added
    _, _, table = fit_model_variance(recon, np.full(n, 0.01), rng.normal(0, 0.1, n) ** 2, 2, 1)
    assert np.asarray(table).max() < 0.1 * 0.01


@pytest.mark.parametrize("residual", ["flux", "shape"])
def test_the_same_galaxies_score_the_same_at_every_noise_level(residual):
    """The S/N test: only the noise changes; the calibrated scores' expectation does not."""
    rng = np.random.default_rng(1)
    cal = _calibrate(rng, residual)
    z2, peaks, contrasts, l1 = [], [], [], []
    for noise in (0.005, 0.02, 0.08, 0.3):
        data = _observe(np.random.default_rng(2), noise, 60)  # the same truth every time
        z = residual_z(data["x"], data["recon"], data["ivar"], data["weight"], cal)
        z2.append(np.mean(z[:, cal.untied] ** 2))
        standardised = _standardised(data, cal)
        peaks.append(standardised["peak"].mean())
        contrasts.append(standardised["contrast"].mean())
        l1.append(np.abs(data["x"] - data["recon"]).mean())
    assert np.allclose(z2, 1.0, atol=0.1)  # E[z^2] = 1 at every S/N level
    assert np.ptp(peaks) < 1.0  # in units of the calibration galaxies' spread
    assert np.ptp(contrasts) < 1.0
    assert l1[-1] > 5 * l1[0]  # the uncalibrated error grows with the noise


@pytest.mark.parametrize("residual", ["flux", "shape"])
def test_a_compact_anomaly_stands_out_in_the_peak_not_in_the_mean(residual):
    rng = np.random.default_rng(3)
    cal = _calibrate(rng, residual)
    data = _observe(np.random.default_rng(4), 0.02, 40)
    data["x"][0, 2, 5:7, 5:7] += 0.3  # a nucleus of 4 spaxels in [OIII] 5008 only
    stats = _standardised(data, cal)
    assert np.argmax(stats["peak"]) == 0 and stats["peak"][0] > 5
    assert stats["peak"][0] / np.abs(stats["peak"][1:]).max() > stats["mean"][0] / np.abs(
        stats["mean"][1:]
    ).max()


def test_peak_contrast_by_hand():
    values = np.array([0.0, 1.0, 1.0, 2.0, 9.0])  # median 1, MAD 1.4826 * 1
    assert peak_contrast(9.0, values) == pytest.approx(np.log(10.0) - np.log(2.0 + 1.4826))
    # a map with no excess anywhere: the contrast is the peak's own log excess
    assert peak_contrast(3.0, np.array([-1.0, -1.0, -1.0])) == pytest.approx(np.log(4.0))


def test_an_excess_all_over_the_galaxy_has_a_high_peak_but_a_low_contrast():
    """A galaxy whose structure the model misses everywhere vs a nucleus unlike its disk."""
    rng = np.random.default_rng(8)
    cal = _calibrate(rng)
    data = _observe(np.random.default_rng(9), 0.02, 2)
    data["x"][0, 2] += rng.normal(0, 0.2, (SIZE, SIZE))  # model error 7x larger all over
    data["x"][1, 2, 5:7, 5:7] += 0.3  # a nucleus of 4 spaxels
    stats = _stats(data, cal)
    assert stats["peak"][0] > stats["peak"][1]
    assert stats["contrast"][1] > stats["contrast"][0]


def test_tied_lines_do_not_enter_the_chi_square_map():
    rng = np.random.default_rng(5)
    cal = _calibrate(rng)
    data = _observe(np.random.default_rng(6), 0.02, 2)
    before = _stats(data, cal)
    data["x"][0, 1] += 1.0  # OIII-4960, tied to OIII-5008 by the DAP
    after = _stats(data, cal)
    assert after["peak"][0] == pytest.approx(before["peak"][0])


def test_a_few_anomalous_calibration_spaxels_do_not_set_the_scale():
    rng = np.random.default_rng(7)
    n = 20000
    noise_var = np.full(n, 0.01)
    r2 = rng.normal(0, 0.1, n) ** 2
    r2[:100] = 100.0  # 0.5 % wild residuals (an AGN nucleus among the calibration galaxies)
    _, _, table = fit_model_variance(rng.uniform(0, 1, n), noise_var, r2, 1, 1)
    assert np.asarray(table).max() < 0.15 * 0.01  # the noise still explains the rest


def test_smoothing_ignores_masked_spaxels():
    image = np.full((6, 6), 2.0)
    image[0, :] = np.nan
    out = smooth_map(image, 1.0)
    assert np.isnan(out[0]).all() and np.allclose(out[1:], 2.0)


def test_a_malformed_calibration_file_names_the_file(tmp_path):
    bad = tmp_path / "calibration.json"
    bad.write_text('{"lines": ["Ha-6564"]}')
    with pytest.raises(InputFileError, match="calibration.json.*not a linecube residual"):
        read_calibration(bad)
    with pytest.raises(InputFileError, match="no such calibration file"):
        read_calibration(tmp_path / "missing.json")


def test_the_reference_removes_a_trend_with_the_noise_floor():
    rng = np.random.default_rng(9)
    cov = np.column_stack([rng.uniform(-3, -1, 200), rng.uniform(2, 3, 200)])
    values = 2.0 + 1.5 * cov[:, 0] + rng.normal(0, 0.1, 200)
    values[:5] += 50  # anomalies among the calibration galaxies do not pull the trend
    ref = robust_reference(values, cov)
    assert ref[1] == pytest.approx(1.5, abs=0.05) and ref[3] == pytest.approx(0.1, rel=0.3)
    z = standardise(values, cov, ref)
    assert abs(np.median(z[5:])) < 0.2 and z[:5].min() > 100


def test_shape_residual_by_hand():
    recon = np.array([1.0, 2.0, 9.0, 4.0]).reshape(1, 4, 1, 1)  # line 2 (OIII-4960) tied
    var = np.array([1.0, 4.0, 1.0, 16.0]).reshape(1, 4, 1, 1)
    weight = np.ones((1, 4, 1, 1))
    untied = np.array([True, True, False, True])
    x = 3.0 * recon  # the same ratios, 3x brighter: no shape residual in the fitted lines
    r, freedom = shape_residual(x, recon, var, weight, untied)
    assert np.allclose(r[0, :, 0, 0], 0.0)
    # information recon^2 / var: 1, 1, -, 1 -> leverage 1/3 each; the tied line is not fitted
    assert np.allclose(freedom[0, :, 0, 0], [2 / 3, 2 / 3, 1.0, 2 / 3])
    x[0, 0] += 3.0  # one line off: x = [6, 6, 27, 12]
    r, _ = shape_residual(x, recon, var, weight, untied)
    a = (6.0 * 1.0 / 1.0 + 6.0 * 2.0 / 4.0 + 12.0 * 4.0 / 16.0) / 3.0  # = 4
    assert np.allclose(r[0, :, 0, 0], [6.0 - a, 6.0 - 2 * a, 27.0 - 9 * a, 12.0 - 4 * a])
    weight[0, 1] = 0  # a masked line leaves the fit
    _, freedom = shape_residual(x, recon, var, weight, untied)
    assert np.allclose(freedom[0, [0, 3], 0, 0], [0.5, 0.5])


def test_a_galaxy_drawn_too_bright_has_no_shape_excess_but_changed_ratios_do():
    rng = np.random.default_rng(10)
    flux, shape = _calibrate(rng, "flux"), _calibrate(np.random.default_rng(10), "shape")
    data = _observe(np.random.default_rng(11), 0.02, 3)
    data["x"][0] *= 1.5  # every line 50 % brighter than the model draws it
    data["x"][1, 2] *= 1.5  # [OIII] alone 50 % brighter: a changed ratio
    mean_z2 = {name: np.nanmean(residual_z(data["x"], data["recon"], data["ivar"],
                                           data["weight"], cal)[:, cal.untied] ** 2, axis=(1, 2, 3))
               for name, cal in (("flux", flux), ("shape", shape))}
    # brightness alone: the shape residual keeps only the model's own error, scaled by 1.5
    assert mean_z2["flux"][0] > 6 and mean_z2["shape"][0] < 1.5**2 * 1.1
    assert mean_z2["shape"][1] > 10 * mean_z2["shape"][2]  # the ratio change stands out
    assert abs(mean_z2["shape"][2] - 1) < 0.2  # the normal galaxy


def test_a_shape_calibration_needs_its_tables():
    with pytest.raises(ValueError, match="shape_var for each of the 1 lines"):
        ResidualCalibration(lines=["Ha-6564"], level_edges=[[]], noise_edges=[[]],
                            model_var=[[[0.0]]], residual="shape")
