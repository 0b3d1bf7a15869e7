"""Tiny MaNGA inputs built in code with the real layouts (imported by ``conftest.py``).

``fake_maps_arrays`` reproduces what real MAPS files show (format doc §3, §5, §7): a hexagonal
footprint whose corners are NOCOV|LOWCOV|DONOTUSE with value 0 and ivar 0, a LOWCOV|DONOTUSE
edge ring with non-zero values, a NEARBOUND|DONOTUSE spaxel, exact zeros with valid ivar in a
weak line, and mask values that combine several bits.
"""

from __future__ import annotations

import numpy as np

from linecube.lines import RELEASE_LINES

NOCOV, LOWCOV, NEARBOUND, DONOTUSE = 1, 2, 1 << 8, 1 << 30
CORNER = DONOTUSE | LOWCOV | NOCOV  # 1073741827
EDGE = DONOTUSE | LOWCOV  # 1073741826
BOUND = DONOTUSE | NEARBOUND  # 1073742080


def hexagon(n: int, radius: float | None = None) -> np.ndarray:
    """(n, n) bool: True inside a flat-topped hexagon centred on pixel (n // 2, n // 2)."""
    r = (n / 2 - 0.5) if radius is None else radius
    y, x = np.mgrid[:n, :n] - n // 2
    ax, ay = np.abs(x), np.abs(y)
    return (ay <= r * np.sqrt(3) / 2) & (np.sqrt(3) * ax + ay <= np.sqrt(3) * r)


def fake_maps_arrays(release: str = "dr17", n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """EMLINE_GFLUX/_IVAR/_MASK and EMLINE_SFLUX/_IVAR/_MASK of one fake galaxy (C, n, n)."""
    rng = np.random.default_rng(seed)
    names = [ln.name for ln in RELEASE_LINES[release]]
    c = len(names)
    inside = hexagon(n)
    core = hexagon(n, radius=n / 2 - 1.5)
    y, x = np.mgrid[:n, :n] - n // 2
    disc = np.exp(-np.hypot(x, y) / 3.0)
    ratio = rng.uniform(0.05, 1.0, size=c)
    ratio[names.index("Ha-6564")] = 3.0
    flux = (20.0 * ratio[:, None, None] * disc[None] * rng.uniform(0.8, 1.2, (c, n, n)))
    ivar = 1.0 / (0.05 * flux + 0.02) ** 2
    mask = np.zeros((c, n, n), dtype=np.int32)
    mask[:, ~inside] = CORNER
    flux[:, ~inside] = 0.0
    ivar[:, ~inside] = 0.0
    edge = inside & ~core
    mask[:, edge] = EDGE
    heii = names.index("HeII-4687")
    flux[heii, core & (x > 0)] = 0.0  # exact zeros, valid ivar: measured non-detections
    cy, cx = n // 2, n // 2
    mask[:, cy - 1, cx + 1] = BOUND
    flux = flux.astype(np.float32)
    ivar = ivar.astype(np.float32)
    sflux = (flux + rng.normal(0, 0.1, flux.shape) * inside).astype(np.float32)
    return {"EMLINE_GFLUX": flux, "EMLINE_GFLUX_IVAR": ivar, "EMLINE_GFLUX_MASK": mask,
            "EMLINE_SFLUX": sflux, "EMLINE_SFLUX_IVAR": ivar.copy(),
            "EMLINE_SFLUX_MASK": mask.copy()}


def fake_header(plateifu: str = "8485-1901", **extra) -> dict:
    """PRIMARY keywords of format doc §3.4 for a fake galaxy."""
    plate, ifu = plateifu.split("-")
    header = {"PLATEIFU": plateifu, "MANGAID": f"1-{plate}{ifu}", "PLATEID": int(plate),
              "IFUDSGN": ifu, "OBJRA": 229.525575, "OBJDEC": 42.745853, "IFURA": 229.525575,
              "IFUDEC": 42.745853, "SCINPVEL": 8782.6, "EBVGAL": 0.0172, "GFWHM": 2.65,
              "RFWHM": 2.60, "IFWHM": 2.59, "ZFWHM": 2.59, "REFF": 3.2, "DAPQUAL": 0,
              "DRP3QUAL": 0}
    header.update(extra)
    return header
