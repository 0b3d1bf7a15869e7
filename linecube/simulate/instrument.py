"""The MaNGA instrument and DAP: footprint, PSF, resolution, noise, binning and mask bits.

Sources of every number are listed in ``docs/simulate.md``.
"""

from __future__ import annotations

import numpy as np

from linecube.bits import DAPPIXMASK
from linecube.lines import C_KMS, FWHM_TO_SIGMA

PIXEL = 0.5  # arcsec per spaxel
BIT = {name: np.int32(1 << bit) for name, bit in DAPPIXMASK.items()}
# Effective wavelengths [Å] of the g, r, i, z bands for the PSF FWHM keywords.
BAND_WAVE = np.array([4770.0, 6231.0, 7625.0, 9134.0])
CUBE_RED_LIMIT = 10353.8  # last LOGCUBE channel [Å]
LOG_STEP = 1e-4  # Δlog10 λ per spectral pixel
FLUX_UNIT = 1e-17  # erg/s/cm^2 of one MAPS flux unit (per spaxel; per Å for flux densities)


def spectral_resolution(wave_obs: np.ndarray) -> np.ndarray:
    """BOSS-spectrograph resolution R(λ): ~1400 at 3600 Å rising to ~2600 at 10300 Å."""
    return 1400.0 + 1200.0 * np.clip((np.asarray(wave_obs) - 3600.0) / 6700.0, 0.0, 1.0)


def instrumental_sigma(wave_obs: np.ndarray) -> np.ndarray:
    """Instrumental dispersion [km/s] at observed wavelength ``wave_obs`` [Å]."""
    return C_KMS * FWHM_TO_SIGMA / spectral_resolution(wave_obs)


def noise_shape(wave_obs: np.ndarray) -> np.ndarray:
    """Relative per-pixel noise vs observed wavelength: blue end noisier, sky-dominated far red."""
    w = np.asarray(wave_obs, dtype=float)
    return 1.0 + 4.0 * np.exp(-(w - 3600.0) / 400.0) + 0.6 / (1.0 + np.exp(-(w - 8700.0) / 150.0))


def psf_fwhm_at(wave_obs: np.ndarray, band_fwhm: np.ndarray) -> np.ndarray:
    """PSF FWHM [arcsec] at ``wave_obs``, interpolated between the g, r, i, z values."""
    return np.interp(wave_obs, BAND_WAVE, band_fwhm)


def hexagon_radius(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hexagonal "radius" of points (x, y): the circumradius of the flat-topped hexagon
    (vertices on the x axis) whose edge passes through the point."""
    ax, ay = np.abs(x), np.abs(y)
    return np.maximum(ay / (np.sqrt(3) / 2), ax + ay / np.sqrt(3))


def footprint(shape: int, circumradius: float, rng: np.random.Generator,
              edge_scatter: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """NOCOV and LOWCOV spaxels of a hexagonal bundle centred on pixel (N//2, N//2).

    The edge is ragged: each spaxel's hexagonal radius is perturbed by ``edge_scatter`` arcsec;
    spaxels 0-0.5 arcsec beyond the hexagon are LOWCOV, farther ones NOCOV (and LOWCOV, as in
    real files).

    Returns:
        (nocov, lowcov), each (N, N) bool.
    """
    c = shape // 2
    yy, xx = np.mgrid[0:shape, 0:shape]
    h = hexagon_radius((xx - c) * PIXEL, (yy - c) * PIXEL)
    t = h - circumradius + rng.normal(0.0, edge_scatter, (shape, shape))
    nocov = t > 0.5
    lowcov = t > 0.0
    return nocov, lowcov


def gaussian_transfer(shape: tuple[int, int], sigma_pix: np.ndarray) -> np.ndarray:
    """Fourier transfer functions of unit-sum Gaussians, one per channel.

    Args:
        shape: (M, M) real-space grid.
        sigma_pix: (C,) Gaussian sigmas in spaxels.

    Returns:
        (C, M, M//2+1) real transfer functions for ``np.fft.rfft2``.
    """
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k2 = ky**2 + kx**2
    s2 = np.asarray(sigma_pix, dtype=float)[:, None, None] ** 2
    return np.exp(-2.0 * np.pi**2 * s2 * k2)


def convolve(cube: np.ndarray, sigma_pix: np.ndarray) -> np.ndarray:
    """Convolve each channel of ``cube`` (C, M, M) with its Gaussian PSF in one FFT batch."""
    spec = np.fft.rfft2(cube, axes=(-2, -1))
    spec *= gaussian_transfer(cube.shape[-2:], sigma_pix)
    return np.fft.irfft2(spec, s=cube.shape[-2:], axes=(-2, -1))


def correlated_noise(rng: np.random.Generator, shape: tuple[int, int, int],
                     sigma_pix: float) -> np.ndarray:
    """Unit-variance Gaussian noise (C, N, N) with a Gaussian spatial correlation of
    ``sigma_pix`` spaxels, like the covariance of reconstructed MaNGA cubes."""
    n = shape[-1]
    k = np.fft.fftfreq(n)
    variance = np.mean(np.exp(-4.0 * np.pi**2 * sigma_pix**2 * (k[:, None] ** 2 + k ** 2)))
    out = convolve(rng.standard_normal(shape), np.full(shape[0], sigma_pix))
    return out / np.sqrt(variance)


def line_noise(flux: np.ndarray, cont: np.ndarray, wave_obs: np.ndarray, sigma_kms: np.ndarray,
               sigma0: float) -> np.ndarray:
    """1-sigma error of a Gaussian line flux, per line and spaxel.

    The per-pixel noise is ``continuum_noise``, ``sigma0 * noise_shape(λ) * sqrt(1 + cont /
    0.5)`` (sky plus the continuum's photon noise); integrating a Gaussian line of observed width ``sigma_kms``
    over the log-λ pixels gives ``pixel_noise * Δλ * sqrt(2 sqrt(pi) σ_λ / Δλ)``; the line's own
    photon noise adds ``0.02 * sigma0 * flux`` in variance.

    Args:
        flux: (L, N, N) true flux [1e-17 erg/s/cm^2/spaxel].
        cont: (L, N, N) continuum under each line [1e-17 erg/s/cm^2/Å/spaxel].
        wave_obs: (L,) observed wavelengths [Å].
        sigma_kms: (L, N, N) observed line dispersion [km/s].
        sigma0: per-pixel noise at red wavelengths [1e-17 erg/s/cm^2/Å/spaxel].
    """
    w = wave_obs[:, None, None]
    dlam = w * np.log(10) * LOG_STEP
    sig_lam = w * sigma_kms / C_KMS
    pix = continuum_noise(cont, w, sigma0)
    var = (pix * dlam) ** 2 * (2 * np.sqrt(np.pi) * sig_lam / dlam)
    var += 0.02 * sigma0 * np.maximum(flux, 0.0)
    return np.sqrt(var)


def continuum_noise(cont: np.ndarray, wave_obs: float | np.ndarray, sigma0: float) -> np.ndarray:
    """Per-pixel noise (sky plus photon noise) over the continuum ``cont`` at ``wave_obs`` [Å]
    (a scalar or an array broadcastable against ``cont``)."""
    return sigma0 * noise_shape(wave_obs) * np.sqrt(1.0 + np.maximum(cont, 0.0) / 0.5)


def hybrid_binid(analysed: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """BINID (5, N, N) of a HYB10 file.

    Channels 0-1 (binned spectra, stellar continua) group spaxels into square bins whose side
    (1, 2, 4 or 8 spaxels) grows as the g-band S/N drops below 10, a stand-in for the Voronoi
    bins; channels 2-4 (emission-line moments and models, spectral indices) number the analysed
    spaxels one by one, as HYB10 does. -1 where a spaxel was not analysed.
    """
    n = analysed.shape[0]
    yy, xx = np.mgrid[0:n, 0:n]
    side = np.select([snr >= 10, snr >= 5, snr >= 2.5], [1, 2, 4], default=8)
    level = np.log2(side).astype(np.int64)
    key = (level * 1_000_000 + (yy // side) * 1000 + xx // side)[analysed]
    _, voronoi = np.unique(key, return_inverse=True)
    out = np.full((5, n, n), -1, dtype=np.int32)
    out[0][analysed] = voronoi
    out[1][analysed] = voronoi
    running = np.arange(int(analysed.sum()), dtype=np.int32)
    for ch in (2, 3, 4):
        out[ch][analysed] = running
    return out
