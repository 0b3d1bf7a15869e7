"""Every kind of bad input gets its exact rejection kind, the good files land, and no command
shows a traceback (the corpus is built from simulated files: tests/bad_inputs.py)."""

from pathlib import Path

import pytest
from bad_inputs import CORPUS_MAX_READ_MB, LINES, build_corpus
from distributed import Client, LocalCluster

from linecube.cli import main
from linecube.errors import REASON_KINDS
from linecube.io.checks import InputChecks
from linecube.preprocess import PreprocessConfig
from linecube.store import Store
from linecube.store.ingest import ingest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    expected = build_corpus(root / "in")
    cfg = PreprocessConfig(lines=LINES, size=12,
                           checks=InputChecks(max_read_mb=CORPUS_MAX_READ_MB))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        report = ingest([root / "in", root / "in" / "list.txt"], root / "store", cfg,
                        scheduler=client, progress=False)
    return expected, report, Store.open(root / "store")


def test_the_corpus_covers_every_kind(corpus):
    expected, _, _ = corpus
    assert len(expected) >= 45
    assert {kind for _, kind in expected.values()} == set(REASON_KINDS) - {"unexpected"} | {None}


def test_every_bad_input_gets_its_exact_kind(corpus):
    expected, report, store = corpus
    table = store.rejections().set_index("file")
    ingested = set(store.catalogue["file"])
    got = {}
    for path, (case, _) in expected.items():
        if path in ingested:
            got[case] = None
        elif path in table.index:
            got[case] = table.loc[path, "kind"]
        else:
            got[case] = "<not reported>"
    assert got == {case: kind for case, kind in expected.values()}
    assert not [r for r in table["reason"] if r.startswith(("unexpected", "worker failed"))]
    assert report.peak_worker_rss_mb > 0


def test_the_genuine_file_wins_over_an_impostor(corpus):
    expected, _, store = corpus
    [(impostor, _)] = [(p, c) for p, (c, _) in expected.items() if c == "duplicate PLATEIFU"]
    [genuine] = [p for p, (c, _) in expected.items() if c == "genuine"]
    row = store.catalogue.set_index("plateifu").loc["8485-1901"]
    assert row["file"] == genuine
    reason = store.rejections().set_index("file").loc[impostor, "reason"]
    assert reason == f"duplicate PLATEIFU 8485-1901 (already in the store from {genuine})"


def test_named_bad_files_give_one_line_and_never_a_traceback(corpus, capsys):
    expected, _, _ = corpus
    for path in sorted({p.split("#")[0] for p in expected}):
        if Path(path).name == "gone.fits":
            continue
        code = main(["inspect", path])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, path
        assert code in (0, 2), path
        if code == 2:
            assert captured.err.count("\n") == 1, captured.err
            assert captured.err.startswith("linecube inspect: error: "), captured.err
