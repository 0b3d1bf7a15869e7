"""Emission-line physics: Case-B Balmer ratios, dust attenuation, doublets and line templates.

Every spectrum is built from a few "key" quantities (the BPT ratios, [OII]/Hβ, HeII/Hβ, the
electron density, ...) by :func:`line_ratios`, which returns all 35 DR17 channels relative to
intrinsic Hβ. The DAP's fixed ratios (``linecube.lines``) hold exactly in the result.
Sources of every number are listed in ``docs/simulate.md``.
"""

from __future__ import annotations

import numpy as np

from linecube.demarcation import kauffmann03
from linecube.lines import DR17_LINES

NAMES = tuple(ln.name for ln in DR17_LINES)
IDX = {name: i for i, name in enumerate(NAMES)}
WAVE = np.array([ln.wavelength for ln in DR17_LINES])  # vacuum rest wavelengths [Å]

# Case B recombination, T = 1e4 K, n_e = 100 cm^-3, relative to Hβ (Storey & Hummer 1995;
# Osterbrock & Ferland 2006, Table 4.4). Paschen lines: P(n)/H(n) ≈ 0.347 for the same upper
# level n, as it is for Pβ/Hγ, Pγ/Hδ and Pδ/Hε in the same table.
CASE_B = {
    "Ha-6564": 2.86, "Hb-4862": 1.0, "Hgam-4341": 0.468, "Hdel-4102": 0.259,
    "Heps-3971": 0.159, "Hzet-3890": 0.105, "Heta-3836": 0.0731, "Hthe-3798": 0.0530,
    "H11-3771": 0.0397, "H12-3751": 0.0305,
    "Peps-9548": 0.347 * 0.105, "Pzet-9231": 0.347 * 0.0731, "Peta-9017": 0.347 * 0.0530,
}
HA_HB = CASE_B["Ha-6564"]

# DAP flux ties (ELPMPL11): tied line -> (partner, ratio).
TIES = {ln.name: (ln.tied_to, ln.tie_ratio) for ln in DR17_LINES if ln.tied_to}

R_V = 3.1  # A_V / E(B-V) of the attenuation curve (and of the Galactic extinction keyword)
# 12+log(O/H) range where the N2 and O3N2 calibrations of ``star_forming`` hold.
OH_RANGE = (7.9, 8.65)

# Fixed doublet ratios that the DAP does not tie (atomic-physics values).
ARIII_7753_7137 = 0.24  # [ArIII] 7751/7136 (Osterbrock & Ferland 2006)
NI_5201_SHARE = 0.6  # [NI] 5200 share of the 5198+5200 doublet near the low-density limit


def k_lambda(wavelength: np.ndarray, r_v: float = R_V) -> np.ndarray:
    """Attenuation curve k(λ) = A_λ / E(B-V) of Cardelli, Clayton & Mathis (1989).

    The optical branch uses the O'Donnell (1994) coefficients (the law the DAP uses for Galactic
    extinction). ``wavelength`` in Å, 0.3 <= x = 1/λ[µm] <= 3.3.
    """
    x = 1e4 / np.asarray(wavelength, dtype=float)
    y = x - 1.82
    a_opt = np.polyval([-0.505, 1.647, -0.827, -1.718, 1.137, 0.701, -0.609, 0.104, 1.0], y)
    b_opt = np.polyval([3.347, -10.805, 5.491, 11.102, -7.985, -3.989, 2.908, 1.952, 0.0], y)
    a_ir, b_ir = 0.574 * x**1.61, -0.527 * x**1.61
    a = np.where(x >= 1.1, a_opt, a_ir)
    b = np.where(x >= 1.1, b_opt, b_ir)
    return r_v * a + b


K_LINES = k_lambda(WAVE)
BALMER_K = K_LINES[IDX["Hb-4862"]] - K_LINES[IDX["Ha-6564"]]


def ebv_from_decrement(ha_hb: np.ndarray) -> np.ndarray:
    """E(B-V) implied by an observed Hα/Hβ ratio (0 at or below Case B)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(2.5 / BALMER_K * np.log10(np.asarray(ha_hb) / HA_HB), 0.0)


def _density_ratio(ne: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * (b + ne) / (c + ne)


def sii_ratio(ne: np.ndarray) -> np.ndarray:
    """[SII] 6718/6732 for electron density ``ne`` [cm^-3] (Sanders et al. 2016, eq. 7)."""
    return _density_ratio(np.asarray(ne, dtype=float), 0.4315, 2107.0, 627.1)


def oii_ratio(ne: np.ndarray) -> np.ndarray:
    """[OII] 3729/3727 for electron density ``ne`` [cm^-3] (Sanders et al. 2016, eq. 7)."""
    return _density_ratio(np.asarray(ne, dtype=float), 0.3771, 2468.0, 638.4)


def line_ratios(state: dict[str, np.ndarray | float]) -> np.ndarray:
    """All 35 DR17 line fluxes relative to intrinsic Hβ.

    Args:
        state: key quantities, scalars or arrays of one broadcastable shape S:
            ``n2`` log [NII]6585/Hα, ``o3`` log [OIII]5008/Hβ, ``s2`` log ([SII]6718+6732)/Hα,
            ``o1`` log [OI]6302/Hα, ``o2`` log ([OII]3727+3729)/Hβ, ``he2`` HeII4687/Hβ,
            ``ne`` electron density [cm^-3], ``ne3`` [NeIII]3869/[OIII]5008, ``he1`` HeI
            strength (1 = HII-region level), ``ar3`` [ArIII]7137/Hβ, ``s3`` [SIII]9533/Hβ,
            ``n1`` ([NI]5199+5201)/Hβ.

    Returns:
        (35, *S) float64 ratios in DR17 channel order, before dust.
    """
    arrays = {k: np.asarray(v, dtype=float) for k, v in state.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    out = np.zeros((len(NAMES), *shape))

    def put(name: str, value) -> None:
        out[IDX[name]] = value

    for name, ratio in CASE_B.items():
        put(name, ratio)
    s = arrays
    put("NII-6585", HA_HB * 10 ** s["n2"])
    put("OIII-5008", 10 ** s["o3"])
    sii = HA_HB * 10 ** s["s2"]
    r_sii = sii_ratio(s["ne"])
    put("SII-6718", sii * r_sii / (1 + r_sii))
    put("SII-6732", sii / (1 + r_sii))
    put("OI-6302", HA_HB * 10 ** s["o1"])
    oii = 10 ** s["o2"]
    r_oii = oii_ratio(s["ne"])
    put("OII-3727", oii / (1 + r_oii))
    put("OII-3729", oii * r_oii / (1 + r_oii))
    put("HeII-4687", s["he2"])
    put("NeIII-3869", s["ne3"] * 10 ** s["o3"])
    # HeI relative to Hβ in HII regions (Case B, He+/H+ ≈ 0.09; Osterbrock & Ferland 2006).
    put("HeI-5877", 0.11 * s["he1"])
    put("HeI-7067", 0.025 * s["he1"])
    put("HeI-3889", 0.09 * s["he1"])
    put("ArIII-7137", s["ar3"])
    put("ArIII-7753", ARIII_7753_7137 * s["ar3"])
    put("SIII-9533", s["s3"])
    put("NI-5199", (1 - NI_5201_SHARE) * s["n1"])
    put("NI-5201", NI_5201_SHARE * s["n1"])
    apply_ties(out)
    return out


def apply_ties(fluxes: np.ndarray, ties: dict[str, tuple[str, float]] = TIES,
               names: tuple[str, ...] = NAMES) -> np.ndarray:
    """Set each tied channel to ratio x its partner, in place; returns ``fluxes``.

    ``fluxes`` is (L, ...) in the order of ``names``. Computed in the array's own dtype, so a
    float32 result satisfies ``tied == np.float32(ratio) * partner`` exactly.
    """
    index = {n: i for i, n in enumerate(names)}
    for name, (partner, ratio) in ties.items():
        if name in index and partner in index:
            fluxes[index[name]] = fluxes[index[partner]] * fluxes.dtype.type(ratio)
    return fluxes


def attenuation(ebv: np.ndarray) -> np.ndarray:
    """Per-line transmission 10^(-0.4 k(λ) E(B-V)): (35, *ebv.shape)."""
    ebv = np.asarray(ebv, dtype=float)
    return 10 ** (-0.4 * K_LINES.reshape((-1,) + (1,) * ebv.ndim) * ebv)


# ---- line templates per ionising source -------------------------------------------------------

def star_forming(oh: np.ndarray) -> dict[str, np.ndarray | float]:
    """HII-region ratios along the star-forming sequence for metallicity 12+log(O/H) ``oh``.

    [NII]/Hα from the N2 and [OIII]/Hβ from the O3N2 calibrations of Pettini & Pagel (2004),
    valid for 12+log(O/H) <= 8.65 (``OH_RANGE``) where the sequence stays below
    ``kauffmann03``.
    """
    oh = np.asarray(oh, dtype=float)
    n2 = (oh - 8.90) / 0.57
    o3 = (8.73 - oh) / 0.32 + n2
    return {
        "n2": n2, "o3": o3, "s2": -0.30 + 0.30 * n2, "o1": -1.55 + 0.35 * (n2 + 0.5),
        "o2": 0.42 + 0.0 * n2, "he2": 0.005, "ne": 80.0, "ne3": 0.07, "he1": 1.0,
        "ar3": 0.09, "s3": 0.55, "n1": 0.02,
    }


def template(kind: str, rng: np.random.Generator) -> dict[str, float]:
    """Key quantities of one galaxy's non-stellar component, drawn around class means.

    ``kind`` is ``lier`` (diffuse gas of retired galaxies), ``dig`` (diffuse gas in
    star-forming disks), ``seyfert``, ``liner``, ``composite``, ``shock`` or ``blueberry``.
    """
    n = rng.normal
    if kind == "lier":
        t = {"n2": n(0.10, 0.08), "o3": n(0.05, 0.10), "s2": n(-0.05, 0.08),
             "o1": n(-0.80, 0.12), "o2": 0.70, "he2": 0.03, "ne": 100.0, "ne3": 0.15,
             "he1": 0.5, "ar3": 0.10, "s3": 0.50, "n1": 0.15}
    elif kind == "dig":
        t = {"n2": n(-0.25, 0.06), "o3": n(-0.15, 0.08), "s2": n(-0.15, 0.06),
             "o1": n(-1.05, 0.10), "o2": 0.60, "he2": 0.01, "ne": 30.0, "ne3": 0.10,
             "he1": 0.6, "ar3": 0.08, "s3": 0.50, "n1": 0.08}
    elif kind == "seyfert":
        t = {"n2": float(np.clip(n(0.0, 0.12), -0.25, 0.35)),
             "o3": float(np.clip(n(0.90, 0.13), 0.60, 1.20)), "s2": n(-0.30, 0.10),
             "o1": n(-0.90, 0.12), "o2": 0.45, "he2": float(np.clip(n(0.25, 0.06), 0.1, 0.4)),
             "ne": 400.0, "ne3": 0.10, "he1": 0.8, "ar3": 0.15, "s3": 0.70, "n1": 0.10}
    elif kind == "liner":
        x = float(np.clip(n(0.15, 0.08), -0.05, 0.40))
        # keep 0.15 dex below the Seyfert/LINER line (``schawinski07``)
        y = float(min(n(0.12, 0.10), 1.05 * x + 0.30))
        t = {"n2": x, "o3": y, "s2": n(0.0, 0.08), "o1": n(-0.65, 0.10), "o2": 0.75,
             "he2": 0.05, "ne": 300.0, "ne3": 0.25, "he1": 0.5, "ar3": 0.12, "s3": 0.60,
             "n1": 0.20}
    elif kind == "composite":
        t = {"n2": float(np.clip(n(-0.12, 0.05), -0.25, 0.0)),
             "o3": float(np.clip(n(0.05, 0.10), -0.25, 0.25)), "s2": n(-0.25, 0.06),
             "o1": n(-1.05, 0.10), "o2": 0.55, "he2": 0.04, "ne": 200.0, "ne3": 0.12,
             "he1": 0.8, "ar3": 0.10, "s3": 0.60, "n1": 0.08}
    elif kind == "shock":
        t = {"n2": n(-0.05, 0.10), "o3": n(0.10, 0.12), "s2": n(-0.05, 0.08),
             "o1": float(np.clip(n(-0.65, 0.10), -0.9, -0.35)), "o2": 0.70, "he2": 0.04,
             "ne": 150.0, "ne3": 0.20, "he1": 0.6, "ar3": 0.10, "s3": 0.50, "n1": 0.25}
    elif kind == "blueberry":
        x = n(-1.55, 0.10)
        t = {"n2": x, "o3": float(min(n(0.80, 0.05), kauffmann03(x) - 0.05)), "s2": -1.00,
             "o1": -2.00, "o2": -0.10, "he2": 0.02, "ne": 300.0, "ne3": 0.08, "he1": 1.0,
             "ar3": 0.04, "s3": 0.25, "n1": 0.005}
    else:
        raise ValueError(f"unknown template {kind!r}")
    return {k: float(v) for k, v in t.items()}
