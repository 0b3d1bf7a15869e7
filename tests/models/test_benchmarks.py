"""Smoke tests of the model benchmarks on tiny sizes (the real runs are in BENCHMARKS.md)."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_reference_flop_formula_matches_peers_table(bench_path):
    from bench_convlstm import forward_flops

    assert forward_flops(32) / 1e9 == pytest.approx(5.43, abs=0.01)
    assert forward_flops(64) / 1e9 == pytest.approx(21.7, abs=0.05)


def test_rounds_combine_into_the_median_round_and_per_round_ratios(bench_path):
    from bench_convlstm import combine_rounds, report

    def measured(seconds, best, rss):
        return {"seconds_per_step": seconds, "best_seconds_per_step": best, "peak_rss_mb": rss,
                "max_abs_diff": 0.0, "losses": [0.5]}

    ours = combine_rounds([measured(1.0, 0.9, 100), {"error": "killed"}, measured(2.0, 1.8, 300),
                           measured(1.5, 1.4, 200)], flops=8e9,
                          rates={"conv": 64.0, "matmul": None})
    assert ours["seconds_per_step"] == 1.5 and ours["best_seconds_per_step"] == 0.9
    assert ours["samples_per_s"] == pytest.approx(8 / 1.5) and ours["gflops"] == pytest.approx(
        8 / 1.5 * 8)
    assert ours["fraction_of_conv"] == pytest.approx(8 / 1.5 * 8 / 64)
    assert ours["fraction_of_matmul"] is None
    assert ours["peak_rss_mb"] == 300 and len(ours["rounds"]) == 4
    assert combine_rounds([{"error": "a"}, {"error": "b"}], 1.0, {})["error"] == "b"

    peer = combine_rounds([measured(s, s, 1) for s in (2.0, 3.0, 6.0, 3.0)], 8e9, {})
    table = report({"rates": {}, "runs": [{"impl": "linecube", "size": 8, "mode": "train"} | ours,
                                          {"impl": "keras", "size": 8, "mode": "train"} | peer]})
    # ratios of each round side by side (the failed round left out), and of the median rounds
    assert "| linecube | keras | 8 | train | 2.00x | 2.22x | 2.00x, 3.00x, 2.00x |" in table
    assert "| linecube | 8 | train | 5.33 | 8.89 | 43 | 67% | - | 300 |" in table


def test_textbook_peer_computes_the_same_function(bench_path):
    import torch
    from bench_convlstm import make_batch, reference_model
    from peers.textbook_convlstm import TextbookAutoencoder

    ours = reference_model(8).eval()
    peer = TextbookAutoencoder()
    peer.copy_from(ours)
    assert sum(p.numel() for p in peer.parameters()) == 139_809
    x = torch.from_numpy(make_batch(8))
    with torch.no_grad():
        torch.testing.assert_close(peer(x), ours(x).recon, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_gpu_benchmark_runs_on_cpu(bench_path, tmp_path):
    from bench_gpu import main

    out = tmp_path / "gpu.json"
    assert main(["--device", "cpu", "--quick", "--presets", "reference", "--variants", "eager",
                 "--modes", "infer", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = {(r["model"], r["dtype"]): r for r in result["runs"]}
    assert set(runs) == {("reference", "fp32"), ("reference", "bf16"), ("textbook", "fp32"),
                         ("textbook", "bf16")}
    for run in runs.values():
        assert run["samples_per_s"] > 0 and 0 < run["mfu"] and run["flops_per_sample"] > 0
    # linecube skips the repeated decoder input convolution: fewer FLOPs than the textbook peer
    assert (runs[("reference", "fp32")]["flops_per_sample"]
            < runs[("textbook", "fp32")]["flops_per_sample"])
    assert "reference/eager/fp32/infer" in result["speedup_vs_textbook_fp32"]
    sys.modules.pop("bench_gpu", None)


def _conv_grad_runs(tmp_path) -> list[dict]:
    from bench_conv_grads import main

    out = tmp_path / "grads.json"
    assert main(["--size", "8", "--calls", "1", "--out", str(out)]) == 0
    sys.modules.pop("bench_conv_grads", None)
    return json.loads(out.read_text())["runs"]


def test_convolution_gradient_formulations_are_checked_against_float64(bench_path, tmp_path):
    """Every case is compared with float64; the product's computations must agree on any host,
    the benchmark's alternatives are recorded as wrong where PyTorch miscomputes them."""
    runs = _conv_grad_runs(tmp_path)
    assert len(runs) == 8  # 4 shapes x 2 dtypes
    for run in runs:
        cases = {k: v for k, v in run.items() if isinstance(v, dict)}
        expected = {"forward", "data", "weight", "data_as_forward", "weight_chunks_2",
                    "weight_chunks_4"}
        if run["images"] == 8:
            expected |= {"weight_shifted_matmuls", "weight_as_forward"}
        assert set(cases) == expected
        for case in cases.values():
            assert case["gflop_s"] > 0
            assert case["wrong_on_this_host"] == (not case["rel_error"] <= case["tolerance"])
        for product in ("forward", "data", "weight"):
            assert not cases[product]["wrong_on_this_host"], run


def test_a_formulation_computed_wrongly_is_recorded_not_raised(bench_path, tmp_path, monkeypatch,
                                                                capsys):
    import bench_conv_grads
    import torch

    def wrong(grad, x):
        return lambda: torch.zeros(grad.shape[1], x.shape[1], 3, 3, dtype=x.dtype)

    monkeypatch.setattr(bench_conv_grads, "shifted_matmuls", wrong)
    runs = _conv_grad_runs(tmp_path)
    per_step = [run for run in runs if run["images"] == 8]
    assert all(run["weight_shifted_matmuls"]["wrong_on_this_host"] for run in per_step)
    assert all(run["weight_shifted_matmuls"]["rel_error"] == pytest.approx(1) for run in per_step)
    assert "weight_shifted_matmuls: wrong on this host (relative error 1 against float64" in (
        capsys.readouterr().out)
