import os

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from linecube.errors import InputFileError
from linecube.preprocess import Prepared, PreprocessConfig
from linecube.store import Store
from linecube.store.ingest import expand_inputs, ingest, sha256_file


def tiny_config(size=8):
    return PreprocessConfig(lines=["Hb-4862", "Ha-6564"], size=size)


def fake_prepare(path, cfg, rejections=None):
    """Reads lines 'PLATEIFU VALUE' (one galaxy each); 'BAD reason' makes the file unusable;
    'GROUP name reason' is a failed galaxy of a multi-galaxy file."""
    out = []
    for line in open(path).read().splitlines():
        key, value = line.split(maxsplit=1)
        if key == "BAD":
            raise InputFileError(path, value)
        if key == "GROUP":
            name, reason = value.split(maxsplit=1)
            rejections.append((f"{path}#{name}", reason))
            continue
        shape = (len(cfg.line_names), cfg.size, cfg.size)
        v = float(value)
        out.append(Prepared(np.full(shape, v, "f4"), np.ones(shape, "u1"),
                            np.full(shape, 2 * v, "f4"), {"plateifu": key, "scale": v}))
    return out


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def run(inputs, store, client, **kw):
    return ingest(inputs, store, tiny_config(), scheduler=client, progress=False,
                  prepare=fake_prepare, **kw)


def test_expand_inputs(tmp_path):
    a = write(tmp_path / "d" / "x" / "a.fits.gz", "")
    b = write(tmp_path / "d" / "b.h5", "")
    write(tmp_path / "d" / "notes.txt", "")
    c = write(tmp_path / "c.fits", "")
    listing = write(tmp_path / "list.txt", f"# files\nc.fits\n\n{a}\nmissing.fits\n")
    files, missing = expand_inputs([tmp_path / "d", listing, c])
    assert files == sorted(map(str, [a, b, c]))
    assert missing == [(str(tmp_path / "missing.fits"), f"file not found (listed in {listing})",
                        "missing")]


def test_expand_inputs_takes_every_readable_type_in_any_case(tmp_path):
    found = [write(tmp_path / "d" / name, "")
             for name in ("a.fit", "b.fit.gz", "C.FITS.GZ", "d.H5", "e.hdf5")]
    write(tmp_path / "d" / "f.fits.bz2", "")
    files, missing = expand_inputs([tmp_path / "d"])
    assert files == sorted(map(str, found)) and missing == []


def test_a_binary_file_of_no_readable_type_is_rejected(tmp_path):
    odd = tmp_path / "cube.npy"
    odd.write_bytes(bytes(range(256)))
    with pytest.raises(InputFileError, match=r"not a readable file type \(.*\.fit\.gz.*\.h5\)"):
        expand_inputs([odd])


def test_ingest_reads_a_fit_gz_maps_file(tmp_path, maps_file, client):
    path = maps_file(name="in/manga-8485-1901-MAPS.fit.gz")
    report = ingest([tmp_path / "in"], tmp_path / "store",
                    PreprocessConfig(lines="strong", size=12), scheduler=client, progress=False)
    assert report.rejections == [] and report.ingested == 1
    store = Store.open(tmp_path / "store")
    assert list(store.catalogue.plateifu) == ["8485-1901"]
    assert store.catalogue.file[0] == str(path) and store.read([0])["weight"].sum() > 100


def test_ingest_rejects_and_is_idempotent(tmp_path, client):
    src = tmp_path / "in"
    write(src / "g1.fits", "1-1 1.0")
    write(src / "g2.fits", "1-2 2.0")
    bad = write(src / "sub" / "g3.fits", "BAD every spaxel is masked")
    dup = write(src / "z_dup.fits", "1-1 5.0")
    store_dir = tmp_path / "store"

    report = run([src, tmp_path / "nope.fits"], store_dir, client, batch_size=2)
    assert (report.ingested, report.ingested_files, report.skipped) == (2, 2, 0)
    assert report.ok
    reasons = dict(report.rejections)
    assert reasons[str(bad)] == "every spaxel is masked"
    first = src / "g1.fits"
    assert reasons[str(dup)] == f"duplicate PLATEIFU 1-1 (already in the store from {first})"
    assert reasons[str(tmp_path / "nope.fits")] == "file not found"
    assert "every spaxel is masked" in report.summary()

    store = Store.open(store_dir)
    assert list(store.catalogue.plateifu) == ["1-1", "1-2"]
    assert list(store.catalogue.file) == [str(src / "g1.fits"), str(src / "g2.fits")]
    assert store.catalogue.checksum[1] == sha256_file(src / "g2.fits")
    np.testing.assert_array_equal(store.read([1])["x"], np.full((1, 2, 8, 8), 2.0, "f4"))
    np.testing.assert_array_equal(store.read([1])["ivar"], np.full((1, 2, 8, 8), 4.0, "f4"))
    assert set(store.rejections().file) == {str(bad), str(dup), str(tmp_path / "nope.fits")}

    # Same inputs again: nothing new, nothing reprocessed that is already in.
    again = run([src], store_dir, client)
    assert (again.ingested, again.skipped) == (0, 2) and again.ok
    assert len(Store.open(store_dir)) == 2

    # A new file is appended, the fixed file leaves the rejection table; the missing one stays.
    write(src / "g4.fits", "1-4 4.0")
    bad.write_text("1-3 3.0")
    third = run([src], store_dir, client)
    assert third.ingested == 2 and third.skipped == 2
    store = Store.open(store_dir)
    assert list(store.catalogue.plateifu) == ["1-1", "1-2", "1-4", "1-3"]
    assert set(store.rejections().file) == {str(dup), str(tmp_path / "nope.fits")}


def test_same_bytes_elsewhere_is_skipped_by_checksum(tmp_path, client):
    write(tmp_path / "a" / "g1.fits", "1-1 1.0")
    run([tmp_path / "a"], tmp_path / "store", client)
    write(tmp_path / "b" / "copy.fits", "1-1 1.0")
    report = run([tmp_path / "b"], tmp_path / "store", client)
    assert (report.ingested, report.skipped, report.rejections) == (0, 1, [])


def test_nothing_ingested_is_not_ok(tmp_path, client):
    write(tmp_path / "g.fits", "BAD not a FITS file")
    report = run([tmp_path / "g.fits"], tmp_path / "store", client)
    assert not report.ok and report.rejections == [(str(tmp_path / "g.fits"), "not a FITS file")]


def test_unexpected_error_is_a_rejection(tmp_path, client):
    write(tmp_path / "g.fits", "1-1 notanumber")
    report = run([tmp_path / "g.fits"], tmp_path / "store", client)
    [(_, reason)] = report.rejections
    assert reason.startswith("unexpected ValueError: could not convert string to float")


def test_store_with_other_settings_is_unusable(tmp_path, client):
    write(tmp_path / "g.fits", "1-1 1.0")
    run([tmp_path / "g.fits"], tmp_path / "store", client)
    with pytest.raises(InputFileError, match="other settings"):
        ingest([tmp_path / "g.fits"], tmp_path / "store", tiny_config(size=16), scheduler=client,
               progress=False, prepare=fake_prepare)


def test_uncommitted_rows_are_discarded(tmp_path, client):
    write(tmp_path / "g1.fits", "1-1 1.0")
    run([tmp_path / "g1.fits"], tmp_path / "store", client)
    store = Store.open(tmp_path / "store", mode="a")
    for arr in (store.x, store.weight, store.ivar):  # a killed append grew the arrays
        arr.resize((3, *arr.shape[1:]))
        arr[1:] = 9
    write(tmp_path / "store" / ".catalogue.parquet.abc.tmp", "half a catalogue")
    write(tmp_path / "g2.fits", "1-2 2.0")
    run([tmp_path], tmp_path / "store", client)
    store = Store.open(tmp_path / "store")
    assert store.x.shape[0] == len(store) == 2
    assert not list((tmp_path / "store").glob(".*.tmp"))
    np.testing.assert_array_equal(store.read([1])["x"], np.full((1, 2, 8, 8), 2.0, "f4"))


def test_rejections_table_is_parquet(tmp_path, client):
    write(tmp_path / "g.fits", "BAD truncated gzip")
    write(tmp_path / "h.fits", "1-1 1.0")
    run([tmp_path], tmp_path / "store", client)
    table = pd.read_parquet(tmp_path / "store" / "rejections.parquet")
    assert list(table.columns) == ["file", "reason", "kind"]
    assert table.values.tolist() == [[str(tmp_path / "g.fits"), "truncated gzip", "format"]]
    assert not [n for n in os.listdir(tmp_path / "store") if n.endswith(".tmp")]


KILLABLE = """
import time
from linecube.preprocess import PreprocessConfig, prepare_file
from linecube.store.ingest import ingest


def slow_prepare(path, cfg, rejections):  # slow enough to be killed mid-way
    time.sleep(0.1)
    return prepare_file(path, cfg, rejections)


ingest([{src!r}], {store!r}, PreprocessConfig(lines="strong", size=12), workers=2,
       processes=False, progress=False, prepare=slow_prepare, batch_size=3)
"""


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(tmp_path, maps_file, client):
    import signal
    import subprocess
    import sys
    import time

    for i in range(30):  # 26 galaxies, 4 rejected files, one duplicate PLATEIFU
        header = {"plateifu": f"{i + 1}-1901", "DAPQUAL": (1 << 30) * (i % 7 == 3)}
        maps_file(name=f"in/g{i:02d}.fits.gz", header=header, seed=i)
    maps_file(name="in/g99.fits.gz", header={"plateifu": "5-1901"}, seed=99)
    src = tmp_path / "in"
    script = write(tmp_path / "run.py",
                   KILLABLE.format(src=str(src), store=str(tmp_path / "killed")))
    proc = subprocess.Popen([sys.executable, str(script)])
    catalogue = tmp_path / "killed" / "catalogue.parquet"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if catalogue.exists() and len(pd.read_parquet(catalogue)) >= 6:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 6 <= len(pd.read_parquet(catalogue)) < 26, "the run was not killed mid-way"

    cfg = PreprocessConfig(lines="strong", size=12)
    resumed = ingest([src], tmp_path / "killed", cfg, scheduler=client, progress=False,
                     batch_size=3)
    assert resumed.skipped >= 6
    ingest([src], tmp_path / "whole", cfg, scheduler=client, progress=False, batch_size=3)
    a, b = Store.open(tmp_path / "killed"), Store.open(tmp_path / "whole")
    assert len(a) == len(b) == 26
    pd.testing.assert_frame_equal(a.catalogue, b.catalogue)
    assert a.x.shape == b.x.shape
    for name in ("x", "weight", "ivar"):
        np.testing.assert_array_equal(a.read(slice(None))[name], b.read(slice(None))[name])
    pd.testing.assert_frame_equal(a.rejections(), b.rejections())
    assert len(a.rejections()) == 5


LINES = ["Hb-4862", "OIII-5008", "Ha-6564", "NII-6585", "HeI-7067"]


def test_real_files_round_trip_and_bad_inputs(tmp_path, maps_file, client):
    import h5py
    from astropy.io import fits

    from linecube.preprocess import invert

    good = [maps_file(name=f"in/a/manga-{p}.fits.gz", header={"plateifu": p}, seed=i)
            for i, p in enumerate(["8485-1901", "7443-12703"])]
    plain = maps_file(name="in/b/manga-9000-3701.fits", header={"plateifu": "9000-3701"}, seed=3)
    bad = {
        "dup": maps_file(name="in/z-dup.fits.gz", header={"plateifu": "8485-1901"}, seed=4),
        "dr15": maps_file(name="in/dr15.fits.gz", release="dr15", header={"plateifu": "1-1"}),
        "critical": maps_file(name="in/crit.fits.gz",
                              header={"plateifu": "1-2", "DAPQUAL": 1 << 30}),
        "masked": maps_file(name="in/masked.fits.gz", header={"plateifu": "1-3"},
                            maps={"EMLINE_GFLUX_MASK": np.full((35, 12, 12), 1 << 30, "i4")}),
        "truncated": write(tmp_path / "in" / "cut.fits.gz", ""),
        "notfits": write(tmp_path / "in" / "junk.fits", "SIMPLE? no, this is text"),
        "hdf5": tmp_path / "in" / "empty.hdf5",
    }
    bad["truncated"].write_bytes(good[0].read_bytes()[:2000])
    with h5py.File(bad["hdf5"], "w") as h5:
        h5.create_group("something-else")

    cfg = PreprocessConfig(lines=LINES, size=12)
    report = ingest([tmp_path / "in"], tmp_path / "store", cfg, scheduler=client, progress=False)
    store = Store.open(tmp_path / "store")
    assert list(store.catalogue.plateifu) == ["7443-12703", "8485-1901", "9000-3701"]  # by path
    assert store.meta.lines == LINES and store.meta.preprocess["size"] == 12
    reasons = dict(report.rejections)
    hdf5_group = f"{bad.pop('hdf5')}#something-else"  # one row per failed group of an HDF5 file
    assert set(reasons) == {str(p) for p in bad.values()} | {hdf5_group}
    assert "'maps'" in reasons[hdf5_group]
    assert reasons[str(bad["dup"])].startswith("duplicate PLATEIFU 8485-1901")
    assert "HeI-7067" in reasons[str(bad["dr15"])]
    assert "CRITICAL" in reasons[str(bad["critical"])]
    assert "gzip" in reasons[str(bad["truncated"])].lower()
    assert "fits" in reasons[str(bad["notfits"])].lower()
    assert "masked" in reasons[str(bad["masked"])].lower()
    assert store.rejections().set_index("file")["reason"].to_dict() == reasons

    # file -> store -> physical flux, exact on good spaxels
    for i, path in enumerate([good[1], good[0], plain]):
        row = store.catalogue.iloc[i].to_dict()
        got = store.read([i])
        flux = invert(got["x"][0], row, cfg)
        with fits.open(path) as hdul:
            names = [hdul["EMLINE_GFLUX"].header[f"C{k + 1:02d}"].strip() for k in range(35)]
            raw = hdul["EMLINE_GFLUX"].data[[names.index(n) for n in LINES]].astype("f4")
        oy, ox = int(row["offset_y"]), int(row["offset_x"])
        assert (oy, ox) == (0, 0)
        w = got["weight"][0].astype(bool)
        assert w.sum() > 100
        np.testing.assert_allclose(flux[w], raw[w], rtol=1e-5, atol=1e-6)
        assert row["checksum"] == sha256_file(path) and row["file"] == str(path)


def test_one_writer_at_a_time(tmp_path, client):
    import socket
    import subprocess
    import sys

    write(tmp_path / "g.fits", "1-1 1.0")
    run([tmp_path / "g.fits"], tmp_path / "store", client)
    lock = tmp_path / "store" / ".ingest.lock"
    assert not lock.exists()
    lock.write_text(f"{socket.gethostname()}:{os.getppid()}")  # a live process holds it
    with pytest.raises(InputFileError, match="another ingest .* is writing to this store"):
        run([tmp_path / "g.fits"], tmp_path / "store", client)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lock.write_text(f"{socket.gethostname()}:{dead}")  # left by a killed run: taken over
    assert run([tmp_path / "g.fits"], tmp_path / "store", client).skipped == 1
    assert not lock.exists()


def test_unchanged_files_are_not_read_again(tmp_path, client):
    path = write(tmp_path / "g.fits", "1-1 1.0")
    run([path], tmp_path / "store", client)
    st = path.stat()
    path.write_text("BAD xx!")  # same size and (restored) mtime: taken as unchanged, not read
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = run([path], tmp_path / "store", client)
    assert (report.skipped, report.rejections) == (1, [])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: read again
    report = run([path], tmp_path / "store", client)
    assert report.rejections == [(str(path), "xx!")]


def test_failed_galaxies_of_a_multi_galaxy_file(tmp_path, client):
    path = write(tmp_path / "tile.hdf5", "1-1 1.0\nGROUP 1-2 no 'maps' dataset\n1-3 3.0")
    report = run([path], tmp_path / "store", client)
    assert report.ingested == 2 and report.rejections == [(f"{path}#1-2", "no 'maps' dataset")]
    assert list(Store.open(tmp_path / "store").rejections().file) == [f"{path}#1-2"]
    path.write_text("1-1 1.0\n1-2 2.0\n1-3 3.0")  # the group is fixed: its row leaves the table
    report = run([path], tmp_path / "store", client)
    assert report.ingested == 1
    assert [r for _, r in report.rejections] == [  # the others are in already (append-only)
        f"duplicate PLATEIFU 1-{i} (already in the store from {path})" for i in (1, 3)]
    assert list(Store.open(tmp_path / "store").rejections().file) == [str(path)] * 2
