import pytest
from distributed import LocalCluster

from linecube.cli import main
from linecube.store import Store


@pytest.fixture(scope="module")
def scheduler():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_ingest_verb_with_scheduler_config_and_overrides(tmp_path, maps_file, scheduler, capsys):
    maps_file(name="maps/manga-8485-1901.fits.gz", header={"plateifu": "8485-1901"})
    maps_file(name="maps/manga-7443-12703.fits.gz", header={"plateifu": "7443-12703"}, seed=1)
    (tmp_path / "maps" / "broken.fits.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    (tmp_path / "pre.toml").write_text('lines = "strong"\nsize = 32\n')
    args = ["ingest", str(tmp_path / "maps"), "--out", str(tmp_path / "store"), "--config",
            str(tmp_path / "pre.toml"), "-o", "size=16", "--scheduler", scheduler, "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ingested: 2 galaxies from 2 files" in out and "rejected: 1" in out
    store = Store.open(tmp_path / "store")
    assert store.meta.size == 16 and len(store.meta.lines) == 7
    assert store.x.shape == (2, 7, 16, 16)
    assert list(store.rejections().file) == [str(tmp_path / "maps" / "broken.fits.gz")]

    assert main(args) == 0  # idempotent
    assert "skipped (already in the store): 2 files" in capsys.readouterr().out


def test_exit_status_when_nothing_ingested_or_store_unusable(tmp_path, scheduler, capsys):
    (tmp_path / "junk.fits").write_text("not FITS")
    store = tmp_path / "store"
    assert main(["ingest", str(tmp_path / "junk.fits"), "--out", str(store), "--scheduler",
                 scheduler, "--no-progress"]) == 1
    assert "rejected: 1" in capsys.readouterr().out
    (store / "store.json").write_text("{broken")
    assert main(["ingest", str(tmp_path / "junk.fits"), "--out", str(store), "--scheduler",
                 scheduler, "--no-progress"]) == 2
    assert "corrupt store metadata" in capsys.readouterr().err


def test_bad_override_is_a_config_error(tmp_path, capsys):
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "s"), "-o", "sise=16"]) == 2
    assert "key 'sise': unknown key" in capsys.readouterr().err


@pytest.mark.slow
def test_ingest_verb_on_a_local_process_cluster(tmp_path, maps_file, capsys):
    maps_file(name="maps/manga-8485-1901.fits.gz", header={"plateifu": "8485-1901"})
    assert main(["ingest", str(tmp_path / "maps"), "--out", str(tmp_path / "store"),
                 "--workers", "1", "-o", "lines=strong", "-o", "size=16", "--no-progress"]) == 0
    assert len(Store.open(tmp_path / "store")) == 1


def test_workers_and_scheduler_together_is_an_error(tmp_path, maps_file, scheduler, capsys):
    maps_file(name="maps/manga-8485-1901.fits.gz")
    assert main(["ingest", str(tmp_path / "maps"), "--out", str(tmp_path / "store"),
                 "--scheduler", scheduler, "--workers", "2", "--no-progress"]) == 2
    assert "workers sizes the local cluster" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
