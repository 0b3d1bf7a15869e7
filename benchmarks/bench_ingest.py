"""Ingest throughput and peak memory per worker on DR17-sized gzip MAPS files.

Writes N full DR17 MAPS files once into --dir/maps: 74x74 spaxels, all 64 HDUs in the exact
layout of ``linecube.io.maps_writer``, every HDU filled inside a hexagonal footprint, so each
file is as heavy as a real one (~36 MB of FITS, ~17 MB gzip). To keep generation affordable on
a small machine, the 63 data HDUs come from 25 distinct data bodies; every file has its own
PRIMARY header (PLATEIFU, MANGAID, CHECKSUM), hence its own SHA-256, and is written as two gzip
members (header, data), which gzip readers decompress as one stream at the usual cost.

Then, each in a fresh process, it measures:

* the bound: every file decompressed once (gzip) and opened with astropy, every HDU's data read,
  in one loop;
* for reference, astropy given the .gz path (it re-decompresses from the start of the file
  whenever it seeks backwards), on 5 files;
* ``linecube ingest`` (Python API, default settings) with a local Dask cluster of 1 and of 2
  worker processes (times include starting the cluster);
* ``linecube ingest`` with 1 worker on the first N/5 files: the peak memory of a worker must
  not grow with the number of files.

Usage:
    python benchmarks/bench_ingest.py --n 500 --dir /tmp/linecube-bench-ingest
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

SIZE = 74
BODIES = 25  # distinct data bodies; every file has its own PRIMARY header and checksum
CORNER = (1 << 30) | 2 | 1  # DONOTUSE | LOWCOV | NOCOV
# The 17 science IFU designs of a MaNGA plate.
IFUS = (1901, 1902, 3701, 3702, 3703, 3704, 6101, 6102, 6103, 6104, 9101, 9102, 12701, 12702,
        12703, 12704, 12705)


def hexagon(n: int) -> np.ndarray:
    """(n, n) bool: True inside a flat-topped hexagon filling the square."""
    r = n / 2 - 0.5
    y, x = np.abs(np.mgrid[:n, :n] - (n - 1) / 2)
    return (y <= r * np.sqrt(3) / 2) & (np.sqrt(3) * x + y <= np.sqrt(3) * r)


def body_arrays(k: int) -> dict[str, np.ndarray]:
    """Every DR17 extension of data body ``k``, filled inside a hexagonal footprint."""
    from linecube.io.maps_writer import layout
    from linecube.lines import DR17_LINES

    rng = np.random.default_rng(k)
    inside = hexagon(SIZE)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    disc = np.exp(-np.hypot(yy, xx) / rng.uniform(4, 12))
    maps = {}
    for ext in layout("dr17"):
        shape = (ext.n_channels, SIZE, SIZE) if ext.channels else (SIZE, SIZE)
        if ext.role == "mask":
            data = np.where(inside, rng.choice([0, 0, 0, 32, 1 << 30 | 64], size=shape), CORNER)
        elif ext.dtype == ">i4":
            data = np.where(inside, np.arange(SIZE * SIZE).reshape(SIZE, SIZE), -1)
            data = np.broadcast_to(data, shape)
        else:
            data = np.where(inside, rng.normal(size=shape), 0.0)
        maps[ext.name] = np.asarray(data, dtype=ext.dtype.replace(">", "<"))
    n = len(DR17_LINES)
    flux = rng.uniform(0.02, 3.0, (n, 1, 1)) * 30 * disc * rng.uniform(0.8, 1.2, (n, SIZE, SIZE))
    maps["EMLINE_GFLUX"] = np.where(inside, flux, 0.0).astype("f4")
    maps["EMLINE_GFLUX_IVAR"] = np.where(inside, 1 / (0.05 * flux + 0.02) ** 2, 0.0).astype("f4")
    maps["EMLINE_GFLUX_MASK"] = np.broadcast_to(np.where(inside, 0, CORNER), (n, SIZE, SIZE))
    return maps


def write_body(args: tuple[int, str]) -> None:
    """Write body ``k``: the PRIMARY header (raw FITS) and HDUs 1-63 (one gzip member)."""
    from astropy.io import fits

    from linecube.io.maps_writer import build_hdulist

    k, folder = args
    head, body = Path(folder) / f"head-{k}.fits", Path(folder) / f"body-{k}.gz"
    if body.exists():
        return
    header = {"PLATEIFU": "0-0", "MANGAID": "1-0", "OBJRA": 180.0, "OBJDEC": 30.0,
              "SCINPVEL": 9000.0, "REFF": 5.0, "RFWHM": 2.6, "EBVGAL": 0.02}
    raw = io.BytesIO()
    build_hdulist(body_arrays(k), header, full=True).writeto(raw)
    raw = raw.getvalue()
    with fits.open(io.BytesIO(raw)) as hdul:
        start = hdul[1].fileinfo()["hdrLoc"]
    head.write_bytes(raw[:start])
    body.write_bytes(gzip.compress(raw[start:], compresslevel=6, mtime=0))


def write_file(args: tuple[int, str]) -> int:
    """Write file ``i``: its own PRIMARY header (PLATEIFU, MANGAID, CHECKSUM) + body i % BODIES.

    The file is two gzip members (header, then the 63 data HDUs), which every gzip reader
    decompresses as one stream; reading it costs what reading a single-member file costs.
    """
    from astropy.io import fits

    from linecube.io.maps_writer import maps_filename

    i, folder = args
    plateifu = f"{7000 + i // len(IFUS)}-{IFUS[i % len(IFUS)]}"
    path = Path(folder) / "maps" / maps_filename(plateifu)
    if not path.exists():
        k = i % BODIES
        head = (Path(folder) / f"head-{k}.fits").read_bytes()
        hdr = fits.Header.fromstring(head.decode("ascii"))
        hdr.update(PLATEIFU=plateifu, MANGAID=f"1-{100000 + i}", OBJRA=180.0 + i * 1e-3,
                   IFUDSGN=str(IFUS[i % len(IFUS)]), PLATEID=7000 + i // len(IFUS))
        primary = fits.PrimaryHDU(header=hdr)
        primary.header.set("EXTEND", True, after="NAXIS")  # the constructor drops it
        primary.add_checksum(when="HDU checksum")
        new_head = primary.header.tostring().encode("ascii")
        assert len(new_head) == len(head), "the primary header changed size"
        data = gzip.compress(new_head, mtime=0)
        data += (Path(folder) / f"body-{k}.gz").read_bytes()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path.stat().st_size


def generate(folder: Path, n: int, processes: int) -> list[Path]:
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    with Pool(processes) as pool:
        pool.map(write_body, [(k, str(folder)) for k in range(min(n, BODIES))])
        sizes = pool.map(write_file, [(i, str(folder)) for i in range(n)], chunksize=8)
    print(f"{n} files in {folder / 'maps'}, {np.mean(sizes) / 1e6:.1f} MB each (gzip), "
          f"{min(n, BODIES)} distinct data bodies", flush=True)
    return sorted((folder / "maps").glob("manga-*.fits.gz"))[:n]


# ------------------------------------------------------------------- measured phases (subprocess)
def phase_bound(files: list[str], in_memory: bool = True) -> dict:
    """Open every file with astropy and read every HDU's data.

    ``in_memory``: decompress the gzip stream once and let astropy parse the bytes (the fast
    way); otherwise hand astropy the .gz path, which re-decompresses from the start of the file
    whenever it seeks backwards (once per HDU).
    """
    import gzip
    import io

    from astropy.io import fits

    start, cpu = time.perf_counter(), time.process_time()
    total = 0
    for path in files:
        source = io.BytesIO(gzip.decompress(Path(path).read_bytes())) if in_memory else path
        with fits.open(source, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.data is not None:
                    total += hdu.data.nbytes
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "files_per_s": len(files) / seconds, "decompressed_GB": total / 1e9,
            "cpu_s_per_file": (time.process_time() - cpu) / len(files),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def phase_ingest(files: list[str], workers: int, store: str) -> dict:
    from linecube.preprocess import PreprocessConfig
    from linecube.store.ingest import ingest

    shutil.rmtree(store, ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    report = ingest(files, store, PreprocessConfig(), workers=workers, progress=False)
    seconds = time.perf_counter() - start  # includes starting and closing the local cluster
    client_cpu = time.process_time() - cpu  # the writer, and the scheduler (same process)
    assert report.ingested == len(files), report.summary()
    shutil.rmtree(store, ignore_errors=True)
    return {"seconds": seconds, "files_per_s": len(files) / seconds,
            "worker_cpu_s_per_file": report.worker_cpu_s / len(files),
            "client_cpu_s_per_file": client_cpu / len(files),
            "peak_worker_rss_mb": report.peak_worker_rss_mb,
            "client_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_phase(name: str, files: list[Path], **kw) -> dict:
    listing = Path(files[0]).parent.parent / f"files-{len(files)}.txt"
    listing.write_text("\n".join(map(str, files)))
    cmd = [sys.executable, __file__, "--phase", name, "--files", str(listing),
           "--phase-args", json.dumps(kw)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/linecube-bench-ingest"))
    parser.add_argument("--gen-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--generate-only", action="store_true", help="write the files and stop")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--phase-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        files = Path(args.files).read_text().split("\n")
        kw = json.loads(args.phase_args)
        result = phase_bound(files, **kw) if args.phase == "bound" else phase_ingest(files, **kw)
        print(json.dumps(result))
        return

    files = generate(args.dir, args.n, args.gen_processes)
    if args.generate_only:
        return
    store = str(args.dir / "store")
    small = files[: max(1, args.n // 5)]
    load = f"{os.getloadavg()[0]:.1f}"
    results = {
        "bound": run_phase("bound", files),
        "bound_astropy_gz_path": run_phase("bound", files[:5], in_memory=False),
        "ingest_1": run_phase("ingest", files, workers=1, store=store),
        "ingest_2": run_phase("ingest", files, workers=2, store=store),
        "ingest_1_small": run_phase("ingest", small, workers=1, store=store),
    }
    bound = results["bound"]["files_per_s"]
    print(f"load average before/after: {load} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'run':<24}{'files':>6}{'s':>8}{'files/s':>9}{'x bound':>9}{'CPU s/file':>17}"
          f"{'worker MB':>11}{'client MB':>11}")
    for name, r in results.items():
        n = {"ingest_1_small": len(small),
             "bound_astropy_gz_path": min(5, len(files))}.get(name, len(files))
        cpu = (f"{r['cpu_s_per_file']:.3f}" if "cpu_s_per_file" in r else
               f"{r['worker_cpu_s_per_file']:.3f}+{r['client_cpu_s_per_file']:.3f}")
        print(f"{name:<24}{n:>6}{r['seconds']:>8.1f}{r['files_per_s']:>9.2f}"
              f"{r['files_per_s'] / bound:>9.2f}{cpu:>17}"
              f"{r.get('peak_worker_rss_mb', float('nan')):>11.0f}"
              f"{r.get('client_peak_rss_mb', r.get('peak_rss_mb')):>11.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
