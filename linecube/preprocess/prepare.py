"""Turn a :class:`Galaxy` into fixed-size, masked, normalised tensors, and back to flux."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linecube.errors import InputFileError
from linecube.io.galaxy import Galaxy
from linecube.io.readers import read_galaxies, reader_for
from linecube.preprocess.config import PreprocessConfig
from linecube.preprocess.transform import (
    NATIVE_SCALE,
    crop_or_pad,
    resample,
    stretch,
    stretch_domain,
    stretch_slope,
    unstretch,
    window_offset,
)

ROW_KEYS = ("plateifu", "mangaid", "ra", "dec", "z", "reff", "psf_fwhm", "ifudesign", "daptype",
            "release", "ebvgal", "extension", "source")


@dataclass
class Prepared:
    """One galaxy ready for the store.

    Attributes:
        x: (L, H, W) float32 stretched flux / scale; 0 where ``weight`` is 0.
        weight: (L, H, W) uint8, 1 where the spaxel is good.
        ivar: (L, H, W) float32 inverse variance of ``x`` (0 where ``weight`` is 0).
        row: catalogue metadata: identifiers, ``scale`` (flux units per unit of u), the window
            ``offset_y``/``offset_x`` (input pixel = output pixel + offset, in native pixels
            when not resampling), ``center_y``/``center_x``, ``native_h``/``native_w``,
            ``mask_fraction`` (of the output), ``lost_fraction`` (good native spaxels outside
            the window), ``n_nonfinite``, ``n_zero_ivar``, ``n_out_of_domain``.
    """

    x: np.ndarray
    weight: np.ndarray
    ivar: np.ndarray
    row: dict[str, Any]


def galaxy_scale(flux: np.ndarray, good: np.ndarray, lines: tuple[str, ...],
                 cfg: PreprocessConfig) -> float:
    """The per-galaxy scale: ``norm_percentile`` of the good flux of ``norm_line`` (or all)."""
    sel = good if cfg.norm_line is None else good & (
        np.asarray(lines)[:, None, None] == cfg.norm_line)
    values = flux[sel]
    return float(np.percentile(values, cfg.norm_percentile)) if values.size else float("nan")


def preprocess(galaxy: Galaxy, cfg: PreprocessConfig) -> Prepared:
    """Centre, crop/pad (or resample), normalise by one scale and stretch one galaxy.

    Raises:
        InputFileError: lines differ from ``cfg``, no good spaxel in the window, or no
            positive flux to set the scale; named by the galaxy's source.
    """
    source = galaxy.meta.get("source", galaxy.plateifu)
    if tuple(galaxy.lines) != cfg.line_names:
        raise InputFileError(source, f"galaxy lines {galaxy.lines} differ from the "
                                     f"configured {cfg.line_names}")
    if not galaxy.good.any():
        raise InputFileError(source, "every spaxel is masked in all requested lines", "no_data")
    size = cfg.size
    factor = 1.0 if cfg.pixel_scale is None else cfg.pixel_scale / NATIVE_SCALE
    offset = window_offset(galaxy.center, size)
    if factor == 1.0:
        good = crop_or_pad(galaxy.good, offset, size, fill=False)
        flux = np.where(good, crop_or_pad(galaxy.flux, offset, size), 0.0).astype(np.float32)
        ivar = np.where(good, crop_or_pad(galaxy.ivar, offset, size), 0.0).astype(np.float32)
    else:
        flux, ivar, good = resample(galaxy.flux, galaxy.ivar, galaxy.good, galaxy.center, size,
                                    factor, cfg.min_coverage)
    lost = 1.0 - (galaxy.good & _inside(galaxy, size, factor)).sum() / galaxy.good.sum()
    if not good.any():
        raise InputFileError(source, f"no good spaxel within the {size}x{size} window",
                             "no_data")
    scale = galaxy_scale(flux, good, galaxy.lines, cfg)
    if not np.isfinite(scale) or scale <= 0:
        raise InputFileError(source, "no positive flux to set the normalisation scale "
                                     f"(percentile {cfg.norm_percentile} = {scale})", "no_data")
    u = flux.astype(np.float64) / scale
    in_domain = stretch_domain(u, cfg.stretch, cfg.softening)
    n_out = int((good & ~in_domain).sum())
    good &= in_domain
    u = np.where(good, u, 0.0)
    x = stretch(u, cfg.stretch, cfg.softening)
    slope = stretch_slope(u, cfg.stretch, cfg.softening) / scale
    ivar_x = np.where(good, ivar / slope**2, 0.0)
    row = {k: galaxy.meta.get(k) for k in ROW_KEYS}
    row.update(
        plateifu=galaxy.plateifu, mangaid=galaxy.mangaid,
        dapqual=_int(galaxy.meta.get("dapqual")), drp3qual=_int(galaxy.meta.get("drp3qual")),
        scale=scale, offset_y=int(offset[0]), offset_x=int(offset[1]),
        center_y=float(galaxy.center[0]), center_x=float(galaxy.center[1]),
        native_h=int(galaxy.shape[0]), native_w=int(galaxy.shape[1]),
        mask_fraction=float(1.0 - good.mean()), lost_fraction=float(lost),
        n_nonfinite=int(galaxy.meta.get("n_nonfinite", 0)),
        n_zero_ivar=int(galaxy.meta.get("n_zero_ivar", 0)), n_out_of_domain=n_out,
    )
    return Prepared(x=np.where(good, x, 0.0).astype(np.float32), weight=good.astype(np.uint8),
                    ivar=ivar_x.astype(np.float32), row=row)


def _inside(galaxy: Galaxy, size: int, factor: float) -> np.ndarray:
    """(H, W) True for native spaxels whose centre falls inside the output window."""
    bounds = []
    for c, n in zip(galaxy.center, galaxy.shape, strict=True):
        lo = (-(size // 2)) * factor + np.floor(c + 0.5) - factor / 2
        idx = np.arange(n)
        bounds.append((idx >= lo) & (idx < lo + size * factor))
    return bounds[0][:, None] & bounds[1][None, :]


def _int(value) -> int:
    """Quality words as int; -1 where the format does not carry them."""
    return -1 if value is None else int(value)


def invert(x: np.ndarray, scale: float | dict[str, Any], cfg: PreprocessConfig) -> np.ndarray:
    """Physical flux (1e-17 erg/s/cm^2/spaxel) from network units ``x`` of any shape.

    Args:
        x: stretched values, e.g. (L, H, W) or (N, L, H, W) with a scale per leading item.
        scale: the galaxy's ``row["scale"]``, the row itself, or an array broadcastable to x.
        cfg: the configuration that produced ``x``.
    """
    if isinstance(scale, dict):
        scale = scale["scale"]
    u = unstretch(np.asarray(x, dtype=np.float64), cfg.stretch, cfg.softening)
    return (u * np.asarray(scale, dtype=np.float64)).astype(np.float32)


def read_file(path: str | Path, cfg: PreprocessConfig,
              rejections: list[tuple[str, str, str]] | None = None) -> list[Galaxy]:
    """Read the galaxies of a file of any accepted type (:mod:`linecube.io.readers`) with
    ``cfg``; a failed galaxy of a multi-galaxy file goes to ``rejections`` when given."""
    return read_galaxies(path, lines=cfg.line_names, extension=cfg.extension, mask=cfg.mask,
                         allow_critical=cfg.allow_critical, nonfinite=cfg.nonfinite,
                         checks=cfg.checks, errors=rejections)


def prepare_file(path: str | Path, cfg: PreprocessConfig,
                 rejections: list[tuple[str, str, str]] | None = None) -> list[Prepared]:
    """Read and preprocess every galaxy of one file.

    Args:
        path: a MAPS file (one galaxy) or an MMU HDF5 file (many).
        cfg: reading and tensor options.
        rejections: if given, a galaxy of a multi-galaxy file that fails is appended as
            ``(source, reason, kind)`` and skipped; otherwise the first failure raises.

    Raises:
        InputFileError: the file (or, without ``rejections``, one of its galaxies) is unusable.
    """
    out = []
    for galaxy in read_file(path, cfg, rejections):
        try:
            out.append(preprocess(galaxy, cfg))
        except InputFileError as exc:
            if rejections is None or not reader_for(path).multi_galaxy:
                raise
            rejections.append((galaxy.meta["source"], exc.reason, exc.kind))
    return out
