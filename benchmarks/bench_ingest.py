"""Ingest throughput and peak memory per worker on DR17-sized gzip MAPS files.

Writes N full DR17 MAPS files (74x74 spaxels, all 64 HDUs, every HDU filled inside a hexagonal
footprint so each file is as heavy as a real one) once into --dir, then measures, each in a
fresh process:

* the bound: open every file with astropy and decompress every HDU, in one loop;
* ``linecube ingest`` (Python API) with a local Dask cluster of 1 and of 2 worker processes;
* ``linecube ingest`` with 1 worker on the first N/5 files, to show that the peak memory of a
  worker does not grow with the number of files.

Usage:
    python benchmarks/bench_ingest.py --n 500 --dir /tmp/linecube-bench-ingest
"""

from __future__ import annotations

import argparse
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
CORNER = (1 << 30) | 2 | 1  # DONOTUSE | LOWCOV | NOCOV
# The 17 science IFU designs of a MaNGA plate.
IFUS = (1901, 1902, 3701, 3702, 3703, 3704, 6101, 6102, 6103, 6104, 9101, 9102, 12701, 12702,
        12703, 12704, 12705)


def hexagon(n: int) -> np.ndarray:
    """(n, n) bool: True inside a flat-topped hexagon filling the square."""
    r = n / 2 - 0.5
    y, x = np.abs(np.mgrid[:n, :n] - (n - 1) / 2)
    return (y <= r * np.sqrt(3) / 2) & (np.sqrt(3) * x + y <= np.sqrt(3) * r)


def write_file(args: tuple[int, str]) -> int:
    """Write the MAPS file of galaxy ``i``; returns its size in bytes."""
    from linecube.io.maps_writer import layout, maps_filename, write_maps
    from linecube.lines import DR17_LINES

    i, folder = args
    plateifu = f"{7000 + i // len(IFUS)}-{IFUS[i % len(IFUS)]}"
    path = Path(folder) / maps_filename(plateifu)
    if path.exists():
        return path.stat().st_size
    rng = np.random.default_rng(i)
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
    ratios = rng.uniform(0.02, 3.0, size=len(DR17_LINES))
    flux = ratios[:, None, None] * 30 * disc * rng.uniform(0.8, 1.2, (len(DR17_LINES), SIZE, SIZE))
    maps["EMLINE_GFLUX"] = np.where(inside, flux, 0.0).astype("f4")
    maps["EMLINE_GFLUX_IVAR"] = np.where(inside, 1 / (0.05 * flux + 0.02) ** 2, 0.0).astype("f4")
    maps["EMLINE_GFLUX_MASK"] = np.where(inside, 0, CORNER).astype("i4") * np.ones(
        (len(DR17_LINES), 1, 1), "i4")
    header = {"PLATEIFU": plateifu, "MANGAID": f"1-{100000 + i}", "OBJRA": 180.0 + i * 1e-3,
              "OBJDEC": 30.0, "SCINPVEL": 9000.0, "REFF": 5.0, "RFWHM": 2.6, "EBVGAL": 0.02}
    write_maps(path, maps, header, full=True)
    return path.stat().st_size


def generate(folder: Path, n: int, processes: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(processes) as pool:
        sizes = pool.map(write_file, [(i, str(folder)) for i in range(n)], chunksize=4)
    print(f"{n} files in {folder}, {np.mean(sizes) / 1e6:.1f} MB each (gzip)", flush=True)
    return sorted(folder.glob("manga-*.fits.gz"))[:n]


# ------------------------------------------------------------------- measured phases (subprocess)
def phase_bound(files: list[str]) -> dict:
    from astropy.io import fits

    start = time.perf_counter()
    total = 0
    for path in files:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.data is not None:
                    total += hdu.data.nbytes
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "files_per_s": len(files) / seconds, "decompressed_GB": total / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def phase_ingest(files: list[str], workers: int, store: str) -> dict:
    from linecube.preprocess import PreprocessConfig
    from linecube.store.ingest import ingest

    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    report = ingest(files, store, PreprocessConfig(), workers=workers, progress=False)
    seconds = time.perf_counter() - start  # includes starting and closing the local cluster
    assert report.ingested == len(files), report.summary()
    shutil.rmtree(store, ignore_errors=True)
    return {"seconds": seconds, "files_per_s": len(files) / seconds,
            "peak_worker_rss_mb": report.peak_worker_rss_mb,
            "client_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_phase(name: str, files: list[Path], **kw) -> dict:
    listing = Path(files[0]).parent.parent / f"bench-files-{len(files)}.txt"
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
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--phase-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        files = Path(args.files).read_text().split("\n")
        kw = json.loads(args.phase_args)
        result = phase_bound(files) if args.phase == "bound" else phase_ingest(files, **kw)
        print(json.dumps(result))
        return

    files = generate(args.dir / "maps", args.n, args.gen_processes)
    store = str(args.dir / "store")
    small = files[: max(1, args.n // 5)]
    results = {
        "bound": run_phase("bound", files),
        "ingest_1": run_phase("ingest", files, workers=1, store=store),
        "ingest_2": run_phase("ingest", files, workers=2, store=store),
        "ingest_1_small": run_phase("ingest", small, workers=1, store=store),
    }
    bound = results["bound"]["files_per_s"]
    print(f"{'run':<28}{'files':>6}{'s':>8}{'files/s':>9}{'x bound':>9}{'worker MB':>11}"
          f"{'client MB':>11}")
    for name, r in results.items():
        n = len(small) if name.endswith("small") else len(files)
        print(f"{name:<28}{n:>6}{r['seconds']:>8.1f}{r['files_per_s']:>9.2f}"
              f"{r['files_per_s'] / bound:>9.2f}{r.get('peak_worker_rss_mb', float('nan')):>11.0f}"
              f"{r.get('client_peak_rss_mb', r.get('peak_rss_mb')):>11.0f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
