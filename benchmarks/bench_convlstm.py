"""The ``reference`` ConvLSTM workload: linecube against its peers, side by side in one run.

Workload (peers.md §3): 19 single-channel maps of HxW; encoder ConvLSTM 1->32->16 (3x3);
latent = last hidden state of the top layer; decoder = latent repeated 19 steps -> ConvLSTM
16->16 -> 16->32 -> 1x1 conv per step; MSE loss, Adam lr 1e-3, batch 8, 139,809 parameters.

Implementations (each measurement in its own subprocess, so its peak RSS is its own):

* ``linecube``: :func:`linecube.models.build_model` of the reference config, float32, eager,
  with :func:`linecube.models.allocator.retain_freed_memory`;
* ``linecube-fused``: the same with ``fuse_gates = true`` (gate arithmetic through torch.compile);
* ``linecube-bf16`` / ``linecube-bf16-fused``: the same under ``torch.autocast(bfloat16)``;
* ``textbook``: one convolution over [x, h] per step, Python loop (``peers/textbook_convlstm.py``);
* ``textbook-malloc``: the textbook peer with the same allocator setting as linecube (shows how
  much of the gap the allocator alone closes);
* ``keras``: Keras 3 ``ConvLSTM2D`` on TensorFlow (``peers/keras_convlstm.py``; optional extra).

PyTorch workers keep OpenMP's default wait policy (spin briefly, then sleep), as users get it;
on a loaded machine pass ``--omp-wait-policy PASSIVE``: there, OpenMP threads that spin while
waiting for a descheduled partner made every PyTorch implementation (ours and the textbook peer
alike) several times slower, which TensorFlow's thread pool is not.

Every implementation starts from the same weights (copied from the linecube model) and the same
batch; peers are checked to compute the same function (max |difference| of the outputs), and the
training loss after the same steps is reported (bf16 against float32). Also measured in the same
run: this CPU's 3x3 convolution and matrix-product rates (the best single call in 1.5 s of
back-to-back calls, and the mean rate over those calls, as sustained in a training step), and
the fraction of the best convolution and matrix-product rates each implementation achieves
(model FLOPs: convolutions only, 2 per multiply-accumulate, per layer
``T*2*k^2*(Cin+F)*4F*H*W``; training counts 3x the forward FLOPs).

Usage::

    python benchmarks/bench_convlstm.py --out bench_convlstm.json
    python benchmarks/bench_convlstm.py --rounds 3 --out bench_convlstm.json  # alternate 3x
    python benchmarks/bench_convlstm.py --sizes 32 --impls linecube textbook --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STEPS, BATCH, THREADS = 19, 8, 2
IMPLS = ("linecube", "linecube-fused", "linecube-bf16", "linecube-bf16-fused", "textbook",
         "textbook-malloc", "keras")
# (Cin, F) of the four ConvLSTM layers of the reference workload
LAYERS = ((1, 32), (32, 16), (16, 16), (16, 32))


def forward_flops(size: int) -> float:
    """Convolution FLOPs of one forward pass of one sample (peers.md §3 formula + 1x1 head)."""
    convlstm = sum(STEPS * 2 * 9 * (cin + f) * 4 * f * size * size for cin, f in LAYERS)
    return convlstm + STEPS * 2 * 32 * size * size


def make_batch(size: int) -> np.ndarray:
    """A fixed (B, T, 1, H, W) float32 batch: per-line ratios times a noisy exponential disc."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    disc = np.exp(-np.hypot(yy, xx) / (size / 6))
    x = rng.uniform(0.1, 1.0, (BATCH, STEPS, 1, 1, 1)) * disc
    return (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)


def reference_model(size: int, fuse: bool = False):
    """The linecube reference model, seeded."""
    import torch

    from linecube.models import ModelConfig, build_model

    torch.manual_seed(0)
    cfg = ModelConfig(stem_channels=0, hidden=[32, 16], kernel_size=3, downsample=None,
                      latent="spatial", latent_dim=None, head_kernel=1, fuse_gates=fuse)
    return build_model(cfg, STEPS, size)


# --------------------------------------------------------------------------- workers


def time_steps(step, warmup: int, timed: int) -> dict:
    """Run ``step`` warmup + timed times: median and best seconds per timed step, every loss."""
    losses = [step() for _ in range(warmup)]
    seconds = []
    for _ in range(timed):
        start = time.perf_counter()
        losses.append(step())
        seconds.append(time.perf_counter() - start)
    return {"seconds_per_step": float(np.median(seconds)), "best_seconds_per_step": min(seconds),
            "losses": losses}


def torch_worker(impl: str, size: int, mode: str, warmup: int, timed: int, ref: dict) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    from linecube.models.allocator import retain_freed_memory

    if impl != "textbook":
        retain_freed_memory()
    ours = reference_model(size, fuse=impl.endswith("fused"))
    if impl.startswith("textbook"):
        sys.path.insert(0, str(HERE))
        from peers.textbook_convlstm import TextbookAutoencoder

        model = TextbookAutoencoder()
        model.copy_from(ours)
        del ours
        forward = model
    else:
        model = ours

        def forward(x):
            return model(x).recon

    dtype = torch.bfloat16 if "bf16" in impl else None
    x = torch.from_numpy(make_batch(size))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out: dict = {}
    with torch.inference_mode():
        model.eval()
        out["max_abs_diff"] = float((forward(x) - torch.from_numpy(ref["recon"])).abs().max())
        model.train()

    def autocast():
        return torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = (forward(x).float() - x).square().mean()
        loss.backward()
        opt.step()
        return loss.item()

    def infer_step():
        with torch.inference_mode(), autocast():
            return float((forward(x).float() - x).square().mean())

    if mode == "infer":
        model.eval()
    return out | time_steps(train_step if mode == "train" else infer_step, warmup, timed)


def keras_worker(size: int, mode: str, warmup: int, timed: int, ref: dict) -> dict:
    sys.path.insert(0, str(HERE))
    from peers.keras_convlstm import build

    model = build(STEPS, size, THREADS)
    model.set_weights([ref[f"keras_{i}"] for i in range(len(model.get_weights()))])
    x = make_batch(size).transpose(0, 1, 3, 4, 2).copy()  # (B, T, H, W, 1)
    recon = np.asarray(model.predict_on_batch(x)).transpose(0, 1, 4, 2, 3)
    out = {"max_abs_diff": float(np.abs(recon - ref["recon"]).max())}

    def train_step():
        return float(np.asarray(model.train_on_batch(x, x)).ravel()[0])

    def infer_step():
        return float(np.mean((np.asarray(model.predict_on_batch(x)) - x) ** 2))

    return out | time_steps(train_step if mode == "train" else infer_step, warmup, timed)


def rates_worker() -> dict:
    """Measured 3x3 convolution (32->128 at 64x64, batch 8, channels-last) and 2048^3 matrix
    product rates of this CPU in GFLOP/s, float32 and bfloat16, with 2 threads."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    from linecube.models.allocator import retain_freed_memory

    retain_freed_memory()

    def rates(fn, flops, seconds=1.5):
        """(best single call, mean over back-to-back calls for ``seconds``) in GFLOP/s."""
        for _ in range(3):
            fn()
        times = []
        while sum(times) < seconds:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flops / min(times) / 1e9, len(times) * flops / sum(times) / 1e9

    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        cl = torch.channels_last
        x = torch.randn(8, 32, 64, 64, dtype=dtype).contiguous(memory_format=cl)
        w = torch.randn(128, 32, 3, 3, dtype=dtype).contiguous(memory_format=cl)
        out[f"conv_{name}"], out[f"sustained_conv_{name}"] = rates(
            lambda x=x, w=w: F.conv2d(x, w, padding=1), 2 * 9 * 32 * 128 * 64 * 64 * 8)
        a = torch.randn(2048, 2048, dtype=dtype)
        out[f"matmul_{name}"], out[f"sustained_matmul_{name}"] = rates(
            lambda a=a: a @ a, 2 * 2048**3)
    return out


def worker_main(args) -> None:
    ref = dict(np.load(args.ref)) if args.ref else {}
    if args.worker == "rates":
        result = rates_worker()
    elif args.worker == "keras":
        result = keras_worker(args.sizes[0], args.mode, args.warmup, args.timed, ref)
    else:
        result = torch_worker(args.worker, args.sizes[0], args.mode, args.warmup, args.timed, ref)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# --------------------------------------------------------------------------- driver


def run_worker(name: str, extra: list[str], timeout: float, wait_policy: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *extra]
    env = os.environ | {"OMP_NUM_THREADS": str(THREADS), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if wait_policy != "default":
        env["OMP_WAIT_POLICY"] = wait_policy
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " | ".join(tail) or f"exit code {proc.returncode}"}


def write_reference(size: int, path: Path) -> None:
    """Save the reference model's output on the batch, and its weights in Keras layout."""
    import torch

    model = reference_model(size).eval()
    with torch.inference_mode():
        recon = model(torch.from_numpy(make_batch(size))).recon.numpy()
    arrays = {"recon": recon}
    sys.path.insert(0, str(HERE))
    from peers.keras_convlstm import keras_weights

    arrays |= {f"keras_{i}": w for i, w in enumerate(keras_weights(model))}
    np.savez(path, **arrays)


def keras_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras"))


def combine_rounds(rounds: list[dict], flops: float, rates: dict[str, float | None]) -> dict:
    """One implementation's measurement over its rounds: the median of the rounds' median
    steps, the best step of all, the largest peak memory, and the fraction of each of the
    CPU's ``rates`` (GFLOP/s, e.g. ``{"conv": 500, "matmul": 200}``) that its median step
    achieves; the rounds themselves under ``rounds`` (with ``error`` when every round
    failed)."""
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return {"error": rounds[-1]["error"], "rounds": rounds}
    seconds = float(np.median([r["seconds_per_step"] for r in ok]))
    best = min(r["best_seconds_per_step"] for r in ok)
    gflops = BATCH / seconds * flops / 1e9
    return {
        "seconds_per_step": seconds, "best_seconds_per_step": best,
        "samples_per_s": BATCH / seconds, "best_samples_per_s": BATCH / best,
        "gflops": gflops,
        **{f"fraction_of_{k}": gflops / v if v else None for k, v in rates.items()},
        "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
        "max_abs_diff": max(r["max_abs_diff"] for r in ok),
        "losses": ok[0]["losses"],
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--modes", nargs="+", default=["train", "infer"],
                        choices=["train", "infer"])
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 2 timed steps")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every implementation this many times, alternating them "
                             "round by round; report the median round (the spread of the ratios "
                             "over the rounds shows the machine's noise)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--out", type=Path, help="write all results as JSON here")
    parser.add_argument("--omp-wait-policy", default="default",
                        choices=["default", "PASSIVE", "ACTIVE"],
                        help="OpenMP threads of the PyTorch workers spin briefly, then sleep "
                             "(default, what users get), sleep at once (PASSIVE: use on a "
                             "loaded machine, where spinning collapses) or spin (ACTIVE)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0

    impls = [i for i in args.impls if i != "keras" or keras_available()]
    if "keras" in args.impls and "keras" not in impls:
        print("keras: tensorflow/keras not installed (pip install 'linecube[tensorflow]'); skipped")
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f}")
    results: dict = {"load_average_start": load, "omp_wait_policy": args.omp_wait_policy,
                     "rates": run_worker("rates", [], args.timeout, args.omp_wait_policy),
                     "runs": []}
    print("CPU rates (GFLOP/s):", json.dumps(results["rates"]))
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            ref = Path(tmp) / f"ref{size}.npz"
            write_reference(size, ref)
            warmup, timed = (1, 2) if args.quick else ((2, 3) if size >= 64 else (2, 5))
            extra = ["--sizes", str(size), "--warmup", str(warmup), "--timed", str(timed),
                     "--ref", str(ref)]
            for mode in args.modes:
                rounds: dict[str, list[dict]] = {impl: [] for impl in impls}
                for _ in range(args.rounds):  # the implementations alternate, round by round
                    for impl in impls:
                        rounds[impl].append(run_worker(
                            impl, [*extra, "--mode", mode], args.timeout, args.omp_wait_policy))
                        print(json.dumps({"impl": impl, "size": size, "mode": mode} | {
                            k: v for k, v in rounds[impl][-1].items() if k != "losses"}),
                            flush=True)
                for impl in impls:
                    results["runs"].append(
                        {"impl": impl, "size": size, "mode": mode}
                        | combine_rounds(
                            rounds[impl], forward_flops(size) * (3 if mode == "train" else 1),
                            {k: results["rates"].get(
                                f"{k}_{'bfloat16' if 'bf16' in impl else 'float32'}")
                             for k in ("conv", "matmul")}))
                if args.out:  # partial results survive an interrupted run
                    args.out.write_text(json.dumps(results, indent=1))
    results["load_average_end"] = os.getloadavg()[0]
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


def report(results: dict) -> str:
    """Markdown tables: throughput, ratios to the peers, loss agreement."""
    runs = {(r["impl"], r["size"], r["mode"]): r for r in results["runs"]}
    rates = results["rates"]
    lines = [
        "CPU: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()
                            if k.startswith(("conv", "matmul", "sustained"))),
        "",
        "| impl | H=W | mode | samples/s (median) | best | GFLOP/s | of conv peak | "
        "of matmul peak | peak RSS MB | max abs diff vs linecube | final loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (impl, size, mode), r in runs.items():
        if "error" in r:
            lines.append(f"| {impl} | {size} | {mode} | error: {r['error']} | | | | | | | |")
            continue
        frac = " | ".join(f"{r[k]:.0%}" if r.get(k) else "-"
                          for k in ("fraction_of_conv", "fraction_of_matmul"))
        lines.append(
            f"| {impl} | {size} | {mode} | {r['samples_per_s']:.2f} | "
            f"{r['best_samples_per_s']:.2f} | {r['gflops']:.0f} | "
            f"{frac} | {r['peak_rss_mb']:.0f} | {r['max_abs_diff']:.1e} | "
            f"{r['losses'][-1]:.6f} |")
    lines += ["", "| ours | peer | H=W | mode | ratio (median) | ratio (best step) | "
              "ratio in each round |", "|---|---|---|---|---|---|---|"]
    for (impl, size, mode), r in runs.items():
        if not impl.startswith("linecube") or "error" in r:
            continue
        for peer in ("keras", "textbook", "textbook-malloc"):
            p = runs.get((peer, size, mode))
            if p and "error" not in p:
                ratio = r["samples_per_s"] / p["samples_per_s"]
                best = r["best_samples_per_s"] / p["best_samples_per_s"]
                each = ", ".join(
                    f"{b['seconds_per_step'] / a['seconds_per_step']:.2f}x"
                    for a, b in zip(r["rounds"], p["rounds"], strict=True)
                    if "error" not in a | b)
                lines.append(f"| {impl} | {peer} | {size} | {mode} | {ratio:.2f}x | {best:.2f}x "
                             f"| {each} |")
    lines += ["", "| bf16 impl | H=W | final train loss | float32 loss | relative difference |",
              "|---|---|---|---|---|"]
    for (impl, size, mode), r in runs.items():
        base = runs.get((impl.replace("-bf16", ""), size, mode))
        if "bf16" in impl and mode == "train" and base and "error" not in r | base:
            a, b = r["losses"][-1], base["losses"][-1]
            lines.append(f"| {impl} | {size} | {a:.6f} | {b:.6f} | {abs(a - b) / b:.2%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
