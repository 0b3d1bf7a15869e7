"""A lying header, a huge extension or a gzip bomb is refused before anything is allocated: a
worker's peak memory on them stays within the stated ceiling of 2x its peak on a normal file
(BENCHMARKS.md, "Bad inputs")."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from bad_inputs import good, header_spans, io_bytes, plain_bytes, set_cards

from linecube.errors import InputFileError
from linecube.io.checks import InputChecks
from linecube.io.maps import read_hdus, read_maps

WORKER = """
import json, sys
from linecube.preprocess import PreprocessConfig, prepare_file
from linecube.store.ingest import process_file
out = process_file(sys.argv[1], PreprocessConfig(size=16), prepare_file, frozenset())
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(json.dumps({"status": out.status, "kind": out.kind, "peak_kib": int(hwm)}))
"""


def worker(path):
    run = subprocess.run([sys.executable, "-c", WORKER, str(path)], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout)


def huge_gflux(tmp_path, side):
    """A gzip file whose EMLINE_GFLUX really holds 35 x side x side float32 zeros."""
    full = plain_bytes(good(tmp_path / "src.fits"))
    start, end, _ = next(s for s in header_spans(full)
                         if str(s[2].get("EXTNAME", "")).strip() == "EMLINE_GFLUX")
    data_end = end + -(-4 * 35 * 12 * 12 // 2880) * 2880
    head = set_cards(full[start:end], "EMLINE_GFLUX",
                     {"NAXIS1": side, "NAXIS2": side, "DATASUM": "0"})  # zeros sum to 0
    path = tmp_path / "huge.fits.gz"
    with gzip.open(path, "wb", 1) as fh:
        fh.write(full[:start] + head)
        for _ in range(35):
            fh.write(bytes(4 * side * side))
        fh.write(bytes(-(4 * 35 * side * side) % 2880) + full[data_end:])
    return path


def bomb(tmp_path):
    """A gzip file with 32 zero-filled 64 x 128 x 128 float64 HDUs (268 MB decompressed, past
    the default checks.max_read_mb) before the extensions read."""
    full = plain_bytes(good(tmp_path / "b.fits"))
    first = header_spans(full)[1][0]
    pad = io_bytes(fits.ImageHDU(np.zeros((64, 128, 128), ">f8"), name="PADDING"))
    path = tmp_path / "bomb.fits.gz"
    with gzip.open(path, "wb", 1) as fh:
        fh.write(full[:first])
        for _ in range(32):
            fh.write(pad)
        fh.write(full[first:])
    return path


@pytest.mark.slow
def test_worker_memory_on_bad_files_stays_within_twice_a_normal_file(tmp_path):
    normal = worker(good(tmp_path / "normal.fits.gz"))
    lying = tmp_path / "lying.fits.gz"
    lying.write_bytes(gzip.compress(set_cards(plain_bytes(good(tmp_path / "l.fits")),
                                              "EMLINE_GFLUX", {"NAXIS1": 40000,
                                                               "NAXIS2": 40000}), 1))
    assert normal["status"] == "prepared"
    for path in (lying, huge_gflux(tmp_path, 1200), bomb(tmp_path)):
        bad = worker(path)
        assert (bad["status"], bad["kind"]) == ("rejected", "too_large")
        assert bad["peak_kib"] <= 2 * normal["peak_kib"], (bad, normal)


def test_decompressed_bytes_are_capped(tmp_path):
    path = huge_gflux(tmp_path, 100)  # 35 x 100 x 100 float32: within the shape limits
    with pytest.raises(InputFileError, match="more than 1 MB to decompress") as err:
        read_hdus(path, {"PRIMARY", "EMLINE_GFLUX"}, InputChecks(max_read_mb=1))
    assert err.value.kind == "too_large"
    assert read_hdus(path, {"EMLINE_GFLUX"})["EMLINE_GFLUX"][1].shape == (35, 100, 100)


def test_limits_are_configurable_for_other_surveys(tmp_path):
    path = good(tmp_path / "m.fits", n=40)
    with pytest.raises(InputFileError, match="SPX_SKYCOO claims a 2 x 40 x 40 image") as err:
        read_maps(path, checks=InputChecks(max_map_size=32))
    assert err.value.kind == "too_large"
    with pytest.raises(InputFileError, match="smaller than 48 x 48"):
        read_maps(path, checks=InputChecks(min_map_size=48))
    assert read_maps(path).flux.shape[1:] == (40, 40)
