"""ConvLSTM training and inference throughput on one accelerator, against the textbook peer.

Measures, on one device and in one short run with a wall-clock limit, samples/s of

* the ``default`` and ``reference`` presets (linecube models), in float32 and bf16 autocast,
  eager and ``torch.compile``-d (whole model, plus ``fuse_gates``);
* the textbook PyTorch ConvLSTM (``peers/textbook_convlstm.py``: the reference workload with
  one convolution over [x, h] per step) in float32 and bf16, eager;

and the model-FLOP utilisation (MFU): FLOPs per second (``torch.utils.flop_counter`` of one
train step, forward + backward, or one inference forward, as executed by each implementation,
so linecube's skipped convolutions are not counted) divided by the measured bf16
matrix-product rate of the device. Results go to a JSON file.

Usage::

    python benchmarks/bench_gpu.py --out gpu.json                      # CUDA, 64x64, batch 64
    python benchmarks/bench_gpu.py --device cpu --quick --out cpu.json # smoke test on CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers.textbook_convlstm import TextbookAutoencoder  # noqa: E402

from linecube.models import build_model  # noqa: E402
from linecube.training.config import load_train_config  # noqa: E402

STEPS = 19


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, n: int, seconds: float) -> float:
    """Measured bf16 matrix-product rate in FLOP/s (best of repeated n x n x n products)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ a
    sync(device)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        sync(device)
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * n**3 / best


def count_flops(model: torch.nn.Module, forward, x: torch.Tensor, mode: str) -> int:
    """FLOPs (convolutions and matrix products) of one train step (forward + backward) or one
    inference forward of ``model`` on batch ``x``, as executed by this implementation."""
    with FlopCounterMode(display=False) as counter:
        if mode == "train":
            (forward(x).float() - x).square().mean().backward()
        else:
            with torch.no_grad():
                forward(x)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def measure(model, forward, x, dtype, mode: str, seconds: float, device) -> dict:
    """samples/s of train or inference steps for about ``seconds`` after a warm-up."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            if mode == "train":
                opt.zero_grad(set_to_none=True)
                (forward(x).float() - x).square().mean().backward()
                opt.step()
            else:
                with torch.no_grad():
                    forward(x)

    model.train(mode == "train")
    start = time.perf_counter()
    step()
    step()
    sync(device)
    warmup = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
        if n % 5 == 0 or n < 3:
            sync(device)
    sync(device)
    elapsed = time.perf_counter() - start
    out = {"samples_per_s": n * x.shape[0] / elapsed, "steps": n, "warmup_s": warmup}
    if device.type == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def linecube_model(preset: str, size: int, fuse: bool, device):
    cfg = load_train_config(preset).model.model_copy(update={"fuse_gates": fuse})
    torch.manual_seed(0)
    model = build_model(cfg, STEPS, size).to(device)
    return model, lambda x: model(x).recon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per case")
    parser.add_argument("--time-limit", type=float, default=480.0,
                        help="stop starting new cases after this many seconds")
    parser.add_argument("--presets", nargs="+", default=["reference", "default"])
    parser.add_argument("--variants", nargs="+", default=["eager", "compiled"],
                        choices=["eager", "compiled"])
    parser.add_argument("--modes", nargs="+", default=["train", "infer"],
                        choices=["train", "infer"])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 8x8 maps, batch 2, 0.2 s per case")
    parser.add_argument("--out", type=Path, required=True, help="JSON results")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.seconds = 8, 2, 0.2
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.perf_counter()
    results: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "size": args.size, "batch": args.batch,
        "matmul_bf16_flops": matmul_rate(device, 256 if args.quick else 8192,
                                         0.2 if args.quick else 3.0),
        "runs": [],
    }
    x = torch.rand(args.batch, STEPS, 1, args.size, args.size, device=device)

    # the peer first: every ratio needs it, and later cases may meet the time limit
    cases = [("textbook", "eager", None), ("textbook", "eager", torch.bfloat16)]
    for preset in args.presets:
        for variant in args.variants:
            for dtype in (None, torch.bfloat16):
                cases.append((preset, variant, dtype))

    for name, variant, dtype in cases:
        for mode in args.modes:
            run = {"model": name, "variant": variant, "mode": mode,
                   "dtype": "bf16" if dtype else "fp32"}
            if time.perf_counter() - t0 > args.time_limit:
                results["runs"].append(run | {"skipped": "time limit"})
                continue
            try:
                if name == "textbook":
                    ref, _ = linecube_model("reference", args.size, False, device)
                    peer = TextbookAutoencoder().to(device)
                    peer.copy_from(ref)
                    model, forward = peer, peer
                    counted = model, forward
                else:
                    model, forward = linecube_model(
                        name, args.size, variant == "compiled", device)
                    # FLOPs of an unfused copy: the compiled gate kernels cannot run under the
                    # FLOP counter's dispatch mode, and they hold no convolution or matmul
                    counted = ((model, forward) if variant == "eager"
                               else linecube_model(name, args.size, False, device))
                run["flops_per_sample"] = count_flops(*counted, x, mode) / args.batch
                if variant == "compiled":
                    forward = torch.compile(forward, dynamic=False)
                run |= measure(model, forward, x, dtype, mode, args.seconds, device)
                run["mfu"] = (run["samples_per_s"] * run["flops_per_sample"]
                              / results["matmul_bf16_flops"])
            except Exception as exc:  # record the failure, carry on with the other cases
                run["error"] = f"{type(exc).__name__}: {exc}"[:500]
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    peer = {(r["mode"], r["dtype"]): r for r in results["runs"]
            if r["model"] == "textbook" and "samples_per_s" in r}
    results["speedup_vs_textbook_fp32"] = {
        f"{r['model']}/{r['variant']}/{r['dtype']}/{r['mode']}":
            r["samples_per_s"] / peer[(r["mode"], "fp32")]["samples_per_s"]
        for r in results["runs"]
        if r["model"] != "textbook" and "samples_per_s" in r and (r["mode"], "fp32") in peer
    }
    results["wall_s"] = time.perf_counter() - t0
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["speedup_vs_textbook_fp32"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
