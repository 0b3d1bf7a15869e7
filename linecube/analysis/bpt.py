"""BPT (Kewley et al. 2006 scheme) and WHAN classes, per spaxel and per galaxy.

Log ratios: x = log10([NII]6585/Ha), x_S = log10(([SII]6718 + [SII]6732)/Ha),
x_O = log10([OI]6302/Ha), y = log10([OIII]5008/Hb). Demarcation lines (coefficients as in
Marvin's ``bpt.py``):

* Kauffmann et al. 2003, SF/composite: y = 0.61 / (x - 0.05) + 1.30, for x < 0.05;
* Kewley et al. 2001, maximum starburst: y = 0.61 / (x - 0.47) + 1.19 (x < 0.47),
  y = 0.72 / (x_S - 0.32) + 1.30 (x_S < 0.32), y = 0.73 / (x_O + 0.59) + 1.33 (x_O < -0.59);
* Kewley et al. 2006, Seyfert/LINER: y = 1.89 x_S + 0.76 and y = 1.18 x_O + 1.30.

A point right of a curve's asymptote lies on its upper (AGN) side. Classes: SF (below
Kauffmann in [NII] and below Kewley 2001 in [SII] and [OI]); composite (between Kauffmann and
Kewley 2001 in [NII], below Kewley 2001 in [SII] and [OI]); Seyfert / LINER (above Kewley 2001
in all three diagrams and above / below both Kewley 2006 lines); ambiguous (any other valid
point); invalid (a line with flux <= 0 or S/N below the threshold).

The classifications are pure functions of fluxes and ratios; :func:`run_bpt` applies them to
a store. The EW(Ha) that WHAN needs is read from the source MAPS files by
:mod:`linecube.analysis.source_ew`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir
from linecube.config import StrictModel
from linecube.demarcation import (
    kauffmann03,
    kewley01_nii,
    kewley01_oi,
    kewley01_sii,
    kewley06_oi,
    kewley06_sii,
)
from linecube.errors import CompatibilityError
from linecube.progress import progress_bar
from linecube.store.store import Store

BPT_LINES = ("Hb-4862", "OIII-5008", "OI-6302", "Ha-6564", "NII-6585", "SII-6718", "SII-6732")

# int8 codes of bpt_maps.zarr; -1 marks spaxels without data in every BPT line.
NO_DATA, INVALID, SF, COMPOSITE, SEYFERT, LINER, AMBIGUOUS = -1, 0, 1, 2, 3, 4, 5
BPT_NAMES = {
    NO_DATA: "no_data",
    INVALID: "invalid",
    SF: "SF",
    COMPOSITE: "composite",
    SEYFERT: "Seyfert",
    LINER: "LINER",
    AMBIGUOUS: "ambiguous",
}

WHAN_INVALID, WHAN_SF, WHAN_SAGN, WHAN_WAGN, WHAN_RETIRED, WHAN_PASSIVE = 0, 1, 2, 3, 4, 5
WHAN_NAMES = {
    WHAN_INVALID: "invalid",
    WHAN_SF: "SF",
    WHAN_SAGN: "strong_AGN",
    WHAN_WAGN: "weak_AGN",
    WHAN_RETIRED: "retired",
    WHAN_PASSIVE: "passive",
}


def _above(curve, x, y, asymptote):
    """True where (x, y) lies above a hyperbola valid left of ``asymptote`` (or right of it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x >= asymptote) | (y > curve(np.minimum(x, asymptote - 1e-9)))


def classify_ratios(n2, s2, o1, o3) -> np.ndarray:
    """BPT class codes from log ratios (NaN anywhere -> ``INVALID``).

    Args:
        n2, s2, o1, o3: arrays of the same shape: log10 [NII]/Ha, [SII]/Ha, [OI]/Ha, [OIII]/Hb.

    Returns:
        int8 codes, same shape.
    """
    n2, s2, o1, o3 = (np.asarray(a, dtype=np.float64) for a in (n2, s2, o1, o3))
    valid = np.isfinite(n2) & np.isfinite(s2) & np.isfinite(o1) & np.isfinite(o3)
    above_ka = _above(kauffmann03, n2, o3, 0.05)
    above_ke_n = _above(kewley01_nii, n2, o3, 0.47)
    above_ke_s = _above(kewley01_sii, s2, o3, 0.32)
    above_ke_o = _above(kewley01_oi, o1, o3, -0.59)
    sf = ~above_ka & ~above_ke_s & ~above_ke_o
    comp = above_ka & ~above_ke_n & ~above_ke_s & ~above_ke_o
    agn = above_ke_n & above_ke_s & above_ke_o
    with np.errstate(invalid="ignore"):
        sy_s, sy_o = o3 > kewley06_sii(s2), o3 > kewley06_oi(o1)
    seyfert = agn & sy_s & sy_o
    liner = agn & ~sy_s & ~sy_o
    codes = np.full(n2.shape, AMBIGUOUS, dtype=np.int8)
    codes[sf] = SF
    codes[comp] = COMPOSITE
    codes[seyfert] = SEYFERT
    codes[liner] = LINER
    codes[~valid] = INVALID
    return codes


def classify_fluxes(
    flux: dict[str, np.ndarray], snr: dict[str, np.ndarray], sn_min: float = 3.0
) -> np.ndarray:
    """BPT class codes from physical line fluxes (any common scale cancels).

    Args:
        flux: the seven :data:`BPT_LINES` -> arrays of one shape; [SII] is the sum of both lines.
        snr: S/N of each line, same shapes.
        sn_min: every line needs flux > 0 and S/N >= ``sn_min``, else ``INVALID``.

    Returns:
        int8 codes.
    """
    ok = np.ones(np.shape(flux["Ha-6564"]), dtype=bool)
    for name in BPT_LINES:
        ok &= np.isfinite(flux[name]) & (flux[name] > 0) & (snr[name] >= sn_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        ha, hb = flux["Ha-6564"], flux["Hb-4862"]
        ratios = [
            np.log10(flux["NII-6585"] / ha),
            np.log10((flux["SII-6718"] + flux["SII-6732"]) / ha),
            np.log10(flux["OI-6302"] / ha),
            np.log10(flux["OIII-5008"] / hb),
        ]
    ratios = [np.where(ok, r, np.nan) for r in ratios]
    return classify_ratios(*ratios)


def classify_whan(n2, ew_ha, ew_n2=None) -> np.ndarray:
    """WHAN classes (Cid Fernandes et al. 2011) from log10 [NII]/Ha and EW(Ha) [Å].

    Passive needs EW(Ha) and EW([NII]) < 0.5 Å (only tested when ``ew_n2`` is given);
    retired: EW(Ha) < 3 Å; SF: x < -0.4; strong AGN: x >= -0.4 and EW > 6 Å; weak AGN otherwise.

    Returns:
        int8 codes (see :data:`WHAN_NAMES`); NaN input -> ``WHAN_INVALID``.
    """
    n2, ew = np.asarray(n2, dtype=np.float64), np.asarray(ew_ha, dtype=np.float64)
    codes = np.full(n2.shape, WHAN_WAGN, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        codes[(n2 >= -0.4) & (ew > 6)] = WHAN_SAGN
        codes[(n2 < -0.4) & (ew >= 3)] = WHAN_SF
        codes[ew < 3] = WHAN_RETIRED
        if ew_n2 is not None:
            codes[(ew < 0.5) & (np.asarray(ew_n2, dtype=np.float64) < 0.5)] = WHAN_PASSIVE
    codes[~(np.isfinite(n2) & np.isfinite(ew))] = WHAN_INVALID
    return codes


class BptConfig(StrictModel):
    """Settings of ``linecube bpt``."""

    sn_min: float = Field(
        3.0, ge=0, description="minimum S/N of every BPT line (per spaxel, and of the "
        "aperture sums)")
    aperture_arcsec: float = Field(
        2.5, gt=0, description="radius in arcsec of the central aperture whose summed fluxes "
        "give the galaxy's class")
    batch_size: int = Field(64, gt=0, description="galaxies read from the store at once")


def aperture_mask(size: int, radius_pix: float) -> np.ndarray:
    """(size, size) bool disc of ``radius_pix`` around the IFU centre pixel (size // 2)."""
    yy, xx = np.mgrid[:size, :size]
    c = size // 2
    return (yy - c) ** 2 + (xx - c) ** 2 <= radius_pix**2


def classify_galaxies(
    flux: np.ndarray,
    sigma: np.ndarray,
    valid: np.ndarray,
    lines: list[str],
    aperture: np.ndarray,
    sn_min: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-spaxel maps and per-galaxy (aperture) BPT classes.

    Args:
        flux, sigma, valid: (B, L, H, W) physical flux, its error, validity.
        lines: names of the L channels (must include :data:`BPT_LINES`).
        aperture: (H, W) bool central aperture.
        sn_min: S/N threshold.

    Returns:
        ``(maps (B, H, W) int8, galaxy codes (B,) int8, aperture fluxes (B, 7))`` (fluxes in
        the order of :data:`BPT_LINES`, summed over aperture spaxels valid in all of them);
        spaxels invalid in every BPT line are ``NO_DATA``; a galaxy whose aperture holds no
        spaxel valid in all BPT lines is ``INVALID``.
    """
    pos = [lines.index(name) for name in BPT_LINES]
    f, s, v = flux[:, pos], sigma[:, pos], valid[:, pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(v, f / s, np.nan)
    maps = classify_fluxes(
        _by_line(np.moveaxis(np.where(v, f, np.nan), 1, 0)),
        _by_line(np.moveaxis(snr, 1, 0)),
        sn_min,
    )
    maps[~v.any(axis=1)] = NO_DATA
    common = v.all(axis=1) & aperture  # (B, H, W) spaxels valid in every BPT line
    total = np.where(common[:, None], f, 0.0).sum(axis=(2, 3))
    noise = np.sqrt(np.where(common[:, None], s**2, 0.0).sum(axis=(2, 3)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ap_snr = total / noise
    galaxy = classify_fluxes(_by_line(total.T), _by_line(ap_snr.T), sn_min)
    return maps, galaxy, total


def _by_line(arrays) -> dict[str, np.ndarray]:
    """``{line: arrays[i]}`` over :data:`BPT_LINES` (first axis = line)."""
    return dict(zip(BPT_LINES, arrays, strict=True))


def whan_names(totals: np.ndarray, ew: np.ndarray) -> np.ndarray:
    """(N,) object WHAN class names of galaxies.

    Args:
        totals: (N, 7) aperture fluxes in the order of :data:`BPT_LINES` (gives [NII]/Ha).
        ew: (N, 2) aperture EW(Ha), EW([NII]6585) [Å]; a NaN EW(Ha) gives ``unavailable``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n2 = np.log10(
            totals[:, BPT_LINES.index("NII-6585")] / totals[:, BPT_LINES.index("Ha-6564")]
        )
    n2[~np.isfinite(n2)] = np.nan
    whan = classify_whan(n2, ew[:, 0], ew[:, 1])
    names = np.array([WHAN_NAMES[c] for c in whan], dtype=object)
    names[np.isnan(ew[:, 0])] = "unavailable"
    return names


def run_bpt(
    out, store: Store | str | None = None, cfg: BptConfig | None = None, progress: bool = True
) -> pd.DataFrame:
    """Classify every galaxy of the store; write ``bpt_maps.zarr`` and ``bpt_class``.

    ``whan_class`` needs EW(Ha), which the store's flux maps do not hold: it is computed from
    the ``EMLINE_GEW`` maps of each galaxy's source MAPS file (catalogue column ``source``)
    in the same central aperture (:func:`linecube.analysis.source_ew.aperture_ew`), with
    [NII]/Ha from the store. A galaxy whose source file cannot be read gets ``unavailable``
    (counted in ``analysis.json``).

    Args:
        out: the analysis directory.
        store: the store (or its path); default: the one recorded in the analysis directory.
        cfg: S/N threshold, aperture radius.
        progress: show a progress bar.

    Returns:
        The updated catalogue.
    """
    from linecube.analysis.source_ew import source_ews

    cfg = cfg or BptConfig()
    adir = AnalysisDir(out)
    store = adir.open_store(store.path if isinstance(store, Store) else store)
    missing = [name for name in BPT_LINES if name not in store.meta.lines]
    if missing:
        raise CompatibilityError(
            f"{store.path}: BPT classification needs {', '.join(BPT_LINES)}; "
            f"the store lacks {', '.join(missing)}"
        )
    maps, codes, totals = _classify_store(store, cfg, progress)
    size = store.meta.size
    adir.write_arrays("bpt_maps.zarr", {"bpt": maps}, chunks={"bpt": (1, size, size)})
    columns = {"bpt_class": np.array([BPT_NAMES[c] for c in codes], dtype=object)}
    ew, problems = source_ews(store, cfg.aperture_arcsec, progress)
    columns["whan_class"] = whan_names(totals, ew)
    cat = adir.write_columns(columns, store)
    adir.update_info(
        "bpt",
        {
            **cfg.model_dump(),
            "codes": {int(k): v for k, v in BPT_NAMES.items()},
            "whan_unavailable": len(problems),
            "whan_problems": problems[:20],
        },
    )
    return cat


def _classify_store(
    store: Store, cfg: BptConfig, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`classify_galaxies` over the whole store, batch by batch: ``(maps (N, H, W),
    galaxy codes (N,), aperture fluxes (N, 7))``."""
    from linecube.analysis.physical import physical_maps, pixel_scale

    lines = list(store.meta.lines)
    n, size = len(store), store.meta.size
    aperture = aperture_mask(size, cfg.aperture_arcsec / pixel_scale(store))
    maps = np.empty((n, size, size), dtype=np.int8)
    codes = np.empty(n, dtype=np.int8)
    totals = np.empty((n, len(BPT_LINES)))
    batches = range(0, n, cfg.batch_size)
    for start in progress_bar(len(batches), "bpt", "batch", iterable=batches, disable=not progress):
        stop = min(start + cfg.batch_size, n)
        phys = physical_maps(store, start, stop)
        maps[start:stop], codes[start:stop], totals[start:stop] = classify_galaxies(
            phys["flux"], phys["sigma"], phys["valid"], lines, aperture, cfg.sn_min
        )
    return maps, codes, totals
