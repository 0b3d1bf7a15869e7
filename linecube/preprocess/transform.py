"""Array operations of preprocessing: centring window, resampling, stretch and its inverse."""

from __future__ import annotations

import math

import numpy as np

NATIVE_SCALE = 0.5  # arcsec per MaNGA spaxel


def window_offset(center: tuple[float, float], size: int) -> tuple[int, int]:
    """Offsets (oy, ox) so that output pixel (i, j) is input pixel (i + oy, j + ox).

    The IFU centre lands on output pixel (size // 2, size // 2); half-integer centres round
    up (``floor(c + 0.5)``).
    """
    return tuple(int(math.floor(c + 0.5)) - size // 2 for c in center)


def crop_or_pad(cube: np.ndarray, offset: tuple[int, int], size: int, fill=0) -> np.ndarray:
    """Cut the (L, size, size) window at ``offset`` from (L, H, W), filling outside with ``fill``."""
    n, h, w = cube.shape
    out = np.full((n, size, size), fill, dtype=cube.dtype)
    oy, ox = offset
    y0, y1 = max(0, oy), min(h, oy + size)
    x0, x1 = max(0, ox), min(w, ox + size)
    if y1 > y0 and x1 > x0:
        out[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox] = cube[:, y0:y1, x0:x1]
    return out


def overlap_matrix(n_in: int, center: float, size: int, factor: float) -> np.ndarray:
    """(size, n_in) fractional overlap of output pixels (width ``factor`` input pixels) with
    input pixels; output pixel ``size // 2`` is centred on ``floor(center + 0.5)``."""
    c = math.floor(center + 0.5)
    out_lo = (np.arange(size) - size // 2) * factor + c - factor / 2
    in_lo = np.arange(n_in) - 0.5
    lo = np.maximum(out_lo[:, None], in_lo[None, :])
    hi = np.minimum(out_lo[:, None] + factor, in_lo[None, :] + 1)
    return np.clip(hi - lo, 0, None)


def resample(flux: np.ndarray, ivar: np.ndarray, good: np.ndarray, center: tuple[float, float],
             size: int, factor: float, min_coverage: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux-conserving resampling of (L, H, W) maps onto (L, size, size) pixels ``factor`` times
    the native size, centred like :func:`window_offset`.

    Masked input spaxels are excluded; an output pixel's flux is the good flux in it scaled up
    to its full area, its variance propagated from the inputs (covariance ignored). It is good
    when good inputs cover at least ``min_coverage`` of its area.
    """
    ry = overlap_matrix(flux.shape[1], center[0], size, factor)
    rx = overlap_matrix(flux.shape[2], center[1], size, factor)
    g = good.astype(np.float64)
    f = np.where(good, flux, 0.0).astype(np.float64)
    with np.errstate(divide="ignore"):
        var = np.where(good, 1.0 / ivar.astype(np.float64), 0.0)
    area = np.einsum("yh,lhw,xw->lyx", ry, g, rx)
    total = np.einsum("yh,lhw,xw->lyx", ry, f, rx)
    total_var = np.einsum("yh,lhw,xw->lyx", ry**2, var, rx**2)
    full = factor * factor
    ok = area >= min_coverage * full - 1e-9
    gain = np.where(ok, full / np.where(ok, area, 1.0), 0.0)
    out_flux = (total * gain).astype(np.float32)
    out_var = total_var * gain**2
    ok &= out_var > 0
    out_ivar = np.where(ok, 1.0 / np.where(ok, out_var, 1.0), 0.0).astype(np.float32)
    return np.where(ok, out_flux, 0.0), out_ivar, ok


def stretch(u: np.ndarray, kind: str, a: float) -> np.ndarray:
    """Map flux / scale ``u`` to network units; 0 -> 0 and 1 -> 1 for every kind."""
    if kind == "asinh":
        return np.arcsinh(u / a) / math.asinh(1.0 / a)
    if kind == "log":
        return np.log1p(u / a) / math.log1p(1.0 / a)
    if kind == "linear":
        return u
    raise ValueError(f"unknown stretch {kind!r}")


def unstretch(x: np.ndarray, kind: str, a: float) -> np.ndarray:
    """Inverse of :func:`stretch`."""
    if kind == "asinh":
        return a * np.sinh(x * math.asinh(1.0 / a))
    if kind == "log":
        return a * np.expm1(x * math.log1p(1.0 / a))
    if kind == "linear":
        return x
    raise ValueError(f"unknown stretch {kind!r}")


def stretch_slope(u: np.ndarray, kind: str, a: float) -> np.ndarray:
    """d stretch / d u, used to carry the inverse variance into network units."""
    if kind == "asinh":
        return 1.0 / (math.asinh(1.0 / a) * np.sqrt(a * a + u * u))
    if kind == "log":
        return 1.0 / (math.log1p(1.0 / a) * (a + u))
    if kind == "linear":
        return np.ones_like(u)
    raise ValueError(f"unknown stretch {kind!r}")


def stretch_domain(u: np.ndarray, kind: str, a: float) -> np.ndarray:
    """Where the stretch is defined: ``u > -a`` for ``log``, everywhere otherwise."""
    return u > -a if kind == "log" else np.ones(u.shape, dtype=bool)
