"""Forward, data-gradient and weight-gradient rates of the reference workload's 3x3 convolutions.

The backward convolutions are most of a ConvLSTM training step on CPU, and they run slower than
the forward. For each convolution shape of the ``reference`` workload (64x64, batch 8) this
measures, in float32 and bf16, channels-last:

* ``forward``, ``data`` and ``weight``: oneDNN's forward, data gradient and weight gradient, as
  the models use them (``torch.ops.aten.convolution_backward`` with one output asked for);
* ``data_as_forward``: the data gradient as a forward convolution of the gradient with the
  flipped, transposed weights;
* ``weight_chunks_K``: the weight gradient summed over chunks of K images;
* ``weight_shifted_matmuls``: the weight gradient as 9 matrix products of the zero-padded
  gradient with shifted views of the zero-padded input (no im2col copy);
* ``weight_as_forward``: the weight gradient as a forward convolution of the input, batch and
  channels swapped, with the gradient as a HxW kernel.

Freed memory is kept for reuse (:func:`linecube.models.allocator.retain_freed_memory`), as in
the models' benchmarks: otherwise every large output pays page faults (a fresh 318 MB output made
the batched 16->128 forward run at a third of its rate). Every case is checked against the same
computation in float64 from the same operands (``rel_error``: the norm-wise relative error,
against :func:`linecube.models.numerics.tolerance`). A case outside the tolerance is recorded as
``wrong_on_this_host`` (PyTorch computed it wrongly on this CPU: ``BENCHMARKS.md``, "A wrong bf16
convolution in PyTorch") and printed; for ``forward``, ``data`` and ``weight``, the computations
the models run, that is an error of the product, which the test suite reports. Rates in GFLOP/s
from the median of timed calls. Results go to a JSON file.

Usage::

    python benchmarks/bench_conv_grads.py --out conv_grads.json
    python benchmarks/bench_conv_grads.py --size 16 --calls 3 --out quick.json   # smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from linecube.models.allocator import retain_freed_memory
from linecube.models.numerics import relative_error, tolerance

THREADS = 2
# (name, Cin, Cout, images): the per-step hidden convolutions and the batched input
# convolutions (19 steps x batch 8) of the reference workload
SHAPES = (
    ("hidden 32->128", 32, 128, 8),
    ("hidden 16->64", 16, 64, 8),
    ("batched input 16->128", 16, 128, 152),
    ("batched input 32->64", 32, 64, 152),
)
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}
CHUNKS = (2, 4)


def median_ms(fn, calls: int) -> float:
    """Median wall time of ``fn()`` in ms over ``calls`` calls after 2 warm-up calls."""
    fn(), fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def backward(grad, x, weight, data: bool, weight_grad: bool):
    """oneDNN's data and/or weight gradient of a 3x3, stride-1, padding-1 convolution."""
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
        [data, weight_grad, False])


def weight_in_chunks(grad, x, weight, k: int):
    """Weight gradient (Cout, Cin, 3, 3) summed over chunks of k images."""
    total = None
    for g, xs in zip(grad.split(k), x.split(k), strict=True):
        part = backward(g, xs, weight, False, True)[1]
        total = part if total is None else total.add_(part)
    return total


def shifted_matmuls(grad, x):
    """Weight gradient as 9 matrix products over zero-padded (N, H+2, W+2, C) layouts.

    Returns a callable computing (Cout, Cin, 3, 3) from the padded copies made here once, so that
    only the products are timed.
    """
    n, c, h, w = x.shape
    rows, row = n * (h + 2) * (w + 2), w + 2
    g = torch.zeros(n, h + 2, w + 2, grad.shape[1], dtype=grad.dtype)
    g[:, 1:-1, 1:-1] = grad.permute(0, 2, 3, 1)
    xp = torch.zeros(rows + 2 * (row + 1), c, dtype=x.dtype)
    xp[row + 1:row + 1 + rows].view(n, h + 2, w + 2, c)[:, 1:-1, 1:-1] = x.permute(0, 2, 3, 1)
    g = g.view(rows, -1)

    def run():
        taps = [xp[row + 1 + dy * row + dx:][:rows].t() @ g
                for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        return torch.stack(taps).view(3, 3, c, -1).permute(3, 2, 0, 1)

    return run


def measure(name: str, cin: int, cout: int, images: int, size: int, dtype, calls: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(images, cin, size, size, generator=gen).to(dtype)
    grad = torch.randn(images, cout, size, size, generator=gen).to(dtype)
    x, grad = (t.contiguous(memory_format=torch.channels_last) for t in (x, grad))
    weight = (0.1 * torch.randn(cout, cin, 3, 3, generator=gen)).to(dtype)
    flipped = weight.flip(2, 3).transpose(0, 1).contiguous()
    gflop = 2 * images * size * size * cin * cout * 9 / 1e9
    x64, grad64, weight64 = (t.double() for t in (x, grad, weight))
    ref_data, ref_weight = backward(grad64, x64, weight64, True, True)[:2]
    refs = {"forward": (F.conv2d(x64, weight64, padding=1), cin * 9),
            "data": (ref_data, cout * 9), "weight": (ref_weight, images * size * size)}

    # case: (the computation, the product's computation it replaces)
    cases = {
        "forward": (lambda: F.conv2d(x, weight, padding=1), "forward"),
        "data": (lambda: backward(grad, x, weight, True, False)[0], "data"),
        "weight": (lambda: backward(grad, x, weight, False, True)[1], "weight"),
        "data_as_forward": (lambda: F.conv2d(grad, flipped, padding=1), "data"),
    }
    for k in CHUNKS:
        cases[f"weight_chunks_{k}"] = (lambda k=k: weight_in_chunks(grad, x, weight, k), "weight")
    if images <= 8:  # the slow formulations only on the per-step shapes
        cases["weight_shifted_matmuls"] = (shifted_matmuls(grad, x), "weight")
        xt, gt = x.transpose(0, 1).contiguous(), grad.transpose(0, 1).contiguous()
        cases["weight_as_forward"] = (
            lambda: F.conv2d(xt, gt, padding=1).transpose(0, 1), "weight")

    out = {"shape": name, "cin": cin, "cout": cout, "images": images, "gflop": gflop}
    for case, (fn, computes) in cases.items():
        ms = median_ms(fn, calls)
        ref, terms = refs[computes]
        error, tol = relative_error(fn(), ref), tolerance(dtype, terms)
        out[case] = {"ms": ms, "gflop_s": gflop / ms * 1e3, "rel_error": error,
                     "tolerance": tol, "wrong_on_this_host": not error <= tol}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="map size H = W")
    parser.add_argument("--calls", type=int, default=15, help="timed calls per case")
    parser.add_argument("--out", type=Path, required=True, help="JSON results")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    retain_freed_memory()
    results = {"torch": torch.__version__, "threads": THREADS, "size": args.size, "runs": []}
    for dtype_name, dtype in DTYPES.items():
        for shape in SHAPES:
            run = {"dtype": dtype_name} | measure(*shape, args.size, dtype, args.calls)
            results["runs"].append(run)
            cases = {k: v for k, v in run.items() if isinstance(v, dict)}
            rates = "  ".join(f"{k} {v['gflop_s']:.0f}" for k, v in cases.items())
            print(f"{dtype_name} {run['shape']} (GFLOP/s): {rates}", flush=True)
            for case, v in cases.items():
                if v["wrong_on_this_host"]:
                    print(f"  {case}: wrong on this host (relative error {v['rel_error']:.3g} "
                          f"against float64, tolerance {v['tolerance']:.2g})", flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
