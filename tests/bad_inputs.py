"""The bad-input corpus: each kind of unusable input, made at test time from a simulated good
MAPS file, with the rejection kind that ingest must record for it (docs/ingest.md).

``build_corpus(folder)`` writes every file and returns ``{path: (case name, expected kind)}``;
``GOOD`` files that must be ingested are returned as well (expected kind ``None``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from manga_fixtures import fake_header, fake_maps_arrays

from linecube.io.maps_writer import write_maps

BLOCK = 2880
LINES = ["Hb-4862", "OIII-5008", "Ha-6564", "NII-6585", "HeI-7067"]
# The corpus is ingested with checks.max_read_mb = CORPUS_MAX_READ_MB, so that a small gzip
# bomb (BOMB_HDUS zero-filled HDUs of 64 x 128 x 128 float32) goes past it.
CORPUS_MAX_READ_MB = 8
BOMB_HDUS = 4


# ----------------------------------------------------------------------- raw FITS surgery
def card(key: str, value) -> bytes:
    """One 80-byte header card."""
    text = f"'{value:<8}'" if isinstance(value, str) else str(value)
    return f"{key:<8}= {text:>20}".ljust(80).encode("ascii")


def header_spans(raw: bytes) -> list[tuple[int, int, fits.Header]]:
    """``(header start, header end, header)`` of every HDU of plain FITS bytes."""
    spans, pos = [], 0
    while pos < len(raw):
        end = pos
        while True:
            block = raw[end:end + BLOCK]
            end += BLOCK
            if any(block[i:i + 8] == b"END     " for i in range(0, BLOCK, 80)):
                break
        header = fits.Header.fromstring(raw[pos:end].decode("ascii"))
        size = abs(header["BITPIX"]) // 8 * int(np.prod(
            [header[f"NAXIS{i}"] for i in range(1, header["NAXIS"] + 1)])) if header["NAXIS"] else 0
        spans.append((pos, end, header))
        pos = end + -(-size // BLOCK) * BLOCK
    return spans


def set_cards(raw: bytes, extname: str, cards: dict) -> bytes:
    """Replace existing cards of HDU ``extname`` in plain FITS bytes (data untouched)."""
    for start, end, header in header_spans(raw):
        name = str(header.get("EXTNAME", "PRIMARY")).strip()
        if name != extname:
            continue
        head = bytearray(raw[start:end])
        for key, value in cards.items():
            for i in range(0, len(head), 80):
                if head[i:i + 8] == f"{key:<8}".encode():
                    head[i:i + 80] = card(key, value)
                    break
            else:
                raise KeyError(key)
        return raw[:start] + bytes(head) + raw[end:]
    raise KeyError(extname)


def plain_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def write_raw(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw, 1) if path.name.endswith(".gz") else raw)
    return path


# ----------------------------------------------------------------------- the corpus
def good(path: Path, plateifu: str = "8485-1901", seed: int = 0, release: str = "dr17",
         arrays: dict | None = None, header: dict | None = None, n: int = 12) -> Path:
    """A simulated DR17 (or DR15) MAPS file; ``arrays``/``header`` override its contents."""
    maps = fake_maps_arrays(release, n, seed)
    maps.update(arrays or {})
    write_maps(path, maps, fake_header(plateifu, **(header or {})), release=release)
    return path


def _astropy_edit(path: Path, edit) -> Path:
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    edit(hdul)
    hdul.writeto(path, overwrite=True, checksum=True)
    return path


def _arrays(**changes):
    arrays = fake_maps_arrays()
    for name, fn in changes.items():
        fn(arrays[name])
    return arrays


def _bomb(path: Path) -> Path:
    raw = plain_bytes(good(path.with_name("bomb-src.fits")))
    path.with_name("bomb-src.fits").unlink()
    spans = header_spans(raw)
    zeros = fits.ImageHDU(np.zeros((64, 128, 128), ">f4"), name="PADDING")
    pad = io_bytes(zeros) * BOMB_HDUS
    first = spans[1][0]  # before every extension: skipped, never allocated
    path.write_bytes(gzip.compress(raw[:first] + pad + raw[first:], 6))
    return path


def _many_hdus(path: Path) -> Path:
    raw = plain_bytes(good(path.with_name("many-src.fits")))
    path.with_name("many-src.fits").unlink()
    first = header_spans(raw)[1][0]
    tiny = io_bytes(fits.ImageHDU(np.zeros((1, 1), ">f4"), name="TINY")) * 70
    return write_raw(path, raw[:first] + tiny + raw[first:])


def io_bytes(hdu) -> bytes:
    """The bytes of one extension HDU."""
    import io

    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    raw = buf.getvalue()
    return raw[header_spans(raw)[1][0]:]


def _raw_cards(path: Path, extname: str, cards: dict) -> Path:
    good(path)
    return write_raw(path, set_cards(plain_bytes(path), extname, cards))


def _mmu(path: Path, image: tuple[int, int] = (12, 12), group: str = "8485-1901",
         maps: bool = True) -> Path:
    with h5py.File(path, "w") as h5:
        grp = h5.create_group(group)
        if maps:
            dtype = np.dtype([("label", "S40"), ("array", "f4", image), ("ivar", "f4", image),
                              ("mask", "f4", image)])
            grp.create_dataset("maps", data=np.zeros(1, dtype))
    return path


def _one_by_one(path: Path) -> Path:
    arrays = {k: v[:, 5:6, 5:6].copy() for k, v in fake_maps_arrays().items()}
    for name in ("EMLINE_GFLUX_MASK", "EMLINE_SFLUX_MASK"):
        arrays[name][:] = 0
    write_maps(path, arrays, fake_header("8485-1902"))
    return path


def _swap_channel(hdul):
    hdul["EMLINE_GFLUX"].header["C24"] = "Hb-4862"


def _cut(path: Path, fraction: float) -> Path:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


def _cut_in_data(path: Path) -> Path:
    """Cut a plain file in the middle of EMLINE_GFLUX_IVAR's data."""
    raw = path.read_bytes()
    _, end, _ = next(s for s in header_spans(raw)
                     if str(s[2].get("EXTNAME", "")).strip() == "EMLINE_GFLUX_IVAR")
    path.write_bytes(raw[:end + 1000])
    return path


def _flip_data_byte(path: Path) -> Path:
    raw = bytearray(plain_bytes(path))
    start, end, _ = next(s for s in header_spans(bytes(raw))
                         if str(s[2].get("EXTNAME", "")).strip() == "EMLINE_GFLUX")
    raw[end + 4 * 12 * 12 * 23 + 4 * 78] ^= 0x40  # a byte of the Ha map
    return write_raw(path, bytes(raw))


def _link(path: Path, target: Path) -> Path:
    os.symlink(target, path)
    return path


def build_corpus(folder: Path) -> dict[str, tuple[str, str | None]]:
    """Write every case into ``folder``; ``{path: (case, expected kind or None)}``."""
    f = folder
    f.mkdir(parents=True, exist_ok=True)
    m = "manga-{}-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz".format
    cases: dict[str, tuple[Path, str | None]] = {
        # good files: the genuine 8485-1901 must win over the impostor below
        "genuine": (good(f / m("8485-1901")), None),
        "good plain": (good(f / "manga-9000-3701-MAPS.fits", "9000-3701", seed=3), None),
        # unreadable
        "empty file": (write_raw(f / "empty.fits", b""), "unreadable"),
        "text": (write_raw(f / "text.fits", b"SIMPLE? no, this is text\n" * 200), "unreadable"),
        "gzip of garbage": (f / "garbage.fits.gz", "unreadable"),
        "truncated gzip": (_cut(good(f / "cut.fits.gz", "8485-1903"), 0.5), "unreadable"),
        "truncated plain data": (_cut_in_data(good(f / "cut.fits", "8485-1904")), "unreadable"),
        "truncated header": (_cut(good(f / "cuthead.fits", "8485-1905"), 0.0003),
                             "unreadable"),
        "bad BITPIX": (_raw_cards(f / "bitpix.fits", "EMLINE_GFLUX", {"BITPIX": 12}),
                       "unreadable"),
        "NAXIS not a number": (_raw_cards(f / "naxis.fits", "EMLINE_GFLUX", {"NAXIS1": "x"}),
                               "unreadable"),
        "HDF5 junk": (write_raw(f / "junk.h5", b"not HDF5" * 100), "unreadable"),
        # corrupt data
        "DATASUM mismatch": (_flip_data_byte(good(f / "flip.fits.gz", "8485-1906")), "corrupt"),
        # more than a MaNGA product can be
        "lying header": (_raw_cards(f / "lying.fits.gz", "EMLINE_GFLUX",
                                    {"NAXIS1": 40000, "NAXIS2": 40000}), "too_large"),
        "too many channels": (_raw_cards(f / "channels.fits", "EMLINE_GFLUX_IVAR",
                                         {"NAXIS3": 3500}), "too_large"),
        "four axes": (_raw_cards(f / "naxis4.fits", "EMLINE_GFLUX", {"NAXIS": 4}),
                      "unreadable"),
        "gzip bomb": (_bomb(f / "bomb.fits.gz"), "too_large"),
        "too many HDUs": (_many_hdus(f / "many.fits"), "too_large"),
        "HDF5 huge images": (_mmu(f / "huge.h5", image=(4000, 40)), "too_large"),
        # format
        "missing IVAR extension": (_astropy_edit(good(f / "noivar.fits"), lambda h: h.pop(
            h.index_of("EMLINE_GFLUX_IVAR"))), "format"),
        "missing DAPQUAL": (_astropy_edit(good(f / "nodapqual.fits"),
                                          lambda h: h[0].header.remove("DAPQUAL")), "format"),
        "shapes disagree": (_astropy_edit(good(f / "shapes.fits"), lambda h: setattr(
            h["EMLINE_GFLUX_IVAR"], "data", h["EMLINE_GFLUX_IVAR"].data[:, :10])), "format"),
        "float mask": (_astropy_edit(good(f / "fmask.fits"), lambda h: setattr(
            h["EMLINE_GFLUX_MASK"], "data", h["EMLINE_GFLUX_MASK"].data.astype("f4"))),
            "format"),
        "not a cube": (_astropy_edit(good(f / "flat.fits"), lambda h: setattr(
            h["EMLINE_GFLUX"], "data", h["EMLINE_GFLUX"].data[0])), "format"),
        "IVAR channels differ": (_astropy_edit(good(f / "ivarch.fits"), lambda h: h[
            "EMLINE_GFLUX_IVAR"].header.update(C01="OII-3729", C02="OII-3727")), "format"),
        "channel beyond the data": (_astropy_edit(good(f / "beyond.fits"), lambda h: h[
            "EMLINE_GFLUX"].header.update(C24="Ha-6564x", C40="Ha-6564")), "format"),
        "duplicated channel name": (_astropy_edit(good(f / "dupch.fits"), _swap_channel),
                                    "format"),
        "bad header value": (good(f / "badvalue.fits", header={"SCINPVEL": "fast"}), "format"),
        "1x1 map": (_one_by_one(f / "onebyone.fits"), "format"),
        "HDF5 no groups": (f / "nogroups.h5", "format"),
        "HDF5 group without maps": (_mmu(f / "nomaps.h5", maps=False), "format"),
        # lines, quality
        "DR15 file lacks HeI-7067": (good(f / "dr15.fits.gz", release="dr15"), "lines"),
        "CRITICAL DAPQUAL": (good(f / "crit.fits.gz", header={"DAPQUAL": 1 << 30}), "quality"),
        "CRITICAL DRP3QUAL": (good(f / "crit3.fits.gz", header={"DRP3QUAL": 1 << 30}),
                              "quality"),
        # values
        "negative ivar": (good(f / "negivar.fits", arrays=_arrays(
            EMLINE_GFLUX_IVAR=lambda a: a.__setitem__((23, 6, 6), -1.0))), "bad_values"),
        "every spaxel masked": (good(f / "masked.fits", arrays=_arrays(
            EMLINE_GFLUX_MASK=lambda a: a.__setitem__(slice(None), 1 << 30))), "no_data"),
        "all-NaN ivar": (good(f / "nanivar.fits", arrays=_arrays(
            EMLINE_GFLUX_IVAR=lambda a: a.__setitem__(slice(None), np.nan))), "no_data"),
        "all-zero ivar": (good(f / "zeroivar.fits", arrays=_arrays(
            EMLINE_GFLUX_IVAR=lambda a: a.__setitem__(slice(None), 0.0))), "no_data"),
        # identity
        "missing PLATEIFU": (_astropy_edit(good(f / "noid.fits"),
                                           lambda h: h[0].header.remove("PLATEIFU")), "identity"),
        "path PLATEIFU": (good(f / "path.fits", header={"PLATEIFU": "../../etc/x"}), "identity"),
        "long PLATEIFU": (good(f / "long.fits", header={"PLATEIFU": "8" * 68}), "identity"),
        "script PLATEIFU": (good(f / "script.fits", header={"PLATEIFU": "<script>"}),
                            "identity"),
        "bad MANGAID": (good(f / "mangaid.fits", header={"MANGAID": "1-2;rm -rf"}), "identity"),
        "name and header disagree": (good(f / m("7443-12703"), "8485-1902"), "identity"),
        "duplicate PLATEIFU": (good(f / "aaa-impostor.fits.gz", "8485-1901", seed=9),
                               "duplicate"),
        # not files
        "listed but missing": (f / "list.txt", "missing"),
        "dangling link": (_link(f / "dangling.fits", f / "nowhere.fits"), "missing"),
        "symlink loop": (_link(f / "loop.fits", f / "loop.fits"), "not_file"),
        "FIFO": (f / "fifo.fits", "not_file"),
        "device": (_link(f / "device.fits", Path(os.devnull)), "not_file"),
    }
    (f / "garbage.fits.gz").write_bytes(gzip.compress(b"garbage" * 1000))
    h5py.File(f / "nogroups.h5", "w").close()
    os.mkfifo(f / "fifo.fits")
    (f / "list.txt").write_text("gone.fits\n")
    out = {}
    for case, (path, kind) in cases.items():
        if case == "listed but missing":
            path = f / "gone.fits"
        elif case == "HDF5 group without maps":
            path = Path(f"{path}#8485-1901")
        elif case == "HDF5 huge images":
            path = Path(f"{path}#8485-1901")
        out[str(path)] = (case, kind)
    return out
