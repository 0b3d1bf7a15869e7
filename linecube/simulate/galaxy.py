"""One simulated MaNGA observation: true emission-line maps, PSF, noise and DAP-style products.

:func:`simulate_galaxy` returns every DR17 array in memory (35-channel GFLUX/IVAR/MASK,
SFLUX/IVAR/MASK, GEW, GVEL and GSIGMA with IVAR/MASK, SPX_SKYCOO, SPX_ELLCOO, SPX_SNR, BINID,
plus the heavier extensions of a full file when asked), the PRIMARY keywords, a truth-table row
and a DAPall row. Everything is vectorised over lines and spaxels: the 35 line maps, the
continuum and the kinematic moments go through the PSF in one FFT batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linecube import __version__
from linecube.bits import CRITICAL_BIT, DAPQUAL, DRP3QUAL, bit_value, consolidate_donotuse
from linecube.demarcation import kauffmann03, kewley01_nii, schawinski07
from linecube.lines import C_KMS, FWHM_TO_SIGMA, LOG_HA_LUMINOSITY_PER_SFR
from linecube.simulate import cosmology, emission
from linecube.simulate import instrument as ins
from linecube.simulate.config import SimulationConfig
from linecube.simulate.population import (
    FULL_EXTRAS,
    HEX_DIAMETER,
    MAP_SIZES,
    OBSERVATION,
    RE_PER_DISK_SCALE,
    GalaxyParams,
    ObservationPlan,
    draw_galaxy,
    plan_survey,
    sersic_b,
    stream,
)

PAD = 10  # minimum padding [spaxels] around the map for the PSF convolution
FFT_SIZES = (64, 72, 75, 80, 81, 90, 96, 100, 108)  # 5-smooth sizes: fast FFTs
APERTURE = 1.25  # radius [arcsec] of the DAPall "central" aperture (2.5 arcsec diameter)
H_LITTLE = 0.7  # h of H0 = 70; DAPall and SPX_ELLCOO distances are in h^-1 units (h = 1)
NAMES = emission.NAMES
IDX = emission.IDX
# SFLUX channels the DAP leaves empty (their passband is a neighbour's).
SFLUX_EMPTY = ("OII-3729", "HeI-3889", "NeIII-3968", "NI-5201")
# Kinematic ties beyond the flux ties (format doc §4): line -> partner.
SIGMA_TIES = {"OII-3729": "OII-3727", "HeI-3889": "Hzet-3890", "NI-5201": "NI-5199",
              **{name: partner for name, (partner, _) in emission.TIES.items()}}
# Codes of the per-spaxel truth map: the component that dominates each spaxel's Hα.
SPAXEL_CODES = {"no_coverage": -1, "star_forming": 1, "diffuse": 2, "seyfert": 3, "liner": 4,
                "composite": 5, "shock": 6, "blueberry": 7, "enlr": 8, "liner_extended": 9,
                "ring": 10, "nuclear_ring": 11, "tail": 12, "second_nucleus": 13,
                "dust_lane": 14, "agn_cloud": 15}
# A spaxel is anomalous when a rare component dominates it.
ANOMALOUS_CODES = tuple(code for name, code in SPAXEL_CODES.items()
                        if name not in ("no_coverage", "star_forming", "diffuse"))
NEARBOUND_SIGMA = (0.74, 929.8)  # km/s
SIGMA_LIMITS = (0.69, 1000.0)
PSF_BAND_RATIO = np.array([1.02, 1.0, 0.995, 0.995])  # g, r, i, z PSF FWHM relative to r
NOISE_SIGMA0 = 0.013  # median per-pixel noise at red wavelengths (before ``noise_scale``)
SNR_BAND_DEPTH = np.array([1.0, 1.3, 1.2, 0.8])  # g, r, i, z continuum S/N relative to g
CONT_FLOOR = 1e-6  # continuum floor of equivalent widths [1e-17 erg/s/cm^2/Å/spaxel]
DAPALL_MISSING = -999.0  # DAPall placeholder where the DAP did not finish
N_SPECINDEX = 46  # spectral indices of a DR17 SPECINDEX extension


@dataclass
class SimulatedObservation:
    """A simulated observation in memory.

    Attributes:
        plan: where the observation sits in the survey (PLATEIFU, MANGAID, ...).
        params: the galaxy's intrinsic parameters.
        maps: DR17 EXTNAME -> array, (C, N, N) or (N, N), float32 / int32, native byte order.
        header: PRIMARY keywords.
        truth: truth-table row (class, physical parameters, noiseless central line ratios).
        dapall: DAPall row.
        model: (35, N, N) float32 noiseless Gaussian-line fluxes (after dust and PSF).
        spaxel_class: (N, N) int8 truth map: the component dominating each spaxel
            (``SPAXEL_CODES``; anomalous where the code is in ``ANOMALOUS_CODES``).
        dapdone: False when the simulated DAP "faulted" (no MAPS file is written).
    """

    plan: ObservationPlan
    params: GalaxyParams
    maps: dict[str, np.ndarray]
    header: dict
    truth: dict
    dapall: dict
    model: np.ndarray
    spaxel_class: np.ndarray
    dapdone: bool


@dataclass
class _Component:
    """Hα surface brightness (intrinsic, before dust) of one ionising source, with its line
    template, kinematics and code for the spaxel class map."""

    code: str
    halpha: np.ndarray  # (M, M)
    state: dict
    velocity: np.ndarray | float
    sigma: float


def simulate_galaxy(seed: int = 0, index: int = 0, config: SimulationConfig | None = None,
                    galaxy_class: str | None = None, fibres: int | None = None,
                    full: bool = False) -> SimulatedObservation:
    """Simulate one observation in memory.

    Without ``galaxy_class`` and ``fibres`` this is exactly observation ``index`` of
    ``simulate_survey(..., seed=seed, config=config)`` (same arrays as its file).

    Args:
        seed: the survey seed.
        index: observation number in the survey.
        config: simulation settings (defaults when None).
        galaxy_class: force a class (one of ``CLASSES``: an ionisation class or a rare kind).
        fibres: force a bundle size (19, 37, 61, 91 or 127); the observation is then a first
            observation of its galaxy.
        full: also fill the extensions only a full 64-HDU file has.
    """
    config = config or SimulationConfig()
    plan = plan_survey(index + 1, seed, config)[index]
    if fibres is not None:
        if fibres not in HEX_DIAMETER:
            raise ValueError(f"fibres must be one of {list(HEX_DIAMETER)}, got {fibres}")
        plan = ObservationPlan(index, index, plan.plate, fibres * 100 + 1, fibres, plan.plate,
                               plan.forced_kind)
    return simulate_observation(plan, seed, config, galaxy_class=galaxy_class, full=full)


def simulate_observation(plan: ObservationPlan, seed: int, config: SimulationConfig,
                         galaxy_class: str | None = None, full: bool = False
                         ) -> SimulatedObservation:
    """Simulate the observation ``plan`` of a survey with seed ``seed``.

    The steps draw from the observation stream in this order: conditions (map size, PSF,
    noise level), footprint, Gaussian line fits, summed fluxes, quality flags. The extensions
    of a full file have their own stream, so full and default files show the same data.
    """
    p = draw_galaxy(seed, plan, config, galaxy_class=galaxy_class)
    rng = stream(seed, plan.index, OBSERVATION)
    cond = _conditions(plan, p, config, rng)
    sky = _true_sky(cond.grid, p, cond.band_fwhm)
    foot = _footprint(plan, cond.grid, sky.cont_g, cond.sigma0, config, rng)
    fits = _gaussian_fits(sky, foot, cond.sigma0, rng)
    maps = _dap_maps(cond.grid, p, foot, fits, _summed_fluxes(sky, foot, fits, rng))
    if full:
        maps.update(_full_extensions(stream(seed, plan.index, FULL_EXTRAS), maps, p, sky, foot,
                                     fits))
    quality = _quality(rng, config, has_star=bool(foot.star.any()))
    ring_snr = _ring_snr(cond.grid, p, foot)
    header = _header(plan, p, cond, quality, ring_snr, nbins=int(maps["BINID"][0].max() + 1))
    spx_class = _truth_map(sky.components, sky.per_component, sky.lane, p, foot.nocov)
    truth = _truth_row(plan, p, sky, cond, foot, quality)
    truth.update(_anomaly_columns(p, sky.flux, sky.cont, spx_class, foot.nocov))
    dapall = _dapall_row(plan, p, fits, cond.grid, foot, ring_snr, quality)
    return SimulatedObservation(plan, p, maps, header, truth, dapall, sky.flux.astype(np.float32),
                                spx_class, quality.dapdone)


@dataclass
class _Conditions:
    """The observation's first draws: map size, PSF and noise level."""

    n: int  # map side [spaxels]
    band_fwhm: np.ndarray  # (4,) g, r, i, z PSF FWHM [arcsec]
    sigma0: float  # per-pixel noise at red wavelengths [1e-17 erg/s/cm^2/Å/spaxel]
    grid: _Grid


def _conditions(plan: ObservationPlan, p: GalaxyParams, config: SimulationConfig,
                rng: np.random.Generator) -> _Conditions:
    """Map size of the bundle, seeing (``psf_fwhm`` scattered by 8 %) and noise level."""
    n = int(rng.choice(MAP_SIZES[plan.fibres]))
    band_fwhm = config.psf_fwhm * np.exp(rng.normal(0, 0.08)) * PSF_BAND_RATIO
    sigma0 = NOISE_SIGMA0 * config.noise_scale * float(np.exp(rng.normal(0, 0.2)))
    return _Conditions(n, band_fwhm, sigma0, _Grid(n, p))


@dataclass
class _LineFits:
    """The DAP's Gaussian line fits and what later steps reuse; arrays (35, N, N).

    ``gflux``, ``ivar``, ``gew``, ``gvel``, ``gsig`` and their ivars are float32 with the DAP
    ties applied; ``gmask`` is the consolidated int32 mask.
    """

    inst: np.ndarray  # (35, 1, 1) instrumental dispersion [km/s]
    sig_obs: np.ndarray  # observed dispersion (gas and instrument) [km/s]
    err: np.ndarray  # 1-sigma flux errors
    eps: np.ndarray  # unit-variance flux noise (the summed fluxes share part of it)
    outside: np.ndarray  # (35,) bool: lines redshifted beyond the cube
    zero_lines: np.ndarray  # bool: no fit (values and ivars are 0)
    gflux: np.ndarray
    ivar: np.ndarray
    gmask: np.ndarray
    gew: np.ndarray
    gvel: np.ndarray
    gvel_ivar: np.ndarray
    gsig: np.ndarray
    gsig_ivar: np.ndarray


def _gaussian_fits(sky: _Sky, foot: _Footprint, sigma0: float,
                   rng: np.random.Generator) -> _LineFits:
    """Noisy Gaussian fluxes, one tied velocity and per-line dispersions, with DAP masks."""
    flux, n = sky.flux, foot.snr.shape[0]
    inst = ins.instrumental_sigma(sky.wave_obs)[:, None, None]
    sig_obs = np.sqrt(sky.sig_gas[None] ** 2 + inst**2)
    err = ins.line_noise(flux, sky.cont, sky.wave_obs, sig_obs, sigma0)
    eps = ins.correlated_noise(rng, flux.shape, 0.7)
    gflux = np.maximum(flux + err * eps, 0.0)
    snr_line = flux / err
    snr_all = np.sqrt(np.sum(snr_line**2, axis=0))
    err_v = sig_obs[IDX["Ha-6564"]] / np.maximum(snr_all, 0.3)
    gvel = sky.vel + err_v * rng.standard_normal((n, n))
    err_s = sig_obs / (np.sqrt(2) * np.maximum(snr_line, 0.5))
    gsig = sig_obs + err_s * rng.standard_normal(flux.shape)
    nearbound = (gsig < NEARBOUND_SIGMA[0]) | (gsig > NEARBOUND_SIGMA[1])
    gsig = np.clip(gsig, *SIGMA_LIMITS)
    outside = sky.wave_obs > ins.CUBE_RED_LIMIT

    zero = foot.zero
    gmask = np.broadcast_to(foot.base, flux.shape).copy()
    gmask[nearbound & ~zero] |= ins.BIT["NEARBOUND"]
    gmask[outside] |= ins.BIT["NOVALUE"]
    zero_lines = zero[None] | outside[:, None, None]
    ivar = 1.0 / err**2
    gflux[zero_lines] = 0.0
    ivar[zero_lines] = 0.0

    f32 = np.float32
    gflux, ivar = gflux.astype(f32), ivar.astype(f32)
    gvel = np.where(zero_lines, 0.0, gvel[None]).astype(f32)  # tied: one velocity
    gvel_ivar = np.where(zero_lines, 0.0, 1 / err_v[None] ** 2).astype(f32)
    gsig = np.where(zero_lines, 0.0, gsig).astype(f32)
    gsig_ivar = np.where(zero_lines, 0.0, 1 / err_s**2).astype(f32)
    _tie_dr17(gflux, ivar, gmask, gsig, gsig_ivar)
    gmask = consolidate_donotuse(gmask)
    gew = np.where(zero_lines, 0.0, gflux / np.maximum(sky.cont, CONT_FLOOR)).astype(f32)
    return _LineFits(inst=inst, sig_obs=sig_obs, err=err, eps=eps, outside=outside,
                     zero_lines=zero_lines, gflux=gflux, ivar=ivar, gmask=gmask, gew=gew,
                     gvel=gvel, gvel_ivar=gvel_ivar, gsig=gsig, gsig_ivar=gsig_ivar)


def _summed_fluxes(sky: _Sky, foot: _Footprint, fits: _LineFits,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """EMLINE_SFLUX, _IVAR and _MASK: moment fluxes over each line's passband, which holds
    its blended neighbour, with 25 % larger errors and noise correlated with the fits'."""
    flux, err = sky.flux, fits.err
    s_true = flux.copy()
    s_true[IDX["OII-3727"]] += flux[IDX["OII-3729"]]
    s_true[IDX["Hzet-3890"]] += flux[IDX["HeI-3889"]]
    s_true[IDX["Heps-3971"]] += flux[IDX["NeIII-3968"]]
    s_err = 1.25 * err
    s_err[IDX["OII-3727"]] = 1.25 * np.hypot(err[IDX["OII-3727"]], err[IDX["OII-3729"]])
    eps_s = 0.8 * fits.eps + 0.6 * rng.standard_normal(flux.shape)
    sflux = s_true + s_err * eps_s
    s_ivar = 1.0 / s_err**2
    smask = np.broadcast_to(foot.base, flux.shape).copy()
    smask[fits.outside] |= ins.BIT["NOVALUE"]
    empty = [IDX[name] for name in SFLUX_EMPTY]
    smask[empty] |= ins.BIT["NOVALUE"]
    s_zero = fits.zero_lines.copy()
    s_zero[empty] = True
    sflux[s_zero], s_ivar[s_zero] = 0.0, 0.0
    return {"EMLINE_SFLUX": sflux.astype(np.float32),
            "EMLINE_SFLUX_IVAR": s_ivar.astype(np.float32),
            "EMLINE_SFLUX_MASK": consolidate_donotuse(smask)}


def _dap_maps(grid: _Grid, p: GalaxyParams, foot: _Footprint, fits: _LineFits,
              summed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The default MAPS extensions: coordinates, S/N, BINID, summed and Gaussian fits."""
    f32 = np.float32
    kpc = float(cosmology.kpc_per_arcsec(p.z))
    skycoo = np.stack([grid.sx_map, grid.sy_map]).astype(f32)
    ellcoo = np.stack([grid.r_map, grid.r_map / p.re_arcsec, grid.r_map * kpc * H_LITTLE,
                       grid.theta_map]).astype(f32)
    return {
        "SPX_SKYCOO": skycoo, "SPX_ELLCOO": ellcoo, "SPX_SNR": foot.snr.astype(f32),
        "BINID": ins.hybrid_binid(foot.analysed, foot.snr), **summed,
        "EMLINE_GFLUX": fits.gflux, "EMLINE_GFLUX_IVAR": fits.ivar,
        "EMLINE_GFLUX_MASK": fits.gmask, "EMLINE_GEW": fits.gew,
        "EMLINE_GVEL": fits.gvel, "EMLINE_GVEL_IVAR": fits.gvel_ivar,
        "EMLINE_GVEL_MASK": fits.gmask.copy(),
        "EMLINE_GSIGMA": fits.gsig, "EMLINE_GSIGMA_IVAR": fits.gsig_ivar,
        "EMLINE_GSIGMA_MASK": fits.gmask.copy(),
    }


@dataclass
class _Quality:
    """Observation-level quality bits and whether the simulated DAP finished."""

    drp3qual: int
    dapqual: int
    dapdone: bool


def _quality(rng: np.random.Generator, config: SimulationConfig, has_star: bool) -> _Quality:
    """DRP3QUAL (``critical_rate`` CRITICAL, 3 % a warning bit), DAPQUAL and DAPDONE."""
    drp3qual = 0
    if rng.random() < config.critical_rate:
        drp3qual |= bit_value(["CRITICAL"], DRP3QUAL)
    if rng.random() < 0.03:
        drp3qual |= bit_value([str(rng.choice(["HIGHSCAT", "BADFLUX", "VARIABLELSF"]))], DRP3QUAL)
    dapqual = bit_value(["FORESTAR"], DAPQUAL) if has_star else 0
    if drp3qual & (1 << CRITICAL_BIT):
        dapqual |= bit_value(["DRPCRIT", "CRITICAL"], DAPQUAL)
    dapdone = not rng.random() < config.dapdone_failure_rate
    return _Quality(drp3qual, dapqual, dapdone)


def _ring_snr(grid: _Grid, p: GalaxyParams, foot: _Footprint) -> tuple[float, float]:
    """Median and mean g-band S/N of the analysed spaxels between 1 and 1.5 Re (0 if none)."""
    ring = foot.analysed & (grid.r_map >= p.re_arcsec) & (grid.r_map <= 1.5 * p.re_arcsec)
    if not ring.any():
        return 0.0, 0.0
    return float(np.median(foot.snr[ring])), float(np.mean(foot.snr[ring]))


def _header(plan: ObservationPlan, p: GalaxyParams, cond: _Conditions, quality: _Quality,
            ring_snr: tuple[float, float], nbins: int) -> dict:
    """PRIMARY keywords of the MAPS file."""
    snr_med, snr_ring = ring_snr
    fwhm = [round(float(v), 3) for v in cond.band_fwhm]
    bands = list(zip("GRIZ", SNR_BAND_DEPTH, strict=True))
    return {
        "PLATEIFU": plan.plateifu, "MANGAID": plan.mangaid, "PLATEID": plan.plate,
        "IFUDSGN": str(plan.ifudesign), "OBJRA": p.ra, "OBJDEC": p.dec, "IFURA": p.ra,
        "IFUDEC": p.dec, "EBVGAL": p.ebv_gal, "RVGAL": emission.R_V,
        "GFWHM": fwhm[0], "RFWHM": fwhm[1], "IFWHM": fwhm[2], "ZFWHM": fwhm[3],
        "DRP3QUAL": quality.drp3qual, "DAPQUAL": quality.dapqual,
        "SCINPVEL": round(C_KMS * p.z, 3), "VSTEP": 69.0247,
        "REFF": round(p.re_arcsec, 4), "ECOOPA": round(p.pa, 3), "ECOOELL": round(1 - p.ba, 4),
        **{f"SNR{b}MED": round(snr_med * c, 4) for b, c in bands},
        **{f"SNR{b}RING": round(snr_ring * c, 4) for b, c in bands},
        "BINKEY": "HYB10", "NBINS": nbins, "LCSIM": (True, "simulated by linecube"),
        "LCSIMVER": __version__,
    }


@dataclass
class _Sky:
    """The noiseless observed galaxy on the (N, N) map: after dust and the PSF."""

    wave_obs: np.ndarray  # (35,) observed wavelengths [Å]
    flux: np.ndarray  # (35, N, N) line fluxes
    cont_g: np.ndarray  # (N, N) g-band continuum
    cont: np.ndarray  # (35, N, N) continuum under each line
    vel: np.ndarray  # (N, N) Hα-weighted velocity
    sig_gas: np.ndarray  # (N, N) Hα-weighted gas dispersion
    components: list[_Component]
    per_component: np.ndarray  # (K, N, N) observed Hα of each component
    lane: np.ndarray  # (N, N) extra E(B-V) of a dust lane


def _true_sky(grid: _Grid, p: GalaxyParams, band_fwhm: np.ndarray) -> _Sky:
    """Components, continuum, dust and kinematic moments, through one batched PSF FFT."""
    wave_obs = emission.WAVE * (1 + p.z)
    cont_int = _continuum(grid, p)  # (M, M) continuum at rest 6000 Å, before the PSF
    g_sed = float(_sed(ins.BAND_WAVE[0] / (1 + p.z), p))
    sed = _sed(emission.WAVE, p) / g_sed  # line continua relative to the g band
    cont_int = cont_int * g_sed  # g-band continuum
    components = _components(grid, p, cont_int, sed)
    cont_int = cont_int + _second_core(grid, p, cont_int)
    lane = _dust_lane(grid, p)
    ebv = p.ebv_center * np.exp(-grid.r / (2 * p.re_arcsec)) + lane
    trans = emission.attenuation(ebv)  # (35, M, M)
    t_ha = trans[IDX["Ha-6564"]]

    lines = np.zeros((len(NAMES), grid.m, grid.m))
    w = np.zeros((3, grid.m, grid.m))  # Hα-weighted moments: F, F v, F (sigma^2 + v^2)
    for comp in components:
        ratios = emission.line_ratios(comp.state)
        ratios = ratios.reshape(ratios.shape + (1,) * (3 - ratios.ndim))
        lines += ratios * (comp.halpha / emission.HA_HB)
        f_ha = comp.halpha * t_ha
        w[0] += f_ha
        w[1] += f_ha * comp.velocity
        w[2] += f_ha * (comp.sigma**2 + np.asarray(comp.velocity) ** 2)
    lines *= trans

    psf_sigma = ins.psf_fwhm_at(wave_obs, band_fwhm) * FWHM_TO_SIGMA / ins.PIXEL
    sigma_ha = psf_sigma[IDX["Ha-6564"]]
    cube = [lines, cont_int[None], w, np.stack([c.halpha * t_ha for c in components])]
    sigmas = [psf_sigma, [band_fwhm[0] * FWHM_TO_SIGMA / ins.PIXEL], [sigma_ha] * 3,
              [sigma_ha] * len(components)]
    conv = ins.convolve(np.concatenate(cube), np.concatenate([np.ravel(s) for s in sigmas]))
    conv = conv[:, grid.crop[0], grid.crop[1]]
    k = len(NAMES)
    cont_g = np.maximum(conv[k], 0.0)
    wsum = np.maximum(conv[k + 1], 1e-12)
    vel = conv[k + 2] / wsum
    return _Sky(wave_obs=wave_obs, flux=np.maximum(conv[:k], 0.0), cont_g=cont_g,
                cont=cont_g[None] * sed[:, None, None], vel=vel,
                sig_gas=np.sqrt(np.maximum(conv[k + 3] / wsum - vel**2, 1.0)),
                components=components, per_component=conv[k + 4:], lane=lane[grid.crop])


@dataclass
class _Footprint:
    """Coverage and analysis of each spaxel; arrays (N, N)."""

    nocov: np.ndarray  # bool: outside the bundle
    lowcov: np.ndarray  # bool: at its ragged edge
    star: np.ndarray  # bool: under a foreground star
    snr: np.ndarray  # g-band S/N per pixel
    g_noise: np.ndarray  # g-band continuum noise
    analysed: np.ndarray  # bool: fitted by the DAP
    fitfailed: np.ndarray  # bool: fit failed
    base: np.ndarray  # int32 DAPPIXMASK bits every line of the spaxel carries

    @property
    def zero(self) -> np.ndarray:
        """Spaxels without a fit: not analysed or FITFAILED."""
        return ~self.analysed | self.fitfailed


def _footprint(plan: ObservationPlan, grid: _Grid, cont_g: np.ndarray, sigma0: float,
               config: SimulationConfig, rng: np.random.Generator) -> _Footprint:
    """Hexagon footprint, foreground star, g-band S/N and the analysed / FITFAILED spaxels."""
    n = grid.n
    radius = HEX_DIAMETER[plan.fibres] / 2
    nocov, lowcov = ins.footprint(n, radius, rng)
    star = np.zeros((n, n), bool)
    if rng.random() < config.forestar_rate:
        r_s, t_s = radius * rng.uniform(0.3, 0.85), rng.uniform(0, 2 * np.pi)
        d2 = (grid.sx_map - r_s * np.cos(t_s)) ** 2 + (grid.sy_map - r_s * np.sin(t_s)) ** 2
        star = (d2 < rng.uniform(1.5, 3.0) ** 2) & ~nocov
    g_noise = ins.continuum_noise(cont_g, ins.BAND_WAVE[0], sigma0)
    snr = np.where(nocov, 0.0, cont_g / g_noise * np.exp(rng.normal(0, 0.05, (n, n))))
    analysed = ~nocov & ~star & (snr >= 1.0)
    fitfailed = analysed & (rng.random((n, n)) < config.fitfailed_rate)
    base = np.zeros((n, n), np.int32)
    base[lowcov] |= ins.BIT["LOWCOV"]
    base[nocov] |= ins.BIT["NOCOV"]
    base[star] |= ins.BIT["FORESTAR"]
    base[~nocov & ~star & ~analysed] |= ins.BIT["NOVALUE"]
    base[fitfailed] |= ins.BIT["FITFAILED"]
    return _Footprint(nocov, lowcov, star, snr, g_noise, analysed, fitfailed, base)


class _Grid:
    """Sky and galaxy-frame coordinates on the padded (M, M) grid and the (N, N) map."""

    def __init__(self, n: int, p: GalaxyParams):
        self.n = n
        self.m = next(size for size in FFT_SIZES if size >= n + 2 * PAD)
        pad = (self.m - n) // 2
        c = n // 2 + pad
        yy, xx = np.mgrid[0:self.m, 0:self.m]
        self.sx = -(xx - c) * ins.PIXEL  # +x toward +RA (east), as SPX_SKYCOO
        self.sy = (yy - c) * ins.PIXEL
        pa = np.radians(p.pa)  # east of north
        self.u = self.sx * np.sin(pa) + self.sy * np.cos(pa)  # along the major axis
        self.v = -self.sx * np.cos(pa) + self.sy * np.sin(pa)
        self.r = np.hypot(self.u, self.v / p.ba)  # elliptical (deprojected) radius
        self.phi = np.arctan2(self.v / p.ba, self.u)  # azimuth in the disk plane
        self.rc = np.hypot(self.sx, self.sy)  # circular radius
        self.crop = crop = (slice(pad, pad + n),) * 2
        self.sx_map, self.sy_map = self.sx[crop], self.sy[crop]
        self.r_map = self.r[crop]
        self.theta_map = np.degrees(self.phi[crop]) % 360

    def aperture_sum(self, image: np.ndarray) -> float:
        """Sum of ``image`` within the central 2.5-arcsec-diameter aperture."""
        return float(image[self.rc <= APERTURE].sum())


def _sed(wave_rest: np.ndarray, p: GalaxyParams) -> np.ndarray:
    """Continuum shape f_λ, 1 at 6000 Å: a power law with a 4000 Å break of strength D4000."""
    brk = 1.0 - (1.0 - 1.0 / p.d4000) / (1.0 + np.exp((np.asarray(wave_rest) - 4000.0) / 40.0))
    return (np.asarray(wave_rest) / 6000.0) ** p.sed_beta * brk


def _continuum(grid: _Grid, p: GalaxyParams) -> np.ndarray:
    """Sérsic continuum at rest 6000 Å [per spaxel], ``cont_re`` at one effective radius."""
    nn = p.sersic_n
    r = np.hypot(grid.r, 0.25) / p.re_arcsec
    return p.cont_re * np.exp(-sersic_b(nn) * (r ** (1 / nn) - 1))


def _flux_units(log_l: float, z: float) -> float:
    """Total flux [1e-17 erg/s/cm^2] of a source of log luminosity ``log_l`` at ``z``."""
    d = float(cosmology.luminosity_distance_cm(z))
    return 10 ** (log_l - np.log10(4 * np.pi) - 2 * np.log10(d) - np.log10(ins.FLUX_UNIT))


def _normalised(image: np.ndarray) -> np.ndarray:
    return image / image.sum()


def _components(grid: _Grid, p: GalaxyParams, cont_int: np.ndarray,
                sed: np.ndarray) -> list[_Component]:
    """The ionising sources of the galaxy with their intrinsic Hα maps [per spaxel]."""
    t = p.extra["templates"]
    rotation = (p.v_max * (2 / np.pi) * np.arctan(grid.r / p.r_turn)
                * np.sin(np.radians(p.inclination)) * np.cos(grid.phi))
    v_disk = p.v_sys + rotation
    cont_ha = cont_int * sed[IDX["Ha-6564"]]
    out: list[_Component] = []
    if p.host == "star_forming" and p.galaxy_class != "blueberry":
        out += _star_forming(grid, p, v_disk)
    diffuse = p.ew_diffuse * (1 + p.z) * cont_ha
    out.append(_Component("diffuse", diffuse, t["diffuse"], v_disk, p.sigma_gas + 15.0))
    sf_ap = grid.aperture_sum(out[0].halpha) if out[0].code == "star_forming" else 0.0
    out += _nuclear(grid, p, cont_ha, sf_ap, rotation, v_disk)
    out += _rare_gas(grid, p, cont_ha, v_disk)
    if p.agn_kind in ("liner", "composite"):
        agn = [c for c in out if c.code in ("liner", "liner_extended", "composite")]
        p.log_l_oiii_nucleus = _log_l_oiii(agn, p.z)
    return out


def _star_forming(grid: _Grid, p: GalaxyParams, v_disk: np.ndarray) -> list[_Component]:
    """The HII-region disk (exponential, spiral arms, clumps) and its rare structures."""
    ex = p.extra
    total = _flux_units(p.log_l_ha_sf, p.z)
    rd = 1.1 * p.re_arcsec / RE_PER_DISK_SCALE
    arms = 1 + ex["arm_amplitude"] * np.cos(
        2 * (grid.phi - np.log(np.maximum(grid.r, 1e-3) / rd)
             / np.tan(np.radians(ex["arm_pitch"]))) - ex["arm_phase"])
    disk = np.exp(-grid.r / rd) * arms * ins.PIXEL**2 / (2 * np.pi * rd**2 * p.ba)
    clumps = np.zeros_like(disk)
    if p.n_clumps:
        cu = ex["clump_r"] * np.cos(ex["clump_phi"])
        cv = ex["clump_r"] * np.sin(ex["clump_phi"]) * p.ba
        pa = np.radians(p.pa)
        csx = cu * np.sin(pa) - cv * np.cos(pa)
        csy = cu * np.cos(pa) + cv * np.sin(pa)
        s2 = ex["clump_sigma"][:, None, None] ** 2
        d2 = (grid.sx[None] - csx[:, None, None]) ** 2 + (grid.sy[None] - csy[:, None, None]) ** 2
        wts = ex["clump_weight"] / ex["clump_weight"].sum()
        clumps = np.sum(wts[:, None, None] * np.exp(-d2 / (2 * s2)) / (2 * np.pi * s2),
                        axis=0) * ins.PIXEL**2
    halpha = total * (0.7 * disk + 0.3 * clumps)
    oh = np.clip(p.oh_center + p.oh_gradient * grid.r / p.re_arcsec, *emission.OH_RANGE)
    disk_sigma = 45.0 if p.galaxy_class == "shock_merger" else p.sigma_gas
    kind, share = p.galaxy_class, p.structure_amount
    out = []
    if kind in ("sf_ring", "nuclear_ring"):
        radius = p.structure_r
        width = max((0.12 if kind == "sf_ring" else 0.25) * radius, 0.5)
        ring = (np.exp(-(grid.r - radius) ** 2 / (2 * width**2))
                * (1 + 0.4 * np.cos(3 * grid.phi + np.radians(p.structure_pa))))
        oh_ring = float(np.clip(p.oh_center + p.oh_gradient * radius / p.re_arcsec,
                                *emission.OH_RANGE))
        out.append(_Component(kind if kind == "nuclear_ring" else "ring",
                              share * total * _normalised(ring), emission.star_forming(oh_ring),
                              v_disk, disk_sigma))
        halpha = (1 - share) * halpha
    elif kind == "stripped_tail":
        along, perp = _along(grid, p.structure_pa)
        start = 0.5 * p.re_arcsec
        s = along - start
        width = 0.5 + 0.15 * np.maximum(s, 0)
        tail = ((s > 0) * np.exp(-s / p.structure_r) * np.exp(-perp**2 / (2 * width**2))
                * (1 + 0.5 * np.sin(2 * np.pi * s / 1.5)))
        oh_tail = float(np.clip(p.oh_center + 1.5 * p.oh_gradient, *emission.OH_RANGE))
        out.append(_Component("tail", share * total * _normalised(tail),
                              emission.star_forming(oh_tail), v_disk, 30.0))
        halpha = halpha * np.where(along < -0.7 * p.re_arcsec,
                                   np.exp((along + 0.7 * p.re_arcsec) / 0.5), 1.0)
    first = _Component("star_forming", halpha, emission.star_forming(oh), v_disk, disk_sigma)
    if kind == "shock_merger":
        d2 = ((grid.sx - ex["companion_r"] * p.re_arcsec * np.cos(ex["companion_phi"])) ** 2
              + (grid.sy - ex["companion_r"] * p.re_arcsec * np.sin(ex["companion_phi"])) ** 2)
        s2c = (0.3 * p.re_arcsec) ** 2
        comp = 0.25 * total * np.exp(-d2 / (2 * s2c)) / (2 * np.pi * s2c) * ins.PIXEL**2
        out.append(_Component("star_forming", comp, emission.star_forming(p.oh_center - 0.1),
                              p.v_sys + ex["companion_dv"], 40.0))
    return [first, *out]


def _along(grid: _Grid, pa_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky coordinates along and across the direction ``pa_deg`` (east of north) [arcsec]."""
    pa = np.radians(pa_deg)
    return grid.sx * np.sin(pa) + grid.sy * np.cos(pa), grid.sx * np.cos(pa) - grid.sy * np.sin(pa)


def _nuclear(grid: _Grid, p: GalaxyParams, cont_ha: np.ndarray, sf_ap: float,
             rotation: np.ndarray, v_disk: np.ndarray) -> list[_Component]:
    """The galaxy's nuclear source and its extended emission (AGN, composite, shock,
    blueberry starburst)."""
    t = p.extra["templates"]
    point = _normalised(np.exp(-grid.rc**2 / (2 * 0.25**2)))
    cls = p.galaxy_class
    if cls == "seyfert":
        hb = _flux_units(p.log_l_oiii_nucleus, p.z) / 10 ** t["nucleus"]["o3"]
        ha = emission.HA_HB * hb
        share = p.extra["nlr_share"]
        return [_Component("seyfert", (1 - share) * ha * point, t["nucleus"], p.v_sys, 200.0),
                _extended_agn(grid, p, share * ha, "enlr", v_disk)]
    if cls == "liner":
        ha = p.nucleus_fraction * (1 + p.z) * grid.aperture_sum(cont_ha)
        return [_Component("liner", ha * point, t["nucleus"], p.v_sys, 150.0),
                _extended_agn(grid, p, p.extra["nlr_share"] * ha, "liner_extended", v_disk)]
    if cls == "composite":
        f = p.nucleus_fraction
        return [_Component("composite", f / (1 - f) * sf_ap * point, t["nucleus"], p.v_sys,
                           120.0)]
    if cls == "shock_merger":
        rs = np.hypot(grid.u, grid.v / np.sqrt(p.ba))
        shape = np.exp(-rs / (0.5 * p.re_arcsec))
        f = p.nucleus_fraction
        scale = f / (1 - f) * sf_ap / grid.aperture_sum(shape)
        return [_Component("shock", scale * shape, t["shock"], p.v_sys + 0.5 * rotation,
                           p.sigma_gas)]
    if cls == "blueberry":
        rd = p.re_arcsec / RE_PER_DISK_SCALE
        shape = _normalised(np.exp(-np.hypot(grid.r, 0.1) / rd))
        return [_Component("blueberry", _flux_units(p.log_sfr + LOG_HA_LUMINOSITY_PER_SFR, p.z) * shape,
                           t["starburst"], v_disk, p.sigma_gas)]
    return []


def _extended_agn(grid: _Grid, p: GalaxyParams, halpha: float, code: str,
                  v_disk: np.ndarray) -> _Component:
    """AGN-ionised gas out to ``nlr_radius_kpc``: a cone (one- or two-sided), or round.

    Surface brightness falls exponentially (scale R/3) to the edge R; the ionisation parameter
    falls with radius, so [OIII]/Hβ, HeII and the density drop and the low-ionisation lines
    rise along the cone.
    """
    radius = p.nlr_radius_kpc / float(cosmology.kpc_per_arcsec(p.z))
    r = grid.rc if code == "enlr" else grid.r
    shape = np.exp(-r / (radius / 3)) / (1 + np.exp((r - radius) / 0.3))
    if p.cone:
        along, _ = _along(grid, p.cone_pa)
        cos_angle = along / np.maximum(grid.rc, 1e-6)
        if p.cone_sides == 2:
            cos_angle = np.abs(cos_angle)
        shape = shape / (1 + np.exp(-(cos_angle - np.cos(np.radians(p.cone_opening))) / 0.05))
    x = np.clip(r / radius, 0, 1)
    t = p.extra["templates"]["nucleus"]
    state = dict(t, o3=t["o3"] - 0.4 * x, n2=t["n2"] + 0.1 * x, s2=t["s2"] + 0.2 * x,
                 o1=t["o1"] + 0.1 * x, he2=t["he2"] * (1 - 0.5 * x),
                 ne=t["ne"] * 10 ** (-1.3 * x))
    v = p.v_sys + 0.3 * (v_disk - p.v_sys)
    return _Component(code, halpha * _normalised(shape + 1e-12), state, v,
                      120.0 if code == "enlr" else 100.0)


def _rare_gas(grid: _Grid, p: GalaxyParams, cont_ha: np.ndarray,
              v_disk: np.ndarray) -> list[_Component]:
    """Gas of the rare kinds that sit beside the disk: a second nucleus, an AGN-ionised
    cloud (rings and tails are part of the disk, a dust lane is in the attenuation)."""
    t = p.extra["templates"]
    if p.galaxy_class == "double_nucleus":
        core = _second_core(grid, p, cont_ha)
        if p.host == "retired":  # LIER gas of the second core's old stars
            ha, state = 2 * p.ew_diffuse * (1 + p.z) * core, t["diffuse"]
        else:
            ha = p.structure_amount * _flux_units(p.log_l_ha_sf, p.z) * _normalised(core)
            state = emission.star_forming(p.oh_center)
        return [_Component("second_nucleus", ha, state, p.v_sys + p.extra["second_dv"],
                           p.sigma_gas)]
    if p.galaxy_class == "agn_cloud":
        along, perp = _along(grid, p.structure_pa)
        s2 = p.extra["cloud_sigma"] ** 2
        cloud = np.exp(-((along - p.structure_r) ** 2 + perp**2) / (2 * s2))
        ha = p.structure_amount * _flux_units(p.log_l_ha_sf, p.z)
        return [_Component("agn_cloud", ha * _normalised(cloud), t["cloud"], v_disk, 60.0)]
    return []


def _second_core(grid: _Grid, p: GalaxyParams, cont: np.ndarray) -> np.ndarray:
    """Continuum of a second nucleus (``double_nucleus``): ``structure_amount`` of the host's
    light in an exponential core of scale 0.6 arcsec; zero for other kinds."""
    if p.galaxy_class != "double_nucleus":
        return np.zeros_like(cont)
    along, perp = _along(grid, p.structure_pa)
    core = np.exp(-np.hypot(along - p.structure_r, perp) / 0.6)
    return p.structure_amount * float(cont.sum()) * _normalised(core)


def _dust_lane(grid: _Grid, p: GalaxyParams) -> np.ndarray:
    """Extra E(B-V) of a dust lane along the major axis (``dust_lane``); zero otherwise."""
    if p.galaxy_class != "dust_lane":
        return np.zeros_like(grid.r)
    d = grid.v - p.structure_r
    extent = np.exp(-((grid.u / (1.5 * p.re_arcsec)) ** 4))
    return p.structure_amount * np.exp(-d**2 / (2 * p.extra["lane_width"] ** 2)) * extent


def _log_l_oiii(components: list[_Component], z: float) -> float:
    """log [OIII]5008 luminosity [erg/s] of ``components`` (intrinsic, before dust)."""
    total = 0.0
    for comp in components:
        o3 = emission.line_ratios(comp.state)[IDX["OIII-5008"]]
        total += float(np.sum(comp.halpha / emission.HA_HB * o3))
    return float(np.log10(total / _flux_units(0.0, z)))


def _truth_map(components: list[_Component], per_comp: np.ndarray, lane: np.ndarray,
               p: GalaxyParams, nocov: np.ndarray) -> np.ndarray:
    """(N, N) int8 code of the component dominating each spaxel's observed Hα; a dust lane
    marks where its extra E(B-V) is at least half its peak."""
    codes = np.array([SPAXEL_CODES[c.code] for c in components], np.int8)
    out = codes[np.argmax(per_comp, axis=0)]
    if p.galaxy_class == "dust_lane":
        out[lane >= 0.5 * p.structure_amount] = SPAXEL_CODES["dust_lane"]
    out[nocov] = SPAXEL_CODES["no_coverage"]
    return out


def integrated_class(log_nii_ha: float, log_oiii_hb: float, ew_ha: float) -> str:
    """BPT + WHAN class of integrated ratios: ``star_forming`` (below Kauffmann et al. 2003),
    ``retired`` (Hα EW < 3 Å), ``composite`` (below Kewley et al. 2001), ``seyfert`` or
    ``liner`` (Schawinski et al. 2007 line)."""
    x, y = log_nii_ha, log_oiii_hb
    if not (np.isfinite(x) and np.isfinite(y)):
        return "retired" if ew_ha < 3 else "unknown"
    if x < 0.05 and y < kauffmann03(x):
        return "star_forming"
    if ew_ha < 3:
        return "retired"
    if x < 0.47 and y < kewley01_nii(x):
        return "composite"
    return "seyfert" if y > schawinski07(x) else "liner"


def _anomaly_columns(p: GalaxyParams, flux: np.ndarray, cont: np.ndarray,
                     truth_map: np.ndarray, nocov: np.ndarray) -> dict:
    """Integrated (whole-footprint, noiseless) class, ``ratio_normal`` and the share of covered
    spaxels that anomalous components dominate."""
    s = flux[:, ~nocov].sum(axis=1)
    ha, hb = s[IDX["Ha-6564"]], s[IDX["Hb-4862"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = float(np.log10(s[IDX["NII-6585"]] / ha))
        y = float(np.log10(s[IDX["OIII-5008"]] / hb))
        o32 = float(np.log10(s[IDX["OIII-5008"]] / (s[IDX["OII-3727"]] + s[IDX["OII-3729"]])))
    ew = float(ha / cont[IDX["Ha-6564"]][~nocov].sum() / (1 + p.z))
    cls = integrated_class(x, y, ew)
    # green-pea-like ionisation (blueberries) lies below Kauffmann but far off the sequence
    normal = cls == p.host and not (cls == "star_forming" and o32 > 0.5)
    covered = ~nocov
    return {"int_log_nii_ha": x, "int_log_oiii_hb": y, "int_log_oiii_oii": o32, "int_ew_ha": ew,
            "integrated_class": cls, "ratio_normal": bool(normal),
            "anomaly_fraction": float(np.isin(truth_map[covered], ANOMALOUS_CODES).mean())}


def _tie_dr17(gflux, ivar, gmask, gsig, gsig_ivar) -> None:
    """Apply the DAP flux ties (value, ivar, mask) and kinematic ties (sigma), in place."""
    emission.apply_ties(gflux)
    for name, (partner, ratio) in emission.TIES.items():
        i, j = IDX[name], IDX[partner]
        r = np.float32(ratio)
        ivar[i] = ivar[j] / (r * r)
        gmask[i] = gmask[j]
    for name, partner in SIGMA_TIES.items():
        i, j = IDX[name], IDX[partner]
        gsig[i], gsig_ivar[i] = gsig[j], gsig_ivar[j]


def _central_ratios(flux: np.ndarray, cont: np.ndarray, grid: _Grid, z: float) -> dict:
    """Noiseless line ratios in the central 2.5-arcsec aperture (after the PSF)."""
    ap = grid.rc[grid.crop] <= APERTURE
    s = flux[:, ap].sum(axis=1)

    def lg(a, b):
        return float(np.log10(a / b)) if a > 0 and b > 0 else float("nan")

    ha, hb = s[IDX["Ha-6564"]], s[IDX["Hb-4862"]]
    return {
        "cen_log_nii_ha": lg(s[IDX["NII-6585"]], ha),
        "cen_log_oiii_hb": lg(s[IDX["OIII-5008"]], hb),
        "cen_log_sii_ha": lg(s[IDX["SII-6718"]] + s[IDX["SII-6732"]], ha),
        "cen_log_oi_ha": lg(s[IDX["OI-6302"]], ha),
        "cen_ha_hb": float(ha / hb) if hb > 0 else float("nan"),
        "cen_ew_ha": float(ha / cont[IDX["Ha-6564"]][ap].sum() / (1 + z)),
    }


def _truth_row(plan: ObservationPlan, p: GalaxyParams, sky: _Sky, cond: _Conditions,
               foot: _Footprint, quality: _Quality) -> dict:
    """The observation's truth-table row (class, parameters, central noiseless ratios)."""
    row = {
        "plateifu": plan.plateifu, "mangaid": plan.mangaid, "observation": plan.index,
        "galaxy": plan.galaxy, "is_repeat": plan.is_repeat, "plate": plan.plate,
        "ifudesign": plan.ifudesign, "fibres": plan.fibres, "map_size": cond.n,
        "class": p.galaxy_class,
    }
    row.update({k: v for k, v in p.scalars().items() if k != "galaxy_class"})
    row.update(_central_ratios(sky.flux, sky.cont, cond.grid, p.z))
    row.update({"psf_fwhm_r": float(cond.band_fwhm[1]), "noise_sigma0": cond.sigma0,
                "forestar": bool(foot.star.any()), "dapdone": bool(quality.dapdone),
                "dapqual": int(quality.dapqual), "drp3qual": int(quality.drp3qual)})
    return row


def _dapall_row(plan: ObservationPlan, p: GalaxyParams, fits: _LineFits, grid: _Grid,
                foot: _Footprint, ring_snr: tuple[float, float], quality: _Quality) -> dict:
    """The observation's DAPall row (DAPDONE false: the DAP's -999 placeholders)."""
    good = (fits.gmask & ins.BIT["DONOTUSE"]) == 0
    f = np.where(good, fits.gflux, 0.0).astype(np.float64)
    ap = grid.rc[grid.crop] <= APERTURE
    in_re = grid.r_map <= p.re_arcsec
    ha = IDX["Ha-6564"]
    ldist = float(cosmology.luminosity_distance_cm(p.z)) / cosmology.MPC_CM * H_LITTLE
    adist = float(cosmology.angular_diameter_distance(p.z)) * H_LITTLE

    def sfr(flux_ha: float) -> float:
        lum = 4 * np.pi * (ldist * cosmology.MPC_CM) ** 2 * flux_ha * ins.FLUX_UNIT
        return float(10 ** (np.log10(lum) - LOG_HA_LUMINOSITY_PER_SFR)) if lum > 0 else 0.0

    tot = f.sum(axis=(1, 2))
    one_re = f[:, in_re].sum(axis=1)
    snr_med, snr_ring = ring_snr
    row = {
        "PLATEIFU": plan.plateifu, "MANGAID": plan.mangaid, "PLATE": plan.plate,
        "IFUDESIGN": plan.ifudesign, "DRPALLINDX": plan.index, "MODE": "CUBE",
        "DAPDONE": bool(quality.dapdone), "OBJRA": p.ra, "OBJDEC": p.dec, "IFURA": p.ra,
        "IFUDEC": p.dec, "Z": p.z, "NSA_Z": p.z, "NSA_ZDIST": p.z, "LDIST_Z": ldist,
        "ADIST_Z": adist, "LDIST_NSA_Z": ldist, "ADIST_NSA_Z": adist,
        "NSA_ELPETRO_BA": p.ba, "NSA_ELPETRO_PHI": p.pa, "NSA_ELPETRO_TH50_R": p.re_arcsec,
        "NSA_SERSIC_BA": p.ba, "NSA_SERSIC_PHI": p.pa, "NSA_SERSIC_TH50": p.re_arcsec,
        "NSA_SERSIC_N": p.sersic_n, "DRP3QUAL": int(quality.drp3qual),
        "DAPQUAL": int(quality.dapqual),
        "RCOV90": float(np.percentile(grid.r_map[~foot.nocov], 90)),
        "SNR_MED": (snr_med * SNR_BAND_DEPTH).tolist(),
        "SNR_RING": (snr_ring * SNR_BAND_DEPTH).tolist(),
        "EMLINE_GFLUX_CEN": f[:, ap].sum(axis=1).tolist(),
        "EMLINE_GFLUX_1RE": one_re.tolist(), "EMLINE_GFLUX_TOT": tot.tolist(),
        "EMLINE_GEW_1RE": [float(np.median(fits.gew[i][good[i] & in_re]))
                           if (good[i] & in_re).any() else 0.0 for i in range(len(NAMES))],
        "HA_Z": p.z + p.v_sys / C_KMS,
        "HA_GSIGMA_1RE": float(np.median(fits.sig_obs[ha][good[ha] & in_re]))
        if (good[ha] & in_re).any() else 0.0,
        "SFR_1RE": sfr(one_re[ha]), "SFR_TOT": sfr(tot[ha]),
    }
    if not quality.dapdone:
        for key in ("EMLINE_GFLUX_CEN", "EMLINE_GFLUX_1RE", "EMLINE_GFLUX_TOT",
                    "EMLINE_GEW_1RE"):
            row[key] = [DAPALL_MISSING] * len(NAMES)
        for key in ("HA_GSIGMA_1RE", "SFR_1RE", "SFR_TOT", "RCOV90"):
            row[key] = DAPALL_MISSING
    return row


def _full_extensions(rng: np.random.Generator, maps: dict[str, np.ndarray], p: GalaxyParams,
                     sky: _Sky, foot: _Footprint, fits: _LineFits) -> dict[str, np.ndarray]:
    """The extensions only a full (64-HDU) file carries, filled with values consistent with
    the emission-line maps (plus noise), so that full files weigh what real ones do.

    Bin-level extensions repeat the spaxel values (HYB10 bins are shown spaxel by spaxel);
    stellar kinematics follow the gas rotation at 80 %; spectral indices are noisy constants.
    """
    f32 = np.float32
    n = sky.cont_g.shape[0]
    cont, inst = sky.cont, fits.inst
    keep = ~foot.zero
    mask1 = consolidate_donotuse(foot.base)
    snr = maps["SPX_SNR"]

    def masked(a):
        return np.where(keep, a, 0.0).astype(f32)

    mflux = masked(sky.cont_g + foot.g_noise * rng.standard_normal((n, n)))
    mflux_ivar = masked(1 / foot.g_noise**2)
    err_star = 30.0 / np.maximum(snr, 0.5)  # km/s
    star_ivar = masked(1 / err_star**2)
    stellar_vel = masked(0.8 * (sky.vel - p.v_sys) + err_star * rng.standard_normal((n, n)))
    stellar_sig = masked(np.clip(1.2 * p.sigma_gas + 40, 40, 300)
                         + err_star * rng.standard_normal((n, n)))
    sig_lam = sky.wave_obs[:, None, None] * np.sqrt(sky.sig_gas[None] ** 2 + inst**2) / C_KMS
    gflux = maps["EMLINE_GFLUX"]
    ga = (gflux / (np.sqrt(2 * np.pi) * sig_lam)).astype(f32)
    ganr = np.where(keep, ga / (fits.err / (np.sqrt(2 * np.pi) * sig_lam) * 3.0), 0).astype(f32)
    cnt = np.where(keep, cont, 0).astype(f32)
    fom = np.stack([masked(np.abs(rng.normal(v, v / 3, (n, n))))
                    for v in (0.05, 0.03, 1.0, 0.02, 0.08, 0.2, 1.0, 2.5, 4.0)])
    index_level = rng.normal(2.0, 1.0, N_SPECINDEX)[:, None, None]  # drawn before the dict's
    out = {
        "SPX_MFLUX": mflux, "SPX_MFLUX_IVAR": mflux_ivar,
        "BIN_LWSKYCOO": maps["SPX_SKYCOO"], "BIN_LWELLCOO": maps["SPX_ELLCOO"],
        "BIN_AREA": masked(np.full((n, n), ins.PIXEL**2)), "BIN_FAREA": masked(np.ones((n, n))),
        "BIN_MFLUX": mflux, "BIN_MFLUX_IVAR": mflux_ivar, "BIN_MFLUX_MASK": mask1,
        "BIN_SNR": snr,
        "STELLAR_VEL": stellar_vel, "STELLAR_VEL_IVAR": star_ivar, "STELLAR_VEL_MASK": mask1,
        "STELLAR_SIGMA": stellar_sig, "STELLAR_SIGMA_IVAR": star_ivar,
        "STELLAR_SIGMA_MASK": mask1,
        "STELLAR_SIGMACORR": np.stack([masked(np.full((n, n), 25.0)),
                                       masked(25 + 5 * rng.standard_normal((n, n)))]),
        "STELLAR_FOM": fom,
        "EMLINE_SEW": np.where(keep, maps["EMLINE_SFLUX"] / np.maximum(cont, CONT_FLOOR), 0)
        .astype(f32),
        "EMLINE_SEW_CNT": cnt, "EMLINE_SEW_IVAR": (maps["EMLINE_SFLUX_IVAR"] * cont**2)
        .astype(f32), "EMLINE_SEW_MASK": maps["EMLINE_SFLUX_MASK"],
        "EMLINE_GEW_CNT": cnt, "EMLINE_GEW_IVAR": (maps["EMLINE_GFLUX_IVAR"] * cont**2)
        .astype(f32), "EMLINE_GEW_MASK": maps["EMLINE_GFLUX_MASK"],
        "EMLINE_INSTSIGMA": np.where(keep, inst, 0).astype(f32),
        "EMLINE_TPLSIGMA": np.where(keep, 0.5 * inst, 0).astype(f32),
        "EMLINE_GA": ga, "EMLINE_GANR": ganr, "EMLINE_FOM": fom,
        "EMLINE_LFOM": masked(np.abs(1 + 0.2 * rng.standard_normal(gflux.shape))),
    }
    out.update(_spectral_indices(rng, index_level, keep, snr, mask1))
    return out


def _spectral_indices(rng: np.random.Generator, level: np.ndarray, keep: np.ndarray,
                      snr: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """SPECINDEX, SPECINDEX_BF and SPECINDEX_WGT families: (46, N, N) noise around each
    index's ``level`` (46, 1, 1), errors from the g-band S/N ``snr`` (N, N)."""
    f32 = np.float32
    n = snr.shape[0]
    idx_err = np.broadcast_to(1.5 / np.maximum(snr, 0.5), (N_SPECINDEX, n, n))
    idx_mask = np.broadcast_to(mask, (N_SPECINDEX, n, n)).copy()
    out = {}
    for fam in ("SPECINDEX", "SPECINDEX_BF", "SPECINDEX_WGT"):
        value = level + idx_err * rng.standard_normal((N_SPECINDEX, n, n))
        out[fam] = np.where(keep, value, 0).astype(f32)
        out[f"{fam}_IVAR"] = np.where(keep, 1 / idx_err**2, 0).astype(f32)
        out[f"{fam}_MASK"] = idx_mask
        out[f"{fam}_CORR"] = np.where(keep, 1 + 0.01 * rng.standard_normal((N_SPECINDEX, n, n)),
                                      0).astype(f32)
        out[f"{fam}_MODEL"] = np.where(keep, level, 0).astype(f32)
    return out
