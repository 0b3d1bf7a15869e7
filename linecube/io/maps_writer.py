"""Write MaNGA DAP ``MAPS`` files in the exact DR17 (64 HDUs) or DR15 (48 HDUs) layout.

The layout, header keywords and data types follow ``manga-maps-format.md`` §3: named HDUs,
channel names in ``C01``… keywords (zero-padded to the digits needed, with a trailing blank in
the value as in real files), ``HDUCLASS``/``HDUCLAS1-3``, ``ERRDATA``/``QUALDATA``/``SCIDATA``,
``MASKNAME``, ``BUNIT``, big-endian ``>f4``/``>i4`` arrays and ``CHECKSUM``/``DATASUM``.
Output is byte-for-byte deterministic for the same input (no timestamps, gzip ``mtime=0``) and
written atomically.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits

from linecube.atomic import atomic_write_bytes
from linecube.lines import RELEASE_LINES

Release = Literal["dr17", "dr15"]

FLUX = "1E-17 erg/s/cm^2/spaxel"
FLUX_DENSITY = "1E-17 erg/s/cm^2/ang/spaxel"
PIXSCALE_DEG = 0.5 / 3600.0

# Channel names of the non-emission-line multichannel extensions.
_SKYCOO = ("On-sky X", "On-sky Y")
_ELLCOO = {"dr17": ("Elliptical radius", "R/R_e", "R h/kpc", "Elliptical azimuth"),
           "dr15": ("Elliptical radius", "R/R_e", "Elliptical azimuth")}
_ELLCOO_UNITS = {"dr17": ("arcsec", "", "kpc/h", "deg"), "dr15": ("arcsec", "", "deg")}
_BINID = ("Binned spectra", "Stellar continua", "Em. line moments", "Em. line models",
          "Spectral indices")
_FOM = ("rms", "frms", "rchi2", "68th perc frac resid", "99th perc frac resid",
        "max frac resid", "68th perc per pix chi", "99th perc per pix chi", "max per pix chi")
_FOM_UNITS = (FLUX_DENSITY, "", "", "", "", "", "", "", "")
_SIGMACORR = {"dr17": ("resolution_difference", "fit"), "dr15": None}
_FRESID = ("68th perc", "99th perc")
_SPECINDEX = (
    "CN1", "CN2", "Ca4227", "G4300", "Fe4383", "Ca4455", "Fe4531", "C24668", "Hb", "Fe5015",
    "Mg1", "Mg2", "Mgb", "Fe5270", "Fe5335", "Fe5406", "Fe5709", "Fe5782", "NaD", "TiO1", "TiO2",
    "HDeltaA", "HGammaA", "HDeltaF", "HGammaF", "CaHK", "CaII1", "CaII2", "CaII3", "Pa17",
    "Pa14", "Pa12", "MgICvD", "NaICvD", "MgIIR", "FeHCvD", "NaI", "bTiO", "aTiO", "CaH1", "CaH2",
    "NaISDSS", "TiO2SDSS", "D4000", "Dn4000", "TiOCvD",
)
_MAG_INDICES = {"CN1", "CN2", "Mg1", "Mg2", "TiO1", "TiO2", "bTiO", "aTiO", "CaH1", "CaH2",
                "TiO2SDSS"}
_SPECINDEX_UNITS = tuple(
    "mag" if n in _MAG_INDICES else "" if n.startswith("D") else "ang" for n in _SPECINDEX)

DEFAULT_PRIMARY: dict[str, dict[str, Any]] = {
    "dr17": {"VERSDRP3": "v3_1_1", "VERSDAP": "3.1.0", "DAPFRMT": "3.1.0", "EMLDB": "ELPMPL11",
             "DAPTYPE": "HYB10-MILESHC-MASTARSSP", "DAPQUAL": 0, "DRP3QUAL": 0},
    "dr15": {"VERSDRP3": "v2_4_3", "VERSDAP": "2.2.1", "DAPFRMT": "2.2", "EMLDB": "ELPMILES",
             "DAPTYPE": "HYB10-GAU-MILESHC", "DAPQUAL": 0, "DRP3QUAL": 0},
}


@dataclass(frozen=True)
class Extension:
    """One MAPS HDU: name, channel names (None for a single image), unit, role, dtype.

    ``role`` is ``"data"`` (with ``ivar``/``mask`` siblings named in ERRDATA/QUALDATA when they
    exist), ``"ivar"``, ``"mask"`` or ``"plain"``.
    """

    name: str
    channels: tuple[str, ...] | None
    unit: str | None  # None: masks and mixed-unit extensions (see ``units``)
    role: str
    dtype: str = ">f4"
    units: tuple[str, ...] | None = None  # per-channel U keys

    @property
    def n_channels(self) -> int:
        return len(self.channels) if self.channels else 1


def _triplet(name, channels, unit, units=None, ivar=True, mask=True) -> list[Extension]:
    out = [Extension(name, channels, unit, "data", units=units)]
    if ivar:
        inv = f"({unit})^{{-2}}" if unit else None
        out.append(Extension(f"{name}_IVAR", channels, inv, "ivar"))
    if mask:
        out.append(Extension(f"{name}_MASK", channels, None, "mask", dtype=">i4"))
    return out


def layout(release: Release) -> list[Extension]:
    """The ordered extension list (PRIMARY excluded) of a DR17 or DR15 MAPS file."""
    if release not in RELEASE_LINES:
        raise ValueError(f"release must be 'dr17' or 'dr15', got {release!r}")
    dr17 = release == "dr17"
    lines = tuple(ln.name for ln in RELEASE_LINES[release])
    ell = _ELLCOO[release]
    ext: list[Extension] = [
        Extension("SPX_SKYCOO", _SKYCOO, "arcsec", "plain"),
        Extension("SPX_ELLCOO", ell, None, "plain", units=_ELLCOO_UNITS[release]),
        *_triplet("SPX_MFLUX", None, FLUX_DENSITY, mask=False),
        Extension("SPX_SNR", None, "", "plain"),
        Extension("BINID", _BINID, "", "plain", dtype=">i4"),
        Extension("BIN_LWSKYCOO", _SKYCOO, "arcsec", "plain"),
        Extension("BIN_LWELLCOO", ell, None, "plain", units=_ELLCOO_UNITS[release]),
        Extension("BIN_AREA", None, "arcsec^2", "plain"),
        Extension("BIN_FAREA", None, "", "plain"),
        *_triplet("BIN_MFLUX", None, FLUX_DENSITY),
        Extension("BIN_SNR", None, "", "plain"),
        *_triplet("STELLAR_VEL", None, "km/s"),
        *_triplet("STELLAR_SIGMA", None, "km/s"),
        Extension("STELLAR_SIGMACORR", _SIGMACORR[release], "km/s", "plain"),
    ]
    if dr17:
        ext.append(Extension("STELLAR_FOM", _FOM, None, "plain", units=_FOM_UNITS))
    else:
        ext += [Extension("STELLAR_CONT_FRESID", _FRESID, "", "plain"),
                Extension("STELLAR_CONT_RCHI2", None, "", "plain")]
    ext += _triplet("EMLINE_SFLUX", sflux_channels(lines, release), FLUX)
    sew = _triplet("EMLINE_SEW", lines, "ang")
    gew = _triplet("EMLINE_GEW", lines, "ang")
    if dr17:
        sew.insert(1, Extension("EMLINE_SEW_CNT", lines, FLUX_DENSITY, "plain"))
        gew.insert(1, Extension("EMLINE_GEW_CNT", lines, FLUX_DENSITY, "plain"))
    ext += sew
    ext += _triplet("EMLINE_GFLUX", lines, FLUX)
    ext += gew
    ext += _triplet("EMLINE_GVEL", lines, "km/s")
    ext += _triplet("EMLINE_GSIGMA", lines, "km/s")
    ext += [Extension("EMLINE_INSTSIGMA", lines, "km/s", "plain"),
            Extension("EMLINE_TPLSIGMA", lines, "km/s", "plain")]
    if dr17:
        ext += [Extension("EMLINE_GA", lines, FLUX_DENSITY, "plain"),
                Extension("EMLINE_GANR", lines, "", "plain"),
                Extension("EMLINE_FOM", _FOM, None, "plain", units=_FOM_UNITS),
                Extension("EMLINE_LFOM", lines, "", "plain")]
    families = ("SPECINDEX", "SPECINDEX_BF", "SPECINDEX_WGT") if dr17 else ("SPECINDEX",)
    for fam in families:
        ext += _triplet(fam, _SPECINDEX, None, units=_SPECINDEX_UNITS)
        ext.append(Extension(f"{fam}_CORR", _SPECINDEX, None, "plain", units=_SPECINDEX_UNITS))
        if dr17:
            ext.append(Extension(f"{fam}_MODEL", _SPECINDEX, None, "plain",
                                 units=_SPECINDEX_UNITS))
    return ext


def sflux_channels(lines: tuple[str, ...], release: Release) -> tuple[str, ...]:
    """DR17 names its first SFLUX channel ``OIId-3728`` (the summed [OII] doublet)."""
    return ("OIId-3728", *lines[1:]) if release == "dr17" else lines


# Extensions written (as zeros when not given) even when ``full`` is False.
DEFAULT_EXTENSIONS = (
    "SPX_SKYCOO", "SPX_ELLCOO", "SPX_SNR", "BINID",
    "EMLINE_SFLUX", "EMLINE_SFLUX_IVAR", "EMLINE_SFLUX_MASK",
    "EMLINE_GFLUX", "EMLINE_GFLUX_IVAR", "EMLINE_GFLUX_MASK", "EMLINE_GEW",
    "EMLINE_GVEL", "EMLINE_GVEL_IVAR", "EMLINE_GVEL_MASK",
    "EMLINE_GSIGMA", "EMLINE_GSIGMA_IVAR", "EMLINE_GSIGMA_MASK",
)


def maps_filename(plateifu: str, daptype: str = "HYB10-MILESHC-MASTARSSP") -> str:
    """DAP file name, e.g. ``manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz``."""
    plate, ifu = str(plateifu).split("-")
    return f"manga-{plate}-{ifu}-MAPS-{daptype}.fits.gz"


def channel_key(index: int, n_channels: int) -> str:
    """Header key of 0-based channel ``index``: ``C1``…``C9`` or ``C01``…``C35`` (as the DAP)."""
    return f"C{index + 1:0{len(str(n_channels))}d}"


def _wcs_cards(shape: tuple[int, int], primary: Mapping[str, Any]) -> list[tuple]:
    ny, nx = shape
    ra = float(primary.get("IFURA", primary.get("OBJRA", 0.0)))
    dec = float(primary.get("IFUDEC", primary.get("OBJDEC", 0.0)))
    return [
        ("WCSAXES", 2, "Number of coordinate axes"),
        ("CRPIX1", nx // 2 + 1, "Pixel coordinate of reference point"),
        ("CRPIX2", ny // 2 + 1, "Pixel coordinate of reference point"),
        ("PC1_1", -PIXSCALE_DEG, "Coordinate transformation matrix element"),
        ("PC2_2", PIXSCALE_DEG, "Coordinate transformation matrix element"),
        ("CDELT1", 1.0, "[deg] Coordinate increment at reference point"),
        ("CDELT2", 1.0, "[deg] Coordinate increment at reference point"),
        ("CUNIT1", "deg", "Units of coordinate increment and value"),
        ("CUNIT2", "deg", "Units of coordinate increment and value"),
        ("CTYPE1", "RA---TAN", "Right ascension, gnomonic projection"),
        ("CTYPE2", "DEC--TAN", "Declination, gnomonic projection"),
        ("CRVAL1", ra, "[deg] Coordinate value at reference point"),
        ("CRVAL2", dec, "[deg] Coordinate value at reference point"),
    ]


def _extension_header(ext: Extension, shape, primary, sibling_names: set[str]) -> fits.Header:
    cards = _wcs_cards(shape, primary)
    cards.append(("EXTNAME", ext.name))
    cards.append(("BUNIT", ext.unit or ""))  # every HDU carries BUNIT; "" when unitless/mixed
    if ext.channels:
        n = len(ext.channels)
        cards += [(channel_key(i, n), f"{name} ") for i, name in enumerate(ext.channels)]
        cards += [(f"U{channel_key(i, n)[1:]}", f"{unit} ")
                  for i, unit in enumerate(ext.units or ())]
    cards += [("HDUCLASS", "SDSS"), ("HDUCLAS1", "CUBE" if ext.channels else "IMAGE")]
    base = ext.name.removesuffix("_IVAR").removesuffix("_MASK")
    ivar, mask = f"{base}_IVAR", f"{base}_MASK"
    if ext.role == "data":
        cards.append(("HDUCLAS2", "DATA"))
        if ivar in sibling_names:
            cards.append(("ERRDATA", ivar))
        if mask in sibling_names:
            cards.append(("QUALDATA", mask))
    elif ext.role == "ivar":
        cards += [("HDUCLAS2", "ERROR"), ("HDUCLAS3", "INVMSE"), ("SCIDATA", base)]
        if mask in sibling_names:
            cards.append(("QUALDATA", mask))
    elif ext.role == "mask":
        cards += [("HDUCLAS2", "QUALITY"), ("HDUCLAS3", "FLAG32BIT"), ("SCIDATA", base)]
        if ivar in sibling_names:
            cards.append(("ERRDATA", ivar))
    else:
        cards.append(("HDUCLAS2", "DATA"))
    cards.append(("MASKNAME", "MANGA_DAPPIXMASK"))
    return fits.Header(cards)


def build_hdulist(maps: Mapping[str, np.ndarray], header: Mapping[str, Any],
                  release: Release = "dr17", full: bool = False) -> fits.HDUList:
    """The HDUList ``write_maps`` writes (see there), with checksums set."""
    exts = layout(release)
    by_name = {e.name: e for e in exts}
    unknown = sorted(set(maps) - set(by_name) - {"PRIMARY"})
    if unknown:
        raise ValueError(f"unknown {release.upper()} MAPS extensions: {', '.join(unknown)}")
    if not maps:
        raise ValueError("write_maps needs at least one map to know the spatial shape")
    shapes = {np.shape(a)[-2:] for a in maps.values()}
    if len(shapes) != 1:
        raise ValueError(f"maps disagree on the spatial shape: {sorted(shapes)}")
    shape = shapes.pop()
    wanted = {e.name for e in exts} if full else set(DEFAULT_EXTENSIONS) | set(maps)
    chosen = [e for e in exts if e.name in wanted]
    names = {e.name for e in chosen}

    primary_cards = dict(DEFAULT_PRIMARY[release])
    primary_cards.update(header)
    phdr = fits.Header()
    for key, value in primary_cards.items():
        phdr[key] = value
    hdus: list[fits.hdu.base.ExtensionHDU] = [fits.PrimaryHDU(header=phdr)]
    for ext in chosen:
        full_shape = (ext.n_channels, *shape) if ext.channels else shape
        if ext.name in maps:
            data = np.asarray(maps[ext.name])
            if data.shape != full_shape:
                raise ValueError(f"{ext.name}: shape {data.shape}, expected {full_shape} "
                                 f"({ext.n_channels} channels in {release.upper()})")
            if np.dtype(ext.dtype).kind == "i" and data.dtype.kind == "f":
                raise ValueError(f"{ext.name}: integer data expected, got {data.dtype}")
            data = data.astype(ext.dtype)
        else:
            data = np.zeros(full_shape, dtype=ext.dtype)
        hdr = _extension_header(ext, shape, primary_cards, names)
        hdus.append(fits.ImageHDU(data=data, header=hdr, name=ext.name))
    hdul = fits.HDUList(hdus)
    for hdu in hdul:
        hdu.add_datasum(when="data unit checksum")
        hdu.add_checksum(when="HDU checksum", override_datasum=True)
    return hdul


def write_maps(path: str | Path, maps: Mapping[str, np.ndarray], header: Mapping[str, Any],
               release: Release = "dr17", full: bool = False) -> None:
    """Write a DAP MAPS file.

    Args:
        path: output file; gzip-compressed when it ends in ``.gz`` (any case).
        maps: EXTNAME -> array, (C, H, W) for multichannel extensions or (H, W), for any subset
            of the release's extensions. Channels follow the release's header order.
        header: PRIMARY keywords (``PLATEIFU``, ``MANGAID``, ``OBJRA``, ``OBJDEC``, ``IFURA``,
            ``IFUDEC``, ``SCINPVEL``, ``EBVGAL``, ``RFWHM``, ``DAPQUAL``, ``DRP3QUAL``, ...),
            written in the order given. ``VERSDRP3``, ``VERSDAP``, ``DAPFRMT``, ``EMLDB``,
            ``DAPTYPE``, ``DAPQUAL`` and ``DRP3QUAL`` default to the release's values (0 for the
            quality words) when absent.
        release: ``"dr17"`` (64 HDUs, 35 lines) or ``"dr15"`` (48 HDUs, 22 lines).
        full: write every HDU of the release; otherwise PRIMARY, the default set
            (``DEFAULT_EXTENSIONS``) and whatever ``maps`` holds. Missing HDUs are zeros.
    """
    hdul = build_hdulist(maps, header, release=release, full=full)
    buf = io.BytesIO()
    hdul.writeto(buf, output_verify="exception", checksum=False)
    raw = buf.getvalue()
    if str(path).lower().endswith(".gz"):
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
            gz.write(raw)
        raw = out.getvalue()
    atomic_write_bytes(Path(path), raw)
