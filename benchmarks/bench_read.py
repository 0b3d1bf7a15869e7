"""Read and preprocessing throughput on DR17-sized gzip MAPS files, side by side.

Writes N full DR17 files (74x74, 35 lines, all 64 HDUs) and times, in one run and
interleaved round by round:

* ``astropy_all``: decompress each file in one pass and parse every HDU's data with astropy
  (the bound: merely decompressing and opening the whole file);
* ``astropy_all_gz``: the same through ``fits.open(path)`` on the ``.gz`` directly, touching
  every HDU (astropy re-reads the gzip stream, so this is much slower than the bound);
* ``astropy_gflux``: plain astropy reading of the 19 ``mantha19`` GFLUX/IVAR/MASK channels by
  header name (format doc §3.2), no validation;
* ``read_maps``: :func:`linecube.io.maps.read_maps` (validation and metadata included);
* ``prepare_file``: read + preprocess to 64x64 tensors.

Usage::

    python benchmarks/bench_read.py --files 12 --rounds 3
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from manga_fixtures import fake_header, fake_maps_arrays  # noqa: E402

from linecube.io.maps import read_maps  # noqa: E402
from linecube.io.maps_writer import write_maps  # noqa: E402
from linecube.lines import PRESETS  # noqa: E402
from linecube.preprocess import PreprocessConfig, prepare_file  # noqa: E402


def astropy_all(path):
    raw = gzip.decompress(Path(path).read_bytes())
    with fits.open(io.BytesIO(raw)) as hdul:
        return sum(int(h.data.size) for h in hdul if h.data is not None)


def astropy_all_gz(path):
    with fits.open(path) as hdul:
        return sum(int(h.data.size) for h in hdul if h.data is not None)


def astropy_gflux(path):
    lines = PRESETS["mantha19"]
    with fits.open(path) as hdul:
        ch = {v.strip(): int(k[1:]) - 1 for k, v in hdul["EMLINE_GFLUX"].header.items()
              if k.startswith("C") and k[1:].isdigit()}
        idx = [ch[n] for n in lines]
        return (hdul["EMLINE_GFLUX"].data[idx].astype("f4"),
                hdul["EMLINE_GFLUX_IVAR"].data[idx].astype("f4"),
                hdul["EMLINE_GFLUX_MASK"].data[idx].astype("i4"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = PreprocessConfig()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        t0 = time.perf_counter()
        for i in range(args.files):
            path = Path(tmp) / f"manga-{9000 + i}-12701-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz"
            write_maps(path, fake_maps_arrays("dr17", 74, seed=i),
                       fake_header(f"{9000 + i}-12701"), full=True)
            paths.append(path)
        write_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        print(f"wrote {args.files} full DR17 74x74 gzip files ({size_mb:.2f} MB each): "
              f"{args.files / write_s:.2f} files/s")
        tasks = {
            "astropy_all": astropy_all,
            "astropy_all_gz": astropy_all_gz,
            "astropy_gflux": astropy_gflux,
            "read_maps": lambda p: read_maps(p),
            "prepare_file": lambda p: prepare_file(p, cfg),
        }
        times = {name: [] for name in tasks}
        for _ in range(args.rounds):
            for name, fn in tasks.items():
                t0 = time.perf_counter()
                for p in paths:
                    fn(p)
                times[name].append(time.perf_counter() - t0)
        bound = np.median(times["astropy_all"])
        print(f"{'task':<14} {'files/s':>8} {'time / bound':>13}")
        for name, ts in times.items():
            med = float(np.median(ts))
            print(f"{name:<14} {args.files / med:8.2f} {med / bound:13.2f}")


if __name__ == "__main__":
    main()
