"""Read emission-line maps from MaNGA DAP ``MAPS`` files (DR15 and DR17, ``.fits``/``.fits.gz``).

Policies (shared with the Multimodal Universe reader, see ``docs/data.md``):

* **mask**: ``"donotuse"`` (default) drops spaxels with bit 30 set; ``"strict"`` keeps only
  ``mask == 0``; a list of ``MANGA_DAPPIXMASK`` bit names drops spaxels with any of them.
* **ivar**: a spaxel the mask keeps must have ``ivar >= 0``; a negative value there means a
  corrupt file and is rejected. ``ivar == 0`` is no measurement: the spaxel is not good.
* **NaN/Inf** in flux or ivar of a spaxel the mask keeps: ``nonfinite="mask"`` (default) marks
  the spaxel not good and counts it in ``meta["n_nonfinite"]``; ``"reject"`` rejects the file.
* **zeros**: an exact 0.0 flux with ivar > 0 is a measured non-detection and stays good.
* **quality**: the CRITICAL bit (30) in ``DAPQUAL`` or ``DRP3QUAL`` rejects the file unless
  ``allow_critical`` is set.
* a galaxy with no good spaxel in any requested line is rejected.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits

from linecube.bits import CRITICAL_BIT, DAPPIXMASK, DAPQUAL, DRP3QUAL, bit_names, bit_value
from linecube.errors import InputFileError, describe_path
from linecube.io.checks import InputChecks, check_ids
from linecube.io.galaxy import Galaxy
from linecube.lines import C_KMS, DR17_LINES, resolve_lines

MaskPolicy = Literal["donotuse", "strict"] | list[str]
Extension = Literal["GFLUX", "SFLUX"]
NonFinite = Literal["mask", "reject"]

_CHANNEL_KEY = re.compile(r"^C(\d+)$")


def bad_bits(mask: MaskPolicy) -> int:
    """The OR of the bits that make a spaxel unusable; ``-1`` (every bit) for ``"strict"``."""
    if mask == "donotuse":
        return 1 << DAPPIXMASK["DONOTUSE"]
    if mask == "strict":
        return -1
    if isinstance(mask, str):
        raise ValueError(f"mask policy must be 'donotuse', 'strict' or a list of bit names, "
                         f"got {mask!r}")
    return bit_value(list(mask))


def channel_names(header: fits.Header, path: str | Path = "") -> dict[str, int]:
    """``{channel name: 0-based index}`` from the ``C1``/``C01``… keys, values stripped.

    Raises:
        InputFileError: two keys name the same channel (which one is meant is unknowable).
    """
    out: dict[str, int] = {}
    for key, value in header.items():
        match = _CHANNEL_KEY.match(key)
        if match:
            name = str(value).strip()
            if name in out:
                raise InputFileError(path, f"{header.get('EXTNAME', 'an extension')} names "
                                           f"channel {name} twice (C{out[name] + 1} and {key})")
            out[name] = int(match.group(1)) - 1
    return out


def check_quality(path: str | Path, dapqual: int | None, drp3qual: int | None,
                  allow_critical: bool) -> None:
    """Reject a file whose DAPQUAL or DRP3QUAL has the CRITICAL bit, unless allowed."""
    if allow_critical:
        return
    for word, value, table in (("DAPQUAL", dapqual, DAPQUAL), ("DRP3QUAL", drp3qual, DRP3QUAL)):
        if value is not None and int(value) & (1 << CRITICAL_BIT):
            raise InputFileError(
                path, f"{word} = {int(value)} has the CRITICAL bit "
                f"({', '.join(bit_names(value, table))}); set allow_critical to keep it",
                "quality")


def galaxy_from_arrays(path: str | Path, lines: tuple[str, ...], flux: np.ndarray,
                       ivar: np.ndarray, mask: np.ndarray, meta: dict[str, Any],
                       center: tuple[float, float], *, mask_policy: MaskPolicy = "donotuse",
                       nonfinite: NonFinite = "mask", checks: InputChecks | None = None
                       ) -> Galaxy:
    """Validate (L, H, W) flux/ivar/mask arrays and build a :class:`Galaxy` (module policies).

    ``meta`` must hold ``plateifu`` and ``mangaid`` (checked against ``checks.ids``); the counts
    ``n_nonfinite`` and ``n_zero_ivar`` (over spaxels the mask keeps) are added to it.
    """
    checks = InputChecks() if checks is None else checks
    if not (flux.shape == ivar.shape == mask.shape):
        raise InputFileError(path, f"shapes disagree: flux {flux.shape}, ivar {ivar.shape}, "
                                   f"mask {mask.shape}")
    if min(flux.shape[1:]) < checks.min_map_size:
        raise InputFileError(path, f"maps of {flux.shape[1]} x {flux.shape[2]} spaxels are "
                                   f"smaller than {checks.min_map_size} x {checks.min_map_size} "
                                   "(checks.min_map_size)")
    flux = np.asarray(flux, dtype=np.float32)
    ivar = np.asarray(ivar, dtype=np.float32)
    mask = np.asarray(mask).astype(np.int32)
    kept = (mask & bad_bits(mask_policy)) == 0
    finite = np.isfinite(flux) & np.isfinite(ivar)
    n_nonfinite = int(np.count_nonzero(kept & ~finite))
    if n_nonfinite and nonfinite == "reject":
        raise InputFileError(path, f"{n_nonfinite} unmasked spaxels have NaN or Inf flux/ivar "
                                   "(nonfinite='reject')", "bad_values")
    with np.errstate(invalid="ignore"):
        negative = kept & finite & (ivar < 0)
        zero_ivar = kept & finite & (ivar == 0)
    if negative.any():
        bad = [lines[i] for i in np.unique(np.nonzero(negative)[0])]
        raise InputFileError(path, f"{int(negative.sum())} unmasked spaxels have negative ivar "
                                   f"(lines {', '.join(bad)})", "bad_values")
    good = kept & finite & ~zero_ivar
    if not good.any():
        if not kept.any():
            why = "every spaxel is masked in all requested lines"
        elif not (kept & finite).any():
            why = "every unmasked spaxel has NaN or Inf flux or ivar in all requested lines"
        else:
            why = "every unmasked spaxel has ivar = 0 (no measurement) in all requested lines"
        raise InputFileError(path, why, "no_data")
    check_ids(path, str(meta["plateifu"]), str(meta["mangaid"]), checks)
    meta = dict(meta, n_nonfinite=n_nonfinite, n_zero_ivar=int(zero_ivar.sum()))
    return Galaxy(plateifu=str(meta["plateifu"]), mangaid=str(meta["mangaid"]), lines=lines,
                  flux=flux, ivar=ivar, mask=mask, good=good, center=center, meta=meta)


def _release(header: fits.Header, n_channels: int) -> str:
    version = str(header.get("VERSDAP", "")).strip()
    if version[:1].isdigit():
        return "dr15" if int(version.split(".")[0]) < 3 else "dr17"
    return {22: "dr15", 35: "dr17"}.get(n_channels, "unknown")


def _float(header: fits.Header, *keys: str) -> float:
    for key in keys:
        if key in header and header[key] is not None and str(header[key]).strip() != "":
            return float(header[key])
    return float("nan")


def _int_or_none(header: fits.Header, key: str) -> int | None:
    return int(header[key]) if key in header else None


FITS_BLOCK = 2880
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_MAX_HEADER_BLOCKS = 2000


class _Stream:
    """Forward-only reader of a plain or gzip-compressed file (no seeking back) that refuses
    to go past ``limit`` decompressed bytes."""

    def __init__(self, path: Path, limit: int):
        self.path, self.limit, self.done = path, limit, 0
        self.fh = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")

    def _budget(self, n: int) -> None:
        if self.done + n > self.limit:
            raise InputFileError(self.path, f"more than {self.limit / 2**20:g} MB to decompress "
                                 "before the extensions needed (checks.max_read_mb)", "too_large")
        self.done += n

    def read(self, n: int) -> bytes:
        self._budget(n)
        return self.fh.read(n)

    def skip(self, n: int) -> int:
        self._budget(n)
        left = n
        while left > 0:
            chunk = self.fh.read(min(left, 1 << 22))
            if not chunk:
                break
            left -= len(chunk)
        return n - left

    def close(self) -> None:
        self.fh.close()


def read_hdus(path: str | Path, names: set[str], checks: InputChecks | None = None
              ) -> dict[str, tuple[fits.Header, np.ndarray]]:
    """Stream through a FITS (or gzip FITS) file and return the named HDUs' headers and data.

    Reading stops as soon as every named HDU has been seen, so HDUs after the last one needed
    are never decompressed. Data come back in the file's (big-endian) byte order, scaled by
    BSCALE/BZERO when present. HDU 0 is named ``PRIMARY`` unless it has an EXTNAME. The data of
    every HDU returned are checked against its ``DATASUM`` keyword when it has one (DAP MAPS
    files do): the gzip CRC alone is not checked, as reading stops before the end of the stream.

    Before anything is read or allocated, every HDU's claimed shape and size are checked
    against ``checks`` (:class:`InputChecks`: the limits of a MaNGA product), and reading stops
    past ``checks.max_read_mb`` decompressed megabytes, so a lying header or a gzip bomb costs
    neither memory nor much time.

    Raises:
        InputFileError: not FITS, truncated (plain or gzip), a DATASUM mismatch, a named HDU is
            absent, or a header claims more than ``checks`` allow (kind ``too_large``).
    """
    path = Path(path)
    checks = InputChecks() if checks is None else checks
    found: dict[str, tuple[fits.Header, np.ndarray]] = {}
    stream = _Stream(path, int(checks.max_read_mb * 2**20))
    try:
        index = 0
        while len(found) < len(names):
            header = _next_header(stream, path, index)
            if header is None:
                break
            if index >= checks.max_hdus:
                raise InputFileError(path, f"more than {checks.max_hdus} HDUs (checks.max_hdus)",
                                     "too_large")
            name = str(header.get("EXTNAME", "PRIMARY" if index == 0 else "")).strip().upper()
            size, shape, dtype = _data_layout(header, path, name or f"HDU {index}", checks)
            padded = -(-size // FITS_BLOCK) * FITS_BLOCK
            if name in names and name not in found:
                raw = stream.read(padded)
                if len(raw) < size:
                    raise InputFileError(path, f"truncated FITS file (data of {name} cut short)",
                                         "unreadable")
                _check_datasum(header, raw, path, name)
                data = np.frombuffer(raw[:size], dtype=dtype).reshape(shape) if shape else None
                if data is not None and ("BSCALE" in header or "BZERO" in header):
                    data = data * header.get("BSCALE", 1.0) + header.get("BZERO", 0.0)
                found[name] = (header, data)
            elif stream.skip(padded) < size:
                raise InputFileError(path, f"truncated FITS file (data of HDU {index} cut short)",
                                     "unreadable")
            index += 1
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFileError(path, _open_reason(path, exc), "unreadable") from None
    finally:
        stream.close()
    missing = [n for n in sorted(names) if n not in found]
    if missing:
        raise InputFileError(path, f"missing extension {', '.join(missing)}")
    return found


def fits_datasum(raw: bytes) -> int:
    """The FITS data checksum of ``raw`` (whole 2880-byte blocks): the 32-bit ones'-complement
    sum of its big-endian 32-bit words, as recorded in the ``DATASUM`` keyword."""
    total = int(np.frombuffer(raw, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _check_datasum(header: fits.Header, raw: bytes, path: Path, name: str) -> None:
    """Raise ``InputFileError`` when the HDU's ``DATASUM`` disagrees with its data."""
    recorded = str(header.get("DATASUM", "")).strip()
    if recorded and fits_datasum(raw) != int(recorded):
        raise InputFileError(path, f"FITS DATASUM mismatch in {name}: the data are corrupt, "
                                   "or were changed without updating DATASUM", "corrupt")


def _next_header(stream: _Stream, path: Path, index: int) -> fits.Header | None:
    """The next header, or None at a clean end of file."""
    blocks = []
    for _ in range(_MAX_HEADER_BLOCKS):
        block = stream.read(FITS_BLOCK)
        if not block and not blocks:
            if index == 0:
                raise InputFileError(path, "not a readable FITS file (empty)", "unreadable")
            return None
        if len(block) < FITS_BLOCK:
            raise InputFileError(path, f"truncated FITS file (header of HDU {index} cut short)",
                                 "unreadable")
        if index == 0 and not blocks and not block.startswith(b"SIMPLE  ="):
            raise InputFileError(path, "not a readable FITS file (no SIMPLE card at the start)",
                                 "unreadable")
        blocks.append(block)
        if any(block[i:i + 8] == b"END     " for i in range(0, FITS_BLOCK, 80)):
            try:
                return fits.Header.fromstring(b"".join(blocks).decode("ascii"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise InputFileError(path, f"not a readable FITS file (HDU {index} header: "
                                           f"{exc})", "unreadable") from None
    raise InputFileError(path, f"not a readable FITS file (HDU {index} header has no END)",
                         "unreadable")


def _data_layout(header: fits.Header, path: Path, name: str, checks: InputChecks):
    """(bytes, numpy shape, dtype) of an HDU's data unit, refused when it claims more than
    ``checks`` allow (an image of over ``max_channels`` x ``max_map_size`` squared, or over
    ``max_hdu_bytes``), before anything is read."""
    try:
        bitpix, naxis = int(header["BITPIX"]), int(header["NAXIS"])
        if not 0 <= naxis <= 999:
            raise ValueError(f"NAXIS = {naxis}")
        axes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        pcount, gcount = int(header.get("PCOUNT", 0)), int(header.get("GCOUNT", 1))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputFileError(path, f"not a readable FITS file ({name}: bad BITPIX/NAXIS: "
                                   f"{exc})", "unreadable") from None
    if bitpix not in _BITPIX:
        raise InputFileError(path, f"not a readable FITS file ({name}: BITPIX {bitpix})",
                             "unreadable")
    if naxis == 0:
        return 0, None, None
    if min(axes) < 0 or pcount < 0 or gcount < 0:
        raise InputFileError(path, f"not a readable FITS file ({name}: negative size)",
                             "unreadable")
    image = "XTENSION" not in header or str(header["XTENSION"]).strip() == "IMAGE"
    claimed = " x ".join(map(str, reversed(axes)))
    if image and (naxis > 3 or max(axes[:2]) > checks.max_map_size
                  or (naxis == 3 and axes[2] > checks.max_channels)):
        raise InputFileError(path, f"{name} claims a {claimed} image; a MaNGA map has at most "
                             f"{checks.max_channels} channels of {checks.max_map_size} x "
                             f"{checks.max_map_size} spaxels (checks.max_channels, "
                             "checks.max_map_size)", "too_large")
    size = abs(bitpix) // 8 * gcount * (pcount + int(np.prod(axes, dtype=object)))
    if size > checks.max_hdu_bytes:
        raise InputFileError(path, f"{name} claims {size} bytes of data ({claimed}, BITPIX "
                             f"{bitpix}); at most {checks.max_hdu_bytes} are accepted "
                             "(checks.max_channels, checks.max_map_size)", "too_large")
    return size, (tuple(reversed(axes)) if image else None), _BITPIX[bitpix]


def read_maps(path: str | Path, lines: str | list[str] | tuple[str, ...] | None = None,
              extension: Extension = "GFLUX", mask: MaskPolicy = "donotuse",
              allow_critical: bool = False, nonfinite: NonFinite = "mask",
              checks: InputChecks | None = None) -> Galaxy:
    """Read the emission-line maps of one MAPS file.

    Only the PRIMARY header and the three ``EMLINE_<extension>`` HDUs are read; channels are
    found by header name. Arrays are converted to native byte order.

    Args:
        path: ``manga-*-MAPS-*.fits`` or ``.fits.gz`` (or ``.fit``, ``.fit.gz``; any case).
        lines: preset name or list of DAP channel names (default ``mantha19``), returned in
            wavelength order.
        extension: ``"GFLUX"`` (Gaussian fits) or ``"SFLUX"`` (summed, can be negative).
        mask: ``"donotuse"``, ``"strict"`` or a list of bit names.
        allow_critical: keep files whose DAPQUAL/DRP3QUAL has the CRITICAL bit.
        nonfinite: ``"mask"`` or ``"reject"`` NaN/Inf in unmasked spaxels.
        checks: limits on what the file may claim, identifier rules (default: MaNGA's).

    Returns:
        A :class:`Galaxy` with flux/ivar/mask/good of shape (L, H, W).

    Raises:
        InputFileError: the file is unusable; the message names the file and the reason.
    """
    names = resolve_lines(lines)
    if extension not in ("GFLUX", "SFLUX"):
        raise ValueError(f"extension must be 'GFLUX' or 'SFLUX', got {extension!r}")
    bad_bits(mask)
    path = Path(path)
    check_regular_file(path)
    base = f"EMLINE_{extension}"
    hdus = read_hdus(path, {"PRIMARY", base, f"{base}_IVAR", f"{base}_MASK"}, checks)
    try:
        return _build(hdus, path, names, base, mask, allow_critical, nonfinite, checks)
    except (ValueError, TypeError) as exc:  # a header value of the wrong type
        raise InputFileError(path, f"bad header value ({exc})") from None


def maps_lines(path: str | Path, extension: str = "GFLUX",
               checks: InputChecks | None = None) -> list[str]:
    """The catalogued emission lines (DR17 channel names) of a MAPS file's ``EMLINE_<extension>``.

    Raises:
        InputFileError: the file is unusable, or its extension names no known line.
    """
    path = Path(path)
    check_regular_file(path)
    base = f"EMLINE_{extension}"
    header, _ = read_hdus(path, {base}, checks)[base]
    known = {ln.name for ln in DR17_LINES}
    lines = [n for n in channel_names(header, path) if n in known]
    if not lines:
        raise InputFileError(path, f"{base} names no known emission line")
    return lines


def _open_reason(path: Path, exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if path.name.lower().endswith(".gz") and (isinstance(exc, (EOFError, zlib.error))
                                      or "gzip" in text.lower() or "end-of-stream" in text):
        return f"truncated or corrupt gzip file ({text})"
    return f"not a readable FITS file ({text})"


def check_regular_file(path: Path) -> None:
    """Raise ``InputFileError`` unless ``path`` is a regular file (following links)."""
    what = describe_path(path)
    if what == "missing":
        raise InputFileError(path, "file not found", "missing")
    if what == "a dangling symbolic link":
        raise InputFileError(path, "dangling symbolic link (its target does not exist)",
                             "missing")
    if what != "a file":
        raise InputFileError(path, f"not a regular file: it is {what}", "not_file")


def _build(hdus, path, names, base, mask_policy, allow_critical, nonfinite, checks) -> Galaxy:
    primary = hdus["PRIMARY"][0]
    dapqual, drp3qual = _int_or_none(primary, "DAPQUAL"), _int_or_none(primary, "DRP3QUAL")
    for word, value in (("DAPQUAL", dapqual), ("DRP3QUAL", drp3qual)):
        if value is None:
            raise InputFileError(path, f"primary header has no {word} keyword")
    check_quality(path, dapqual, drp3qual, allow_critical)

    ext_names = (base, f"{base}_IVAR", f"{base}_MASK")
    channels = channel_names(hdus[base][0], path)
    for name in ext_names[1:]:
        other = channel_names(hdus[name][0], path)
        if other and other != channels:
            raise InputFileError(path, f"channel names of {name} differ from {base}")
    absent = [n for n in names if n not in channels]
    if absent:
        raise InputFileError(path, f"line(s) {', '.join(absent)} not in {base} (channels: "
                                   f"{', '.join(channels) or 'none'})", "lines")
    flux, ivar, mask = (hdus[name][1] for name in ext_names)
    for name, arr in zip(ext_names, (flux, ivar, mask), strict=True):
        if arr is None or arr.ndim != 3:
            raise InputFileError(path, f"{name} is not a (channel, y, x) cube")
    if not (flux.shape == ivar.shape == mask.shape):
        raise InputFileError(path, f"shapes disagree: {base} {flux.shape}, {base}_IVAR "
                                   f"{ivar.shape}, {base}_MASK {mask.shape}")
    idx = [channels[n] for n in names]
    if max(idx) >= flux.shape[0]:
        raise InputFileError(path, f"{base} header names channel {max(idx) + 1} but the data "
                                   f"has {flux.shape[0]}")
    if mask.dtype.kind not in "iu":
        raise InputFileError(path, f"{base}_MASK has dtype {mask.dtype}, expected integers")

    header = hdus[base][0]
    ny, nx = flux.shape[1:]
    center = ((float(header["CRPIX2"]) - 1, float(header["CRPIX1"]) - 1)
              if "CRPIX1" in header and "CRPIX2" in header else ((ny - 1) / 2, (nx - 1) / 2))
    plateifu = str(primary.get("PLATEIFU", "")).strip()
    if not plateifu:
        raise InputFileError(path, "primary header has no PLATEIFU keyword", "identity")
    meta = {
        "plateifu": plateifu,
        "mangaid": str(primary.get("MANGAID", "")).strip(),
        "ra": _float(primary, "OBJRA"), "dec": _float(primary, "OBJDEC"),
        "ifura": _float(primary, "IFURA"), "ifudec": _float(primary, "IFUDEC"),
        "z": _float(primary, "SCINPVEL") / C_KMS if "SCINPVEL" in primary
        else _float(primary, "Z"),
        "reff": _float(primary, "REFF"),
        "psf_fwhm": _float(primary, "RFWHM", "GFWHM"),
        "ifudesign": int(primary["IFUDSGN"]) if "IFUDSGN" in primary
        else int(plateifu.split("-")[-1]) if plateifu.split("-")[-1].isdigit() else -1,
        "daptype": str(primary.get("DAPTYPE", "")).strip(),
        "dapqual": dapqual, "drp3qual": drp3qual,
        "ebvgal": _float(primary, "EBVGAL"),
        "release": _release(primary, len(channels)),
        "extension": base.removeprefix("EMLINE_"),
        "source": str(path),
    }
    return galaxy_from_arrays(path, names, flux[idx], ivar[idx], mask[idx], meta, center,
                              mask_policy=mask_policy, nonfinite=nonfinite, checks=checks)
