"""Read and write Multimodal Universe MaNGA HDF5 files (format doc §10).

One file holds many observations, one group per plate-IFU. Each group has scalar datasets
(``object_id``, ``ra``, ``dec``, ``healpix``, ``z``, ``spaxel_size``, ``spaxel_size_unit``) and
a ``maps`` table with one row per map channel: ``group`` (e.g. ``b"emline_gflux"``), ``label``
(``b"emline_gflux_ha_6564"``), ``array``/``ivar``/``mask`` (float32 images zero-padded to
96x96, the mask padding set to DONOTUSE) and ``array_units``.

The format carries no MANGAID, DAPQUAL, DRP3QUAL, REFF, PSF or EBVGAL: those fields of the
galaxy metadata are empty (``""``/None/NaN) and the CRITICAL-bit check cannot be applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import h5py
import numpy as np

from linecube.atomic import atomic_path
from linecube.bits import DAPPIXMASK
from linecube.errors import InputFileError
from linecube.io.checks import InputChecks
from linecube.io.galaxy import Galaxy
from linecube.io.maps import (
    Extension,
    MaskPolicy,
    NonFinite,
    bad_bits,
    check_regular_file,
    galaxy_from_arrays,
)
from linecube.lines import DR17_LINES, resolve_lines

MMU_SIZE = 96
MMU_DAPTYPE = "HYB10-MILESHC-MASTARSSP"
UNITS = {"GFLUX": b"1E-17 erg/s/cm^2/spaxel", "SFLUX": b"1E-17 erg/s/cm^2/spaxel"}


def mmu_label(extension: str, line: str) -> str:
    """``mmu_label("GFLUX", "Ha-6564") == "emline_gflux_ha_6564"``."""
    return f"emline_{extension.lower()}_{line.lower().replace('-', '_')}"


def pad_to(image: np.ndarray, size: int, value: float) -> np.ndarray:
    """Pad (..., H, W) symmetrically to (..., size, size) with ``value`` (extra pixel after)."""
    h, w = image.shape[-2:]
    if h > size or w > size:
        raise ValueError(f"map of {h}x{w} does not fit in {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    pad = [(0, 0)] * (image.ndim - 2) + [(top, size - h - top), (left, size - w - left)]
    return np.pad(image, pad, constant_values=value)


def write_mmu(path: str | Path, galaxies: Iterable[Galaxy], release: str = "DR17") -> None:
    """Write galaxies to one MMU MaNGA HDF5 file (atomically).

    Each galaxy's lines become ``maps`` rows of group ``emline_<ext>`` where ``<ext>`` is
    ``galaxy.meta["extension"]`` (default GFLUX); maps are padded to 96x96.
    """
    donotuse = float(1 << DAPPIXMASK["DONOTUSE"])
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as hdf:
            hdf.attrs.update({"project": "SDSS", "survey": "MaNGA", "release": release})
            for gal in galaxies:
                ext = str(gal.meta.get("extension", "GFLUX"))
                grp = hdf.create_group(gal.plateifu, track_order=True)
                scalars = {
                    "object_id": gal.plateifu,
                    "ra": float(gal.meta.get("ifura", gal.meta.get("ra", np.nan))),
                    "dec": float(gal.meta.get("ifudec", gal.meta.get("dec", np.nan))),
                    "healpix": int(gal.meta.get("healpix", 0)),
                    "z": float(gal.meta.get("z", np.nan)),
                    "spaxel_size": 0.5,
                    "spaxel_size_unit": b"arcsec",
                }
                for key, value in scalars.items():
                    grp.attrs[key] = value
                    grp.create_dataset(key, data=value)
                n = len(gal.lines)
                dtype = np.dtype([
                    ("group", "S32"), ("label", "S64"),
                    ("array", "<f4", (MMU_SIZE, MMU_SIZE)), ("ivar", "<f4", (MMU_SIZE, MMU_SIZE)),
                    ("mask", "<f4", (MMU_SIZE, MMU_SIZE)), ("array_units", "S32"),
                ])
                rows = np.zeros(n, dtype=dtype)
                rows["group"] = f"emline_{ext.lower()}".encode()
                rows["label"] = [mmu_label(ext, ln).encode() for ln in gal.lines]
                rows["array"] = pad_to(gal.flux.astype(np.float32), MMU_SIZE, 0.0)
                rows["ivar"] = pad_to(gal.ivar.astype(np.float32), MMU_SIZE, 0.0)
                rows["mask"] = pad_to(gal.mask.astype(np.float32), MMU_SIZE, donotuse)
                rows["array_units"] = UNITS.get(ext, b"")
                grp.create_dataset("maps", data=rows)


def read_mmu(path: str | Path, lines: str | list[str] | tuple[str, ...] | None = None,
             extension: Extension = "GFLUX", mask: MaskPolicy = "donotuse",
             nonfinite: NonFinite = "mask", errors: list[tuple[str, str, str]] | None = None,
             checks: InputChecks | None = None) -> Iterator[Galaxy]:
    """Yield one :class:`Galaxy` per observation group of an MMU MaNGA HDF5 file.

    Maps stay at 96x96 with the IFU centre at (47.5, 47.5); the padding is DONOTUSE and so is
    never good. Only the requested rows of each ``maps`` table are read.

    Args:
        path: an ``.hdf5``/``.h5`` file.
        lines, extension, mask, nonfinite, checks: as :func:`linecube.io.maps.read_maps`.
        errors: if given, a galaxy that fails validation is recorded as
            ``("<path>#<plateifu>", reason, kind)`` and skipped; otherwise it raises.

    Raises:
        InputFileError: not HDF5, no observation groups, or (without ``errors``) a group
            missing the expected datasets, columns or lines.
    """
    names = resolve_lines(lines)
    bad_bits(mask)
    path = Path(path)
    checks = InputChecks() if checks is None else checks
    with _open(path) as hdf:
        groups = [k for k in hdf if isinstance(hdf[k], h5py.Group)]
        if not groups:
            raise InputFileError(path, "no observation groups (expected one group per "
                                       "plate-IFU with a 'maps' table)")
        for key in groups:
            try:
                yield _read_group(path, hdf[key], key, names, extension, mask, nonfinite, checks)
            except InputFileError as exc:
                if errors is None:
                    raise
                errors.append((f"{path}#{key}", exc.reason, exc.kind))


def mmu_lines(path: str | Path, extension: str = "GFLUX") -> list[str]:
    """The catalogued emission lines (DR17 channel names) of an MMU file: those whose
    ``emline_<extension>_*`` labels the first group holding any of them has, by wavelength.

    Raises:
        InputFileError: not a readable HDF5 file, or no group has such labels.
    """
    path = Path(path)
    by_label = {mmu_label(extension, ln.name): ln.name for ln in DR17_LINES}
    with _open(path) as hdf:
        try:
            for key in hdf:
                if isinstance(hdf[key], h5py.Group) and "maps" in hdf[key]:
                    labels = {bytes(v).decode().strip()
                              for v in hdf[key]["maps"].fields("label")[:]}
                    found = [by_label[lab] for lab in labels if lab in by_label]
                    if found:
                        return list(resolve_lines(found))
        except OSError as exc:
            raise InputFileError(path, f"not a readable HDF5 file ({exc})",
                                 "unreadable") from None
    raise InputFileError(path, f"no group has {mmu_label(extension, '')}* rows in its 'maps' "
                               "table")


def _open(path: Path) -> h5py.File:
    """``path`` opened read-only as HDF5; ``InputFileError`` unless it is a readable HDF5 file."""
    check_regular_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file ({exc})", "unreadable") from None


def _read_group(path, grp, key, names, extension, mask_policy, nonfinite, checks) -> Galaxy:
    where = f"group {key}"
    if "maps" not in grp:
        raise InputFileError(path, f"{where}: no 'maps' dataset")
    maps = grp["maps"]
    fields = maps.dtype.names or ()
    missing = [c for c in ("label", "array", "ivar", "mask") if c not in fields]
    if missing:
        raise InputFileError(path, f"{where}: 'maps' lacks column(s) {', '.join(missing)}")
    image = maps.dtype["array"].shape
    if maps.ndim != 1 or maps.shape[0] > checks.max_channels or len(image) != 2 \
            or max(image) > checks.max_map_size:
        raise InputFileError(path, f"{where}: 'maps' claims {maps.shape} rows of {image} "
                             f"images; at most {checks.max_channels} rows of "
                             f"{checks.max_map_size} x {checks.max_map_size} are accepted "
                             "(checks.max_channels, checks.max_map_size)", "too_large")
    labels = [bytes(v).decode().strip() for v in maps.fields("label")[:]]
    row_of = {lab: i for i, lab in enumerate(labels)}
    wanted = [mmu_label(extension, n) for n in names]
    absent = [n for n, lab in zip(names, wanted, strict=True) if lab not in row_of]
    if absent:
        raise InputFileError(path, f"{where}: line(s) {', '.join(absent)} not in 'maps' "
                                   f"(no labels {', '.join(mmu_label(extension, n) for n in absent)})",
                             "lines")
    idx = np.array([row_of[lab] for lab in wanted])
    order = np.argsort(idx)
    rows = maps[idx[order].tolist()]
    inverse = np.argsort(order)
    flux, ivar, mask = (rows[c][inverse] for c in ("array", "ivar", "mask"))
    if flux.ndim != 3:
        raise InputFileError(path, f"{where}: 'maps' arrays are not images")
    if not np.all(np.isfinite(mask)) or np.any(mask != np.round(mask)):
        raise InputFileError(path, f"{where}: mask column holds non-integer values")
    ny, nx = flux.shape[1:]

    def scalar(name, default):
        if name in grp and isinstance(grp[name], h5py.Dataset):
            value = grp[name][()]
        else:
            value = grp.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    plateifu = str(scalar("object_id", key))
    meta = {
        "plateifu": plateifu, "mangaid": "",
        "ra": float(scalar("ra", np.nan)), "dec": float(scalar("dec", np.nan)),
        "ifura": float(scalar("ra", np.nan)), "ifudec": float(scalar("dec", np.nan)),
        "z": float(scalar("z", np.nan)), "reff": float("nan"), "psf_fwhm": float("nan"),
        "ifudesign": int(plateifu.split("-")[-1]) if plateifu.split("-")[-1].isdigit() else -1,
        "daptype": MMU_DAPTYPE, "dapqual": None, "drp3qual": None, "ebvgal": float("nan"),
        "release": "dr17", "extension": extension, "source": f"{path}#{key}",
    }
    return galaxy_from_arrays(path, names, flux, ivar, mask.astype(np.int64).astype(np.int32),
                              meta, ((ny - 1) / 2, (nx - 1) / 2), mask_policy=mask_policy,
                              nonfinite=nonfinite, checks=checks)
