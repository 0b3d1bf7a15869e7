"""Noise-calibrated residuals: every reconstruction error in units of its expected error.

For spaxel s of line l, the residual r = u - u_hat, in linear units u = flux / scale (the
store's stretch undone, where the DAP's noise is Gaussian), is expressed as

    z = r / sqrt(1 / ivar_u + sigma_model^2(l, level, noise))

where ``sigma_model`` is the model's own error, fitted per line on a grid of reconstructed
level (u_hat) and noise (1 / ivar_u) bins so that E[z^2] = 1 in every bin (the mean of z^2
clipped at 25, so that the few anomalous spaxels of the calibration galaxies cannot set it).
A perfect model of a normal galaxy then gives z ~ N(0, 1) whatever the galaxy's brightness or
S/N.

Two residuals (``ResidualCalibration.residual``):

* ``flux``: r = u - u_hat, as above.
* ``shape`` (the default of ``linecube embed``): the line *ratios* of each spaxel against the
  model's. The reconstruction is first scaled to the spaxel's own brightness,
  a = sum_l u_l u_hat_l / V_l / sum_l u_hat_l^2 / V_l over the untied lines (V_l = 1 / ivar_u +
  sigma_model^2 of the flux residual), and r = u - a u_hat. A clump or a gradient of a normal
  galaxy that the model draws too faint or too bright scales every line alike and leaves no
  shape residual; an AGN nucleus, a shock or an extreme-[OIII] starburst changes the ratios
  and does. Each r is divided by sqrt(V_shape (1 - h_l)), where h_l is the line's leverage on
  a (the share of the fit it carries) and V_shape uses a sigma_model fitted to the shape
  residuals of the calibration galaxies.

The calibration is fitted on normal data the network did not train on (the validation
galaxies of its run) and saved with the model; it is never refitted on the galaxies being
ranked. It also holds the reference distribution of every galaxy-level statistic on the
calibration galaxies: its robust linear trend with the galaxy's noise floor and coverage and
the scale around it. Scores are standardised against that reference, so that each galaxy is
compared with normal galaxies of the same S/N and IFU size, and statistics of different lines
and of different fold models share one scale.

Galaxy-level statistics (see :func:`galaxy_statistics`):

* ``line_<name>``: mean z^2 of one line over its valid spaxels;
* ``mean``: mean over valid spaxels of the per-spaxel chi-square of the untied lines,
  standardised as (sum z^2 - n) / sqrt(2 n);
* ``peak``: mean of the ``k`` highest values of that chi-square map after smoothing with a
  Gaussian of the PSF's width, ``k`` = one PSF beam in pixels. It keeps compact anomalies
  (a nucleus covering 2 % of the map) that the mean dilutes.
* ``contrast``: how far that peak stands above the galaxy's own smoothed map,
  log(1 + peak+) - log(1 + median+ + MAD) over the galaxy's valid pixels (x+ = max(x, 0)).
  A large, well-resolved normal galaxy whose structure the model smooths has an excess
  everywhere and a modest contrast; a nucleus or a region unlike the rest of its galaxy has a
  high one. A galaxy anomalous all over (a compact starburst filling its map) has a low one:
  ``mean`` finds those.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from linecube.lines import FWHM_TO_SIGMA, TIED_LINES

Z2_CLIP = 25.0  # z^2 is clipped here when fitting, so rare anomalous spaxels cannot set the scale
CHI2_1_CLIPPED_MEAN = 0.99998  # E[min(chi2_1, 25)]: the fitted target, 1 - 2e-5
DEFAULT_PSF_FWHM = 2.5  # arcsec, MaNGA's median reconstructed PSF in g (Law et al. 2016)
MIN_FREEDOM = 0.05  # floor of 1 - leverage: a line that carries the whole amplitude fit


class ResidualCalibration(BaseModel):
    """The fitted model error and the reference distribution of galaxy statistics.

    Attributes:
        lines: line names in tensor order.
        level_edges: per line, interior edges of the u_hat bins (u = flux / scale) (n_level - 1 values).
        noise_edges: per line, interior edges of the log10(1 / ivar_u) bins (n_noise - 1).
        model_var: per line, (n_level, n_noise) sigma_model^2 of the flux residual, in u units
            squared.
        residual: ``flux`` or ``shape`` (see the module docstring): what ``z`` measures.
        shape_var: per line, (n_level, n_noise) sigma_model^2 of the shape residual on the same
            bins (``shape`` only; empty for ``flux``).
        reference: statistic name -> [intercept, slope_floor, slope_coverage, scale] of its
            trend with noise floor and coverage on the calibration galaxies.
        n_galaxies: calibration galaxies.
        n_spaxels: calibration spaxels per line.
    """

    model_config = ConfigDict(extra="forbid")

    lines: list[str]
    level_edges: list[list[float]]
    noise_edges: list[list[float]]
    model_var: list[list[list[float]]]
    residual: Literal["flux", "shape"] = "flux"
    shape_var: list[list[list[float]]] = Field(default_factory=list)
    reference: dict[str, list[float]] = Field(default_factory=dict)
    n_galaxies: int = 0
    n_spaxels: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_tables(self) -> ResidualCalibration:
        if self.residual == "shape" and len(self.shape_var) != len(self.lines):
            raise ValueError(f"a shape calibration needs shape_var for each of the "
                             f"{len(self.lines)} lines, got {len(self.shape_var)}")
        return self

    @property
    def untied(self) -> np.ndarray:
        """(L,) bool: lines whose flux the DAP fits freely (tied doublet partners excluded)."""
        return np.array([name not in TIED_LINES for name in self.lines])


def read_calibration(path) -> ResidualCalibration:
    """Read a ``calibration.json``; a malformed file is an InputFileError naming it."""
    from pathlib import Path

    from pydantic import ValidationError

    from linecube.errors import InputFileError

    path = Path(path)
    try:
        return ResidualCalibration.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise InputFileError(path, "no such calibration file") from None
    except (ValidationError, ValueError) as exc:
        raise InputFileError(path, f"not a linecube residual calibration: {exc}") from None


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values, side="right")


def expected_variance(
    recon: np.ndarray,
    ivar: np.ndarray,
    weight: np.ndarray,
    cal: ResidualCalibration,
    tables: list[list[list[float]]] | None = None,
) -> np.ndarray:
    """1 / ivar + sigma_model^2 for every spaxel, (B, L, H, W); NaN where weight is 0.

    ``tables`` are the per-line sigma_model^2 tables on the calibration's bins
    (default ``cal.model_var``, the flux residual's)."""
    valid = weight > 0
    with np.errstate(divide="ignore"):
        noise = np.where(valid, 1.0 / np.where(valid, ivar, 1.0), np.nan)
    out = np.full(recon.shape, np.nan)
    for li in range(len(cal.lines)):
        v = noise[:, li]
        ok = valid[:, li]
        lvl = _bin_index(recon[:, li][ok], np.asarray(cal.level_edges[li]))
        nse = _bin_index(np.log10(v[ok]), np.asarray(cal.noise_edges[li]))
        table = np.asarray((cal.model_var if tables is None else tables)[li])
        line_out = np.full(v.shape, np.nan)
        line_out[ok] = v[ok] + table[lvl, nse]
        out[:, li] = line_out
    return out


def residual_z(
    x: np.ndarray,
    recon: np.ndarray,
    ivar: np.ndarray,
    weight: np.ndarray,
    cal: ResidualCalibration,
) -> np.ndarray:
    """Calibrated residuals: (x - recon) / sqrt(1 / ivar + sigma_model^2), or the shape
    residual of :func:`shape_residual` in its own units, as ``cal.residual`` says.

    Args:
        x, recon, ivar, weight: (B, L, H, W) in the same units.
        cal: the calibration.

    Returns:
        (B, L, H, W) float64, NaN where weight is 0.
    """
    x = x.astype(np.float64)
    var = expected_variance(recon, ivar, weight, cal)
    if cal.residual == "flux":
        return (x - recon) / np.sqrt(var)
    r, freedom = shape_residual(x, recon, var, weight, cal.untied)
    return r / np.sqrt(expected_variance(recon, ivar, weight, cal, cal.shape_var) * freedom)


def shape_residual(
    x: np.ndarray, recon: np.ndarray, var: np.ndarray, weight: np.ndarray, untied: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The residual of each spaxel's line ratios: x - a recon, with the amplitude a fitted.

    a = sum_l x_l recon_l / var_l / sum_l recon_l^2 / var_l over the valid ``untied`` lines of
    the spaxel (0 where they have no reconstructed flux). Its fit absorbs one degree of
    freedom, shared by the lines in proportion to their leverage h_l = (recon_l^2 / var_l) /
    sum_l recon_l^2 / var_l; the residual of a line with leverage h has variance var (1 - h).

    Args:
        x, recon, var, weight: (B, L, H, W); ``var`` the flux residual's expected variance.
        untied: (L,) bool, lines that enter the fit.

    Returns:
        ``(r, freedom)``, both (B, L, H, W): the residual and 1 - h, at least
        ``MIN_FREEDOM`` (1 for lines outside the fit).
    """
    fit = (weight > 0) & untied[None, :, None, None]
    precision = np.where(fit, 1.0 / np.where(fit, var, 1.0), 0.0)
    model = np.where(fit, recon, 0.0)
    information = (precision * model**2).sum(axis=1, keepdims=True)
    has_fit = information > 0
    safe = np.where(has_fit, information, 1.0)
    amplitude = np.where(has_fit, (precision * model * np.where(fit, x, 0.0)).sum(
        axis=1, keepdims=True) / safe, 0.0)
    leverage = np.where(has_fit, precision * model**2 / safe, 0.0)
    return x - amplitude * recon, np.clip(1.0 - leverage, MIN_FREEDOM, 1.0)


def psf_sigma_pixels(psf_fwhm: np.ndarray, pixel_scale: float) -> np.ndarray:
    """Gaussian sigma of the PSF in store pixels; unknown FWHM -> MaNGA's median."""
    fwhm = np.where(np.isfinite(psf_fwhm) & (psf_fwhm > 0), psf_fwhm, DEFAULT_PSF_FWHM)
    return fwhm * FWHM_TO_SIGMA / pixel_scale


def chi2_map(z: np.ndarray, untied: np.ndarray) -> np.ndarray:
    """Per-spaxel chi-square of the untied lines, standardised: (sum z^2 - n) / sqrt(2 n).

    Args:
        z: (B, L, H, W) calibrated residuals, NaN where invalid.
        untied: (L,) bool, lines that count.

    Returns:
        (B, H, W), NaN where no untied line is valid.
    """
    zz = z[:, untied] ** 2
    n = np.isfinite(zz).sum(axis=1)
    total = np.nansum(zz, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total - n) / np.sqrt(2.0 * n), np.nan)


def smooth_map(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of an (H, W) map that ignores NaN (normalised convolution)."""
    from scipy.ndimage import gaussian_filter

    valid = np.isfinite(image)
    num = gaussian_filter(np.where(valid, image, 0.0), sigma, mode="constant")
    den = gaussian_filter(valid.astype(np.float64), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, num / den, np.nan)


def beam_pixels(sigma: float) -> int:
    """Pixels in one PSF beam (2 pi sigma^2), at least 1."""
    return max(1, int(round(2.0 * math.pi * sigma * sigma)))


GALAXY_STATISTICS = ("peak", "mean", "contrast")  # galaxy-level pooled statistics


def galaxy_statistics(
    z: np.ndarray, sigma: np.ndarray, untied: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Galaxy-level pooled statistics of calibrated residuals.

    Args:
        z: (B, L, H, W) calibrated residuals, NaN where invalid.
        sigma: (B,) PSF sigma in pixels.
        untied: (L,) bool, lines that enter the chi-square map.

    Returns:
        ``(stats, per_line, anomaly_map)``: ``stats`` maps each of ``GALAXY_STATISTICS``
        (``peak``, ``mean``, ``contrast``) to (B,);
        ``per_line`` is (B, L) mean z^2 per line; ``anomaly_map`` is (B, H, W), the smoothed
        chi-square map (NaN outside the valid spaxels).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a line with no valid spaxel
        per_line = np.nanmean(z**2, axis=(2, 3))
    chi = chi2_map(z, untied)
    smoothed = np.stack([smooth_map(c, s) for c, s in zip(chi, sigma, strict=True)])
    stats = {name: np.full(len(z), np.nan) for name in GALAXY_STATISTICS}
    for i, (c, s) in enumerate(zip(smoothed, sigma, strict=True)):
        values = c[np.isfinite(c)]
        if values.size:
            stats["mean"][i] = float(np.nanmean(chi[i]))
            k = min(beam_pixels(float(s)), values.size)
            stats["peak"][i] = float(np.partition(values, values.size - k)[-k:].mean())
            stats["contrast"][i] = peak_contrast(stats["peak"][i], values)
    return stats, per_line, smoothed


def peak_contrast(peak: float, values: np.ndarray) -> float:
    """log(1 + peak+) - log(1 + median+ + MAD) of a galaxy's smoothed chi-square ``values``
    (1-D, its valid pixels): the peak against the galaxy's own typical excess."""
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))
    return math.log1p(max(peak, 0.0)) - math.log1p(max(median, 0.0) + mad)


MIN_TREND_GALAXIES = 20  # fewer calibration galaxies: no trend, a plain median and MAD


def noise_floor_of(ivar: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(B,) noise floor: median over the valid spaxels of all lines of 1 / sqrt(ivar), in the
    units of ``ivar`` (B, L, H, W); NaN for a galaxy without a valid spaxel."""
    valid = weight > 0
    out = np.full(len(valid), np.nan)
    for i in range(len(valid)):
        if valid[i].any():
            out[i] = float(np.median(1.0 / np.sqrt(ivar[i][valid[i]])))
    return out


def coverage_of(weight: np.ndarray) -> np.ndarray:
    """(B,) number of spaxels with any valid line of ``weight`` (B, L, H, W); it grows with
    the IFU size."""
    return (weight > 0).any(axis=1).sum(axis=(1, 2)).astype(np.float64)


def galaxy_covariates(data: dict[str, np.ndarray]) -> np.ndarray:
    """(B, 2): log10 noise floor (:func:`noise_floor_of`, network units) and log10 coverage
    (:func:`coverage_of`) of each galaxy."""
    covered = coverage_of(data["weight"])
    with np.errstate(divide="ignore"):
        return np.column_stack([
            np.log10(noise_floor_of(data["ivar"], data["weight"])),
            np.where(covered > 0, np.log10(covered), np.nan),
        ])


def standardise(value: np.ndarray, covariates: np.ndarray, reference: list[float]) -> np.ndarray:
    """(value - expected) / scale, the expectation being the calibration galaxies' trend with
    noise floor and coverage: ``reference`` = [intercept, slope_floor, slope_coverage, scale]."""
    a, b_floor, b_cover, scale = reference
    expected = a + b_floor * covariates[:, 0] + b_cover * covariates[:, 1]
    return (np.asarray(value, dtype=np.float64) - expected) / scale


def robust_reference(values: np.ndarray, covariates: np.ndarray) -> list[float]:
    """Robust linear trend of a galaxy statistic with noise floor and coverage, and the scale
    (1.4826 MAD) around it, on the calibration galaxies.

    The expected score of a normal galaxy then depends neither on its S/N nor on its IFU
    size: each galaxy is compared with normal galaxies of the same noise and coverage. With
    fewer than ``MIN_TREND_GALAXIES`` galaxies the trend is flat (median only).

    Returns:
        [intercept, slope_floor, slope_coverage, scale]; a zero MAD gives scale 1.
    """
    from sklearn.linear_model import HuberRegressor

    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & np.isfinite(covariates).all(axis=1)
    y, x = values[ok], covariates[ok]
    if not y.size:
        return [0.0, 0.0, 0.0, 1.0]
    if len(y) >= MIN_TREND_GALAXIES and np.ptp(x, axis=0).min() > 0:
        centre = np.median(x, axis=0)
        fit = HuberRegressor(max_iter=500).fit(x - centre, y)
        slopes = fit.coef_
        intercept = float(fit.intercept_ - slopes @ centre)
    else:
        slopes, intercept = np.zeros(2), float(np.median(y))
    resid = y - intercept - x @ slopes
    mad = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return [intercept, float(slopes[0]), float(slopes[1]), mad if mad > 0 else 1.0]


def fit_model_variance(
    recon: np.ndarray,
    noise_var: np.ndarray,
    resid2: np.ndarray,
    n_level: int,
    n_noise: int,
    edges: tuple[list[float], list[float]] | None = None,
) -> tuple[list[float], list[float], list[list[float]]]:
    """sigma_model^2 of one line on a (level, noise) grid of quantile bins.

    In each bin, sigma_model^2 >= 0 is the value that makes the mean of
    min(r^2 / (1 / ivar + sigma_model^2), 25) equal to that of a chi-square with one degree of
    freedom (bisection; 0 when the noise alone already explains the residuals).

    Args:
        recon: (S,) reconstructed level of each valid spaxel of the line.
        noise_var: (S,) 1 / ivar.
        resid2: (S,) squared residual.
        n_level, n_noise: bins along each axis.
        edges: interior (level, log10 noise) edges to use instead of quantiles.

    Returns:
        ``(level_edges, noise_edges, model_var)`` with interior edges and an
        (n_level, n_noise) table.
    """
    log_noise = np.log10(noise_var)
    if edges is None:
        level_edges = np.unique(np.quantile(recon, np.linspace(0, 1, n_level + 1)[1:-1]))
        noise_edges = np.unique(np.quantile(log_noise, np.linspace(0, 1, n_noise + 1)[1:-1]))
    else:
        level_edges, noise_edges = (np.asarray(e, dtype=np.float64) for e in edges)
    lvl = _bin_index(recon, level_edges)
    nse = _bin_index(log_noise, noise_edges)
    table = np.zeros((len(level_edges) + 1, len(noise_edges) + 1))
    fallback = _solve_variance(noise_var, resid2)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            sel = (lvl == i) & (nse == j)
            table[i, j] = _solve_variance(noise_var[sel], resid2[sel]) if sel.sum() >= 20 else (
                fallback
            )
    return level_edges.tolist(), noise_edges.tolist(), table.tolist()


def _solve_variance(noise_var: np.ndarray, resid2: np.ndarray) -> float:
    """sigma^2 >= 0 with mean(min(resid2 / (noise_var + sigma^2), 25)) = E[min(chi2_1, 25)]."""
    if not resid2.size:
        return 0.0

    def excess(s2: float) -> float:
        return float(np.minimum(resid2 / (noise_var + s2), Z2_CLIP).mean()) - CHI2_1_CLIPPED_MEAN

    if excess(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, float(np.mean(resid2)) + 1e-12
    while excess(hi) > 0:
        hi *= 2
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def reconstruct(model, store, rows: np.ndarray, device) -> dict[str, np.ndarray]:
    """Store arrays of ``rows`` with the model's reconstruction added as ``recon`` (float64).

    Args:
        model: an autoencoder in eval mode on ``device``; ``forward(x (B, L, C, H, W))``, the
            input built by ``model_input``.
        store: the store.
        rows: (B,) sorted store rows.
        device: torch device of the model.

    Returns:
        ``x``, ``weight``, ``ivar``, ``recon`` (B, L, H, W) in network units, the same in
        linear flux / scale units ``u``, ``u_hat``, ``ivar_u`` (see :func:`linear_units`) and
        the model ``output``.
    """
    import torch

    from linecube.models.autoencoder import model_input

    data = store.read(rows)
    with torch.inference_mode():
        x = torch.from_numpy(data["x"]).to(device)
        weight = torch.from_numpy(data["weight"]).to(device)
        output = model(model_input(model, x, weight))
    data["recon"] = output.recon.squeeze(2).float().cpu().numpy().astype(np.float64)
    data["output"] = output
    data.update(linear_units(data, store.meta.preprocess))
    return data


def linear_units(data: dict[str, np.ndarray], preprocess: dict) -> dict[str, np.ndarray]:
    """Observation, reconstruction and inverse variance in linear units u = flux / scale.

    The store's stretch (e.g. asinh) compresses a faint spaxel's noise non-linearly, so its
    linearised inverse variance misdescribes the residual of a noise-dominated spaxel; in u the
    DAP's noise is Gaussian with ivar_u = ivar_x * (d stretch / d u)^2 at the observed u.

    Returns:
        ``u``, ``u_hat``, ``ivar_u``: (B, L, H, W) float64.
    """
    from linecube.preprocess.transform import stretch_slope, unstretch

    kind, a = preprocess.get("stretch", "asinh"), preprocess.get("softening", 0.01)
    u = unstretch(data["x"].astype(np.float64), kind, a)
    slope = stretch_slope(u, kind, a)
    return {
        "u": u,
        "u_hat": unstretch(data["recon"], kind, a),
        "ivar_u": data["ivar"].astype(np.float64) * slope**2,
    }


def fit_calibration(
    model,
    store,
    rows: np.ndarray,
    device,
    batch_size: int = 32,
    *,
    residual: Literal["flux", "shape"] = "shape",
    n_level: int = 8,
    n_noise: int = 8,
    max_spaxels: int = 400_000,
) -> ResidualCalibration:
    """Fit the model error and the reference statistics on normal galaxies ``rows``.

    Passes over the galaxies (the model is re-run each time, so memory stays bounded): the
    first gathers (u_hat, 1/ivar_u, r^2) of valid spaxels in linear units (at most
    ``max_spaxels`` per line, an even subsample) and fits the flux residual's
    ``sigma_model^2`` per line and bin; for ``shape`` a second fits the shape residual's on the
    same bins; the last computes the galaxy statistics of the same galaxies and records their
    reference (:func:`robust_reference`).

    Args:
        model: the autoencoder, in eval mode on ``device``.
        store: the store the rows index.
        rows: calibration galaxies (store rows); the model must not have trained on them.
        device: torch device.
        batch_size: galaxies per forward pass.
        residual: ``shape`` or ``flux`` (see the module docstring).
        n_level, n_noise: bins of reconstructed level and of noise per line.
        max_spaxels: spaxels kept per line for the fit.

    Returns:
        The calibration.
    """
    from linecube.errors import ConfigError

    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) < 3:
        raise ConfigError(f"the residual calibration needs at least 3 validation galaxies, got "
                          f"{len(rows)}: raise data.val_fraction or train on more galaxies")
    lines = list(store.meta.lines)

    def flux_r2(data):
        return (data["u"] - data["u_hat"]) ** 2

    samples = _residual_samples(model, store, rows, device, batch_size, flux_r2, max_spaxels)
    level_edges, noise_edges, model_var = [], [], []
    for s in samples:
        if s.shape[1] == 0:
            level_edges.append([]), noise_edges.append([]), model_var.append([[0.0]])
            continue
        le, ne, table = fit_model_variance(s[0], s[1], s[2], n_level, n_noise)
        level_edges.append(le), noise_edges.append(ne), model_var.append(table)
    cal = ResidualCalibration(lines=lines, level_edges=level_edges, noise_edges=noise_edges,
                              model_var=model_var, n_galaxies=len(rows),
                              n_spaxels=[int(s.shape[1]) for s in samples])
    if residual == "shape":
        cal = _fit_shape_variance(cal, model, store, rows, device, batch_size, max_spaxels)
    stats = galaxy_scores(model, store, rows, device, cal, batch_size, standardised=False)
    covariates = stats.pop("covariates")
    cal.reference = {name: robust_reference(value, covariates) for name, value in stats.items()}
    return cal


def _residual_samples(
    model, store, rows: np.ndarray, device, batch_size: int, squared_residual, max_spaxels: int
) -> list[np.ndarray]:
    """Per line, (3, S) rows u_hat, 1 / ivar_u and ``squared_residual(data)`` (B, L, H, W) of
    its valid spaxels over ``rows``, evenly subsampled to at most ``max_spaxels``."""
    n_lines = len(store.meta.lines)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_lines)]
    for start in range(0, len(rows), batch_size):
        data = reconstruct(model, store, rows[start : start + batch_size], device)
        valid = data["weight"] > 0
        r2 = squared_residual(data)
        for li in range(n_lines):
            ok = valid[:, li]
            parts[li].append(np.stack([data["u_hat"][:, li][ok],
                                       1.0 / data["ivar_u"][:, li][ok], r2[:, li][ok]]))
    samples = []
    for part in parts:
        s = np.concatenate(part, axis=1) if part else np.zeros((3, 0))
        if s.shape[1] > max_spaxels:
            s = s[:, np.linspace(0, s.shape[1] - 1, max_spaxels).astype(np.int64)]
        samples.append(s)
    return samples


def shape_squared_residual(data: dict[str, np.ndarray], cal: ResidualCalibration) -> np.ndarray:
    """r^2 / (1 - h) of the shape residual (:func:`shape_residual`) of ``data`` (``u``,
    ``u_hat``, ``ivar_u``, ``weight``: (B, L, H, W)), weighted by ``cal``'s flux residual
    variance: the quantity whose mean the shape residual's sigma_model^2 is fitted to."""
    var = expected_variance(data["u_hat"], data["ivar_u"], data["weight"], cal)
    r, freedom = shape_residual(data["u"], data["u_hat"], var, data["weight"], cal.untied)
    return r**2 / freedom


def _fit_shape_variance(
    cal: ResidualCalibration, model, store, rows: np.ndarray, device, batch_size: int,
    max_spaxels: int,
) -> ResidualCalibration:
    """``cal`` (a fitted flux calibration) made a shape calibration: sigma_model^2 of the shape
    residual, r^2 / (1 - h) (see :func:`shape_residual`), fitted on the flux table's bins."""

    samples = _residual_samples(model, store, rows, device, batch_size,
                                lambda data: shape_squared_residual(data, cal), max_spaxels)
    shape_var = []
    for li, s in enumerate(samples):
        if s.shape[1] == 0:
            shape_var.append([[0.0]])
            continue
        edges = (cal.level_edges[li], cal.noise_edges[li])
        shape_var.append(fit_model_variance(
            s[0], s[1], s[2], len(edges[0]) + 1, len(edges[1]) + 1, edges=edges)[2])
    return cal.model_copy(update={"residual": "shape", "shape_var": shape_var})


def psf_sigma_of(store, rows: np.ndarray) -> np.ndarray:
    """(B,) PSF sigma in store pixels of ``rows`` (catalogue ``psf_fwhm``, else the median)."""
    from linecube.preprocess.transform import NATIVE_SCALE

    pixel_scale = store.meta.preprocess.get("pixel_scale") or NATIVE_SCALE
    cat = store.catalogue
    fwhm = (cat["psf_fwhm"].to_numpy(dtype=np.float64)[rows] if "psf_fwhm" in cat
            else np.full(len(rows), np.nan))
    return psf_sigma_pixels(fwhm, pixel_scale)


def batch_scores(
    data: dict[str, np.ndarray], sigma: np.ndarray, cal: ResidualCalibration, standardised: bool
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Galaxy scores of one reconstructed batch (see :func:`galaxy_statistics`).

    Returns:
        ``({"mean": (B,), "peak": (B,), "line_<name>": (B,)...}, anomaly_map (B, H, W))``,
        each score standardised by the calibration reference when ``standardised``; else
        with ``covariates`` (B, 2) added (see :func:`galaxy_covariates`).
    """
    z = residual_z(data["u"], data["u_hat"], data["ivar_u"], data["weight"], cal)
    stats, per_line, anomaly_map = galaxy_statistics(z, sigma, cal.untied)
    stats.update({f"line_{name}": per_line[:, li] for li, name in enumerate(cal.lines)})
    covariates = galaxy_covariates(data)
    if standardised:
        return {n: standardise(v, covariates, cal.reference[n]) for n, v in stats.items()}, (
            anomaly_map
        )
    return {**stats, "covariates": covariates}, anomaly_map


def galaxy_scores(
    model, store, rows: np.ndarray, device, cal: ResidualCalibration, batch_size: int = 32,
    standardised: bool = True,
) -> dict[str, np.ndarray]:
    """Galaxy scores of ``rows`` (each (B,); ``covariates`` (B, 2) when not standardised)."""
    out: dict[str, list[np.ndarray]] = {}
    sigma = psf_sigma_of(store, rows)
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        data = reconstruct(model, store, part, device)
        stats, _ = batch_scores(data, sigma[start : start + len(part)], cal, standardised)
        for name, value in stats.items():
            out.setdefault(name, []).append(value)
    return {name: np.concatenate(parts) for name, parts in out.items()}
