import numpy as np
import pandas as pd
import pytest

from linecube.cli import main
from linecube.io.maps import read_maps
from linecube.io.mmu import write_mmu
from linecube.preprocess import PreprocessConfig, prepare_file
from linecube.preprocess.inspect import inspect_file, line_table
from linecube.store.store import Store, StoreMeta


def test_file_summary_values(maps_file):
    path = maps_file()
    summary, = inspect_file(path)
    table = summary.table.set_index("line")
    assert len(table) == 35
    gal = read_maps(path, lines=["Ha-6564"])
    good = gal.good[0]
    assert table.loc["Ha-6564", "mask_fraction"] == pytest.approx(1 - good.mean())
    snr = gal.flux[0][good] * np.sqrt(gal.ivar[0][good])
    assert table.loc["Ha-6564", "median_snr"] == pytest.approx(np.median(snr))
    assert len(inspect_file(maps_file(name="b.fits", release="dr15"))[0].table) == 22


def test_line_table_handles_a_fully_masked_line(maps_file):
    gal = read_maps(maps_file(), lines="strong")
    gal.good[0] = False
    table = line_table(gal)
    assert table.loc[0, "mask_fraction"] == 1.0 and np.isnan(table.loc[0, "median_snr"])


def test_cli_file_and_png(maps_file, tmp_path, capsys):
    png = tmp_path / "grid.png"
    assert main(["inspect", str(maps_file()), "--png", str(png), "--stretch", "log"]) == 0
    out = capsys.readouterr().out
    assert "map size   12x12" in out and "Ha-6564" in out and "median_snr" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_mmu_file(maps_file, tmp_path, capsys):
    h5 = tmp_path / "a.hdf5"
    write_mmu(h5, [read_maps(maps_file(), lines="strong")])
    png = tmp_path / "m.png"
    assert main(["inspect", str(h5), "--galaxy", "8485-1901", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "map size   96x96" in out and "lines      7" in out and png.exists()
    assert main(["inspect", str(h5), "--galaxy", "1-2", "--png", str(png)]) == 2


def test_cli_store(maps_file, tmp_path, capsys):
    cfg = PreprocessConfig(lines="strong", size=16)
    prep, = prepare_file(maps_file(), cfg)
    store = Store.create(tmp_path / "store", StoreMeta(lines=list(cfg.line_names), size=16,
                                                       preprocess=cfg.model_dump()))
    store.append({k: getattr(prep, k)[None] for k in ("x", "weight", "ivar")}, [prep.row])
    store.write_rejections(pd.DataFrame({"file": ["bad.fits"], "reason": ["not FITS"]}))
    png = tmp_path / "s.png"
    assert main(["inspect", str(tmp_path / "store"), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "galaxies   1" in out and "size       16x16" in out
    assert "rejections 1" in out and "bad.fits: not FITS" in out and png.exists()
    assert main(["inspect", str(tmp_path / "store"), "--galaxy", "1-1", "--png", str(png)]) == 2


def test_cli_bad_file(tmp_path, capsys):
    junk = tmp_path / "junk.fits"
    junk.write_text("nope" * 1000)
    assert main(["inspect", str(junk)]) == 2
    assert "junk.fits" in capsys.readouterr().err
