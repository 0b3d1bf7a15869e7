"""Every output directory is safe: linecube writes only into a new or empty directory or one
of its own products of the same kind, and never deletes what it did not write."""

import numpy as np
import pytest

from linecube.analysis.layout import AnalysisDir
from linecube.cli import main
from linecube.errors import InputFileError, OutputDirError
from linecube.outdir import MARKER, claim_output_dir
from linecube.store import Store, StoreMeta

META = StoreMeta(lines=["Hb-4862", "Ha-6564"], size=8, preprocess={})


def tree(path):
    """{relative path: bytes} of every file under ``path``."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def small_store(path, n=2):
    store = Store.create(path, META)
    shape = (n, 2, 8, 8)
    store.append({"x": np.ones(shape, "f4"), "weight": np.ones(shape, "u1"),
                  "ivar": np.ones(shape, "f4")}, [{"plateifu": f"1-{i}"} for i in range(n)])
    return store


@pytest.mark.parametrize("kind", ["store", "run", "analysis", "report", "explorer"])
def test_foreign_directory_is_refused_and_left_intact(tmp_path, kind):
    out = tmp_path / "out"
    (out / "arrays.zarr").mkdir(parents=True)
    (out / "arrays.zarr" / "important").write_text("keep me")
    (out / "catalogue.parquet").write_text("mine")
    before = tree(out)
    with pytest.raises(OutputDirError, match=r"is not empty and is not a linecube .*"
                       r"arrays.zarr, catalogue.parquet"):
        claim_output_dir(out, kind)
    assert tree(out) == before


@pytest.mark.parametrize("kind", ["store", "run", "analysis", "report", "explorer"])
def test_new_empty_and_own_directories_are_accepted(tmp_path, kind):
    assert claim_output_dir(tmp_path / "new" / "dir", kind).is_dir()
    (tmp_path / "empty").mkdir()
    claim_output_dir(tmp_path / "empty", kind)
    assert (tmp_path / "empty" / MARKER).read_text().strip() == kind
    (tmp_path / "empty" / "product").write_text("x")
    claim_output_dir(tmp_path / "empty", kind)  # its own product: accepted again
    other = "store" if kind != "store" else "run"
    with pytest.raises(OutputDirError, match=f"holds a linecube {kind}, not a {other}"):
        claim_output_dir(tmp_path / "empty", other)


def test_a_file_link_or_fifo_is_not_an_output_directory(tmp_path):
    import os

    (tmp_path / "file").write_text("data")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")
    for name, what in [("file", "a file"), ("dangling", "a dangling symbolic link"),
                       ("fifo", "a FIFO")]:
        with pytest.raises(OutputDirError, match=f"it is {what}"):
            claim_output_dir(tmp_path / name, "store")
    assert (tmp_path / "file").read_text() == "data"


def test_store_without_store_json_is_not_overwritten(tmp_path):
    small_store(tmp_path / "store", n=3)
    (tmp_path / "store" / "store.json").unlink()
    before = tree(tmp_path / "store")
    with pytest.raises(OutputDirError, match="store.json is missing"):
        Store.open_or_create(tmp_path / "store", META)
    assert tree(tmp_path / "store") == before


def test_store_created_before_markers_existed_is_still_recognised(tmp_path):
    small_store(tmp_path / "store")
    (tmp_path / "store" / MARKER).unlink()
    assert len(Store.open_or_create(tmp_path / "store", META)) == 2


def test_killed_create_is_taken_over(tmp_path):
    claim_output_dir(tmp_path / "store", "store")
    (tmp_path / "store" / "arrays.zarr").mkdir()  # what a create killed early leaves
    assert len(Store.create(tmp_path / "store", META)) == 0


def test_train_refuses_a_foreign_run_directory(tmp_path):
    from linecube.training.config import load_train_config
    from linecube.training.train import train

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="notes.txt"):
        train(tmp_path / "no-store", load_train_config("demo"), tmp_path / "run")
    assert tree(tmp_path / "run") == {"notes.txt": b"mine"}


def test_analysis_directory_must_be_new_empty_or_its_own(tmp_path):
    small_store(tmp_path / "store")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "thesis.tex").write_text("mine")
    with pytest.raises(OutputDirError, match="thesis.tex"):
        AnalysisDir(tmp_path / "a").open_store(tmp_path / "store")
    AnalysisDir(tmp_path / "b").open_store(tmp_path / "store")
    assert (tmp_path / "b" / "analysis.json").is_file()
    with pytest.raises(InputFileError, match="belongs to the store"):
        small_store(tmp_path / "other")
        AnalysisDir(tmp_path / "b").open_store(tmp_path / "other")


def test_ingest_into_a_file_or_foreign_directory_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "out.txt").write_text("mine")
    (tmp_path / "maps").mkdir()
    assert main(["ingest", str(tmp_path / "maps"), "--out", str(tmp_path / "out.txt"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it is a file, not a directory" in err
    assert (tmp_path / "out.txt").read_text() == "mine"
