"""Peak memory of an ingest worker on a normal MAPS file and on the worst bad files.

Each file is read by :func:`linecube.store.ingest.process_file` (what an ingest worker runs:
hash, read, check, preprocess) in a fresh Python process; the process's peak resident memory
(``VmHWM``, imports included) and the wall time of the call are reported. Files (built from a simulated DR17 galaxy):

* ``normal``: a full 74x74 DR17 MAPS file, all 64 HDUs, gzip;
* ``lying_header``: the same file with ``EMLINE_GFLUX`` claiming 35 x 40000 x 40000;
* ``gzip_bomb``: the same file with 60 zero-filled 64 x 128 x 128 float64 HDUs (503 MB
  decompressed) inserted before the extensions read;
* ``huge_needed_hdu``: ``EMLINE_GFLUX`` really holding 35 x 2000 x 2000 float32 zeros (560 MB
  decompressed; what drove a worker to gigabytes before the limits).

Usage::

    python benchmarks/bench_bad_inputs.py --out bad_inputs.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bad_inputs import good, header_spans, io_bytes, plain_bytes, set_cards  # noqa: E402

WORKER = """
import json, sys, time
from linecube.preprocess import PreprocessConfig, prepare_file
from linecube.store.ingest import process_file
def peak_rss_mb():  # VmHWM: unlike ru_maxrss, not carried over from the parent across exec
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    return int(line.split()[1]) / 1024
start = time.perf_counter()
out = process_file(sys.argv[1], PreprocessConfig(), prepare_file, frozenset())
print(json.dumps({"status": out.status, "kind": getattr(out, "kind", ""), "reason": out.reason[:120],
                  "peak_rss_mb": peak_rss_mb(),
                  "seconds": time.perf_counter() - start}))
"""


def _insert(raw: bytes, extra: bytes) -> bytes:
    first = header_spans(raw)[1][0]
    return raw[:first] + extra + raw[first:]


def build(folder: Path) -> dict[str, Path]:
    """The four files of the benchmark."""
    normal = good(folder / "manga-8485-12701-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz",
                  "8485-12701", n=74)
    full = plain_bytes(good(folder / "full.fits", "8485-12701", n=74))
    lying = folder / "lying.fits.gz"
    lying.write_bytes(gzip.compress(set_cards(full, "EMLINE_GFLUX",
                                              {"NAXIS1": 40000, "NAXIS2": 40000}), 6))
    zeros = io_bytes(fits.ImageHDU(np.zeros((64, 128, 128), ">f8"), name="PADDING"))
    bomb = folder / "bomb.fits.gz"
    with gzip.open(bomb, "wb", 9) as fh:
        fh.write(_insert(full, zeros * 60))
    huge = folder / "huge.fits.gz"
    start, end, header = next(sp for sp in header_spans(full)
                              if str(sp[2].get("EXTNAME", "")).strip() == "EMLINE_GFLUX")
    size = 4 * 35 * 74 * 74
    big = set_cards(full[start:end + size + -size % 2880], "EMLINE_GFLUX",
                    {"NAXIS1": 2000, "NAXIS2": 2000})[: end - start]
    with gzip.open(huge, "wb", 6) as fh:
        fh.write(full[:start] + big)
        for _ in range(35):  # 35 x 2000 x 2000 float32 zeros, 16 MB at a time
            fh.write(bytes(4 * 2000 * 2000))
        fh.write(full[end + size + -size % 2880:])
    return {"normal": normal, "lying_header": lying, "gzip_bomb": bomb,
            "huge_needed_hdu": huge}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="JSON results file")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in build(Path(tmp)).items():
            run = subprocess.run([sys.executable, "-c", WORKER, str(path)], check=True,
                                 capture_output=True, text=True)
            results[name] = {**json.loads(run.stdout), "file_mb": path.stat().st_size / 2**20}
            print(name, json.dumps(results[name]))
    base = results["normal"]["peak_rss_mb"]
    for res in results.values():
        res["peak_vs_normal"] = res["peak_rss_mb"] / base
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
