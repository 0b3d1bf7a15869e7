"""Download DR17 MaNGA DAP MAPS files and the DAPall file from the SDSS Science Archive Server.

Files are fetched over several connections (threads) with retries and exponential backoff.
Each download goes to ``NAME.part`` next to its destination; an interrupted download (a dropped
connection, a killed run) is resumed from where it stopped with an HTTP ``Range`` request. When
complete, the file is checked (the whole gzip stream, and every FITS HDU's ``CHECKSUM`` and
``DATASUM``; a ``.gz`` file is decompressed in memory for this) and only then renamed to its
final name, so a file with its final name is always complete and verified; such files are
skipped by later runs.

The SAS layout (format doc §1) below the base URL is
``DAPTYPE/PLATE/IFUDESIGN/manga-PLATE-IFUDESIGN-MAPS-DAPTYPE.fits.gz`` and
``dapall-v3_1_1-3.1.0.fits``. MAPS files are written flat into the output folder.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import re
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from linecube import __version__
from linecube.errors import ConfigError, InputFileError
from linecube.progress import progress_bar

SAS_DR17 = "https://data.sdss.org/sas/dr17/manga/spectro/analysis/v3_1_1/3.1.0/"
DAPALL_NAME = "dapall-v3_1_1-3.1.0.fits"
DEFAULT_DAPTYPE = "HYB10-MILESHC-MASTARSSP"
# HTTP statuses worth retrying: the server may answer differently a moment later.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
_PLATEIFU = re.compile(r"^(\d+)-(\d+)$")
_CHUNK = 1 << 20


@dataclass
class DownloadResult:
    """The outcome for one file.

    Attributes:
        url: where it was fetched from.
        path: its final path.
        status: ``"downloaded"``, ``"present"`` (already there, not fetched) or ``"failed"``.
        reason: why it failed.
        bytes: bytes transferred in this run.
        attempts: requests made.
    """

    url: str
    path: Path
    status: str
    reason: str = ""
    bytes: int = 0
    attempts: int = 0


@dataclass
class DownloadReport:
    """The results of one download run, with a summary."""

    results: list[DownloadResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[DownloadResult]:
        """Results with status ``"failed"``."""
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        """Counts per status, transferred volume and every failure with its reason."""
        counts = Counter(r.status for r in self.results)
        mb = sum(r.bytes for r in self.results) / 1e6
        lines = [f"download: {len(self.results)} files in {self.seconds:.1f} s, {mb:.1f} MB "
                 f"transferred",
                 f"  downloaded: {counts['downloaded']}",
                 f"  already present: {counts['present']}",
                 f"  failed: {counts['failed']}"]
        lines += [f"    {r.url}: {r.reason}" for r in self.failed]
        return "\n".join(lines)


def maps_url(plateifu: str, base_url: str = SAS_DR17, daptype: str = DEFAULT_DAPTYPE) -> str:
    """The SAS URL of one MAPS file, e.g. ``.../HYB10-MILESHC-MASTARSSP/8485/1901/manga-...``."""
    from linecube.io.maps_writer import maps_filename

    match = _PLATEIFU.match(str(plateifu).strip())
    if not match:
        raise ConfigError(f"PLATEIFU {plateifu!r}: expected PLATE-IFUDESIGN, e.g. 8485-1901")
    plate, ifu = match.groups()
    return (f"{base_url.rstrip('/')}/{daptype}/{plate}/{ifu}/"
            f"{maps_filename(f'{plate}-{ifu}', daptype)}")


def verify_file(path: str | Path) -> None:
    """Check a downloaded file; raise ``InputFileError`` naming the problem.

    A ``.gz`` file is decompressed in memory in one pass, which checks the gzip CRC and length.
    A FITS file (``.fits`` or ``.fits.gz``) must then open with astropy, and every HDU that
    carries ``CHECKSUM``/``DATASUM`` must match them.
    """
    from astropy.io import fits

    path = Path(path)
    name = path.name.removesuffix(".part")
    source: Path | io.BytesIO = path
    if name.endswith(".gz"):
        try:  # astropy would re-decompress from the start at every backward seek
            source = io.BytesIO(gzip.decompress(path.read_bytes()))
        except EOFError:
            raise InputFileError(path, "truncated gzip stream") from None
        except (OSError, zlib.error) as exc:
            raise InputFileError(path, f"corrupt gzip stream: {exc}") from None
    if ".fits" not in name:
        return
    try:
        with fits.open(source, memmap=False) as hdul:
            for i, hdu in enumerate(hdul):
                where = f"HDU {i} ({hdu.name})"
                if "DATASUM" in hdu.header and hdu.verify_datasum() == 0:
                    raise InputFileError(path, f"FITS DATASUM mismatch in {where}")
                if "CHECKSUM" in hdu.header and hdu.verify_checksum() == 0:
                    raise InputFileError(path, f"FITS CHECKSUM mismatch in {where}")
    except InputFileError:
        raise
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise InputFileError(path, f"not a readable FITS file: {exc}") from None


class _Retry(Exception):
    """A failure worth another attempt (network error, server busy, corrupt transfer)."""


def download_file(url: str, dest: str | Path, *, retries: int = 4, backoff_s: float = 1.0,
                  timeout_s: float = 60.0, verify: bool = True) -> DownloadResult:
    """Fetch ``url`` to ``dest``, resuming ``dest.part`` and verifying before the rename.

    Args:
        url: the file's URL.
        dest: the final path; if it exists the file is not fetched again.
        retries: further attempts after the first one fails with a retryable error.
        backoff_s: wait before retry k is ``backoff_s * 2**k`` seconds.
        timeout_s: socket timeout per request.
        verify: run :func:`verify_file` before the rename.
    """
    dest = Path(dest)
    if dest.exists():
        return DownloadResult(url, dest, "present")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    result = DownloadResult(url, dest, "failed")
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        result.attempts += 1
        try:
            _fetch(url, part, timeout_s, result)
            if verify:
                try:
                    verify_file(part)
                except InputFileError as exc:
                    part.unlink(missing_ok=True)  # start over: the bytes themselves are bad
                    raise _Retry(f"integrity check failed: {exc.reason}") from None
            os.replace(part, dest)
            result.status, result.reason = "downloaded", ""
            return result
        except _Retry as exc:
            result.reason = str(exc)
        except urllib.error.HTTPError as exc:
            result.reason = f"HTTP {exc.code} {exc.reason}"
            if exc.code not in RETRY_STATUSES:
                return result
        except (TimeoutError, ConnectionError, urllib.error.URLError,
                http.client.HTTPException) as exc:
            result.reason = f"connection error: {getattr(exc, 'reason', None) or exc!r}"
    result.reason = f"{result.reason} (gave up after {result.attempts} attempts)"
    return result


def _fetch(url: str, part: Path, timeout_s: float, result: DownloadResult) -> None:
    """One request: append to ``part`` from its current size, counting into ``result.bytes``."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"linecube/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete
            return
        raise
    with response:
        total = None
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start}, expected {have}")
            mode = "ab"
        else:  # a full response (the server ignored the Range header, or a fresh download)
            mode, have = "wb", 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        with open(part, mode) as fh:
            while block := response.read(_CHUNK):
                fh.write(block)
                result.bytes += len(block)
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Retry(f"incomplete transfer: {size} of {total} bytes")


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if not match:
        raise _Retry(f"unexpected Content-Range {value!r}")
    total = match.group(2)
    return int(match.group(1)), None if total == "*" else int(total)


def download(urls_and_paths: Iterable[tuple[str, Path]], *, connections: int = 4,
             progress: bool = True, **kwargs) -> DownloadReport:
    """Fetch many files over ``connections`` parallel connections.

    Args:
        urls_and_paths: ``(url, destination)`` pairs; a destination given twice is fetched once.
        connections: parallel downloads.
        progress: show a progress bar.
        **kwargs: passed to :func:`download_file` (retries, backoff_s, timeout_s, verify).
    """
    if connections < 1:
        raise ConfigError(f"connections must be at least 1, got {connections}")
    jobs = list({str(path): (url, Path(path)) for url, path in urls_and_paths}.values())
    start = time.monotonic()
    report = DownloadReport()
    with ThreadPoolExecutor(max_workers=connections) as pool, \
            progress_bar(len(jobs), "download", "file", disable=not progress) as bar:
        futures = [pool.submit(download_file, url, path, **kwargs) for url, path in jobs]
        for fut in as_completed(futures):
            report.results.append(fut.result())
            bar.update()
    order = {str(path): i for i, (_, path) in enumerate(jobs)}
    report.results.sort(key=lambda r: order[str(r.path)])
    report.seconds = time.monotonic() - start
    return report


def download_maps(plateifus: Iterable[str], out: str | Path, *, base_url: str = SAS_DR17,
                  daptype: str = DEFAULT_DAPTYPE, **kwargs) -> DownloadReport:
    """Download the MAPS files of ``plateifus`` into the folder ``out``.

    Args:
        plateifus: e.g. ``["8485-1901", "7443-12703"]`` (duplicates are fetched once).
        out: output folder (files are written flat, with their SAS names).
        base_url: the ``analysis/v3_1_1/3.1.0/`` folder of the SAS or a mirror.
        daptype: which DAP analysis.
        **kwargs: passed to :func:`download` (connections, progress, retries, ...).
    """
    urls = [maps_url(plateifu, base_url, daptype) for plateifu in plateifus]
    return download([(url, Path(out) / url.rsplit("/", 1)[1]) for url in urls], **kwargs)


def download_dapall(out: str | Path, *, base_url: str = SAS_DR17, **kwargs) -> DownloadReport:
    """Download ``dapall-v3_1_1-3.1.0.fits`` into the folder ``out``."""
    url = f"{base_url.rstrip('/')}/{DAPALL_NAME}"
    return download([(url, Path(out) / DAPALL_NAME)], **kwargs)


def select_plateifus(dapall: str | Path, where: Iterable[str] = (),
                     daptype: str = DEFAULT_DAPTYPE, dedupe: bool = False) -> list[str]:
    """PLATEIFUs of a DAPall file's rows (``DAPDONE`` only) that pass every ``where`` filter.

    Args:
        dapall: the DAPall FITS file.
        where: pandas ``DataFrame.query`` expressions on DAPall columns, e.g. ``"Z < 0.05"``.
        daptype: which DAPTYPE HDU to read.
        dedupe: keep one observation per MANGAID (rule in :mod:`linecube.io.dapall`).
    """
    from linecube.io.dapall import read_dapall

    table = read_dapall(dapall, daptype=daptype, done_only=True, dedupe=dedupe)
    for expr in where:
        try:
            table = table.query(expr)
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ConfigError(f"where {expr!r}: cannot filter {dapall}: {exc}") from None
    return [str(p) for p in table["PLATEIFU"]]
