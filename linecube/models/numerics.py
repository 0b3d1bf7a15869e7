"""The running host's convolutions checked against a higher-precision computation.

PyTorch's CPU convolutions dispatch to code chosen by the CPU's instruction set (oneDNN kernels
for AVX2, AVX-512, AVX512-BF16, AMX), and one such kernel has been seen to return a wrong bf16
result (``BENCHMARKS.md``, "A wrong bf16 convolution in PyTorch"). :func:`conv_errors` runs one
convolution shape in a given precision and in a reference precision from the same operands;
:func:`tolerance` bounds the difference a correct implementation can make;
:func:`check_bf16_convolutions` runs that check on a model's convolution shapes before bf16
training on a CPU and stops with :class:`~linecube.errors.NumericsError` if one is wrong.
"""

from __future__ import annotations

import functools
import math
import platform
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linecube.errors import NumericsError
from linecube.models.convlstm import ConvLSTMCell

__all__ = [
    "ConvShape", "check_bf16_convolutions", "conv_errors", "conv_shapes", "cpu_description",
    "relative_error", "tolerance", "unit_roundoff",
]

# the CPU's instruction-set extensions that select PyTorch's CPU kernels (x86-64, AArch64)
KERNEL_FLAGS = ("avx2", "fma", "avx512", "amx", "avx_vnni", "f16c", "asimd", "sve", "bf16", "i8mm")


def unit_roundoff(dtype: torch.dtype) -> float:
    """Unit roundoff u of ``dtype``: half its machine epsilon (2^-8 for bf16, 2^-24 float32)."""
    return torch.finfo(dtype).eps / 2


def tolerance(dtype: torch.dtype, terms: int) -> float:
    """The norm-wise relative error ``||y' - y|| / ||y||`` a correct ``dtype`` result may have.

    ``y'`` is computed in ``dtype`` and ``y`` in a higher precision from the same operands
    (already rounded to ``dtype``), so only the arithmetic differs. Each element of ``y`` is a
    sum of ``terms`` products (a convolution's reduction: ``C_in k^2`` for the forward,
    ``C_out k^2`` for the data gradient, ``N H W`` for the weight gradient) or a chain of about
    ``terms`` elementwise operations (gate kernels). Two errors add up:

    * the sum runs in a float32 accumulator (the products of two bf16 numbers are exact in
      float32, and every PyTorch CPU kernel accumulates bf16 in float32). With independent
      rounding errors its error has a standard deviation of at most ``sqrt(terms) u32`` times
      ``(sum_i (x_i w_i)^2)^(1/2)`` (Higham and Mary 2019, in any summation order), which for
      independent zero-mean operands is the expected magnitude of ``y`` itself: relative to
      ``||y||``, ``sqrt(terms) u32``;
    * the result is rounded to ``dtype``: at most ``u(dtype)`` relative to each element.

    Their sum is multiplied by 4: a few more roundings in ``dtype`` (a kernel that accumulates
    partial results of blocks, or of images, in its output precision) and a normalised deviation
    beyond 2 in a small tensor stay inside. That is 1.6% for bf16 and about ``2.4e-7 sqrt(terms)``
    for float32; a wrong kernel is off by the order of the result itself.
    """
    return 4 * (unit_roundoff(dtype) + math.sqrt(terms) * unit_roundoff(torch.float32))


def relative_error(got: Tensor, want: Tensor) -> float:
    """``||got - want|| / ||want||`` (Frobenius norms) computed in float64."""
    want = want.detach().double()
    return float((got.detach().double() - want).norm() / want.norm())


class ConvShape(NamedTuple):
    """A stride-1 square convolution: channels, kernel size, zero padding and groups."""

    in_channels: int
    out_channels: int
    kernel: int
    padding: int
    groups: int = 1


def conv_shapes(model: nn.Module) -> tuple[ConvShape, ...]:
    """Every distinct convolution of ``model`` (``nn.Conv2d`` modules and the input and hidden
    convolutions of ConvLSTM cells), sorted."""
    shapes = set()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            out, cin_per_group, k, _ = module.weight.shape
            shapes.add(ConvShape(cin_per_group * module.groups, out, k, module.padding[0],
                                 module.groups))
        elif isinstance(module, ConvLSTMCell):
            for weight in (module.weight_x, module.weight_h):
                if weight is not None:
                    out, cin, k, _ = weight.shape
                    shapes.add(ConvShape(cin, out, k, module.padding))
    return tuple(sorted(shapes))


def conv_errors(shape: ConvShape, dtype: torch.dtype, reference: torch.dtype,
                images: int = 2, size: int = 8, seed: int = 0) -> dict[str, tuple[float, int]]:
    """Errors of one convolution in ``dtype`` against ``reference``, from the same operands.

    Runs the forward, the data gradient and the weight gradient as the models run them
    (channels-last, ``F.conv2d`` and ``aten.convolution_backward``) on ``images`` random
    ``size`` x ``size`` images rounded to ``dtype``, and again in ``reference``.

    Returns:
        ``{"forward" | "data" | "weight": (relative_error, terms)}``: the norm-wise relative
        error and the reduction length to give :func:`tolerance`.
    """
    gen = torch.Generator().manual_seed(seed)
    cin, cout, k, pad, groups = shape
    per_group = cin // groups
    out_size = size + 2 * pad - k + 1
    operands = (torch.randn(images, cin, size, size, generator=gen),
                torch.randn(cout, per_group, k, k, generator=gen) / math.sqrt(per_group * k * k),
                torch.randn(images, cout, out_size, out_size, generator=gen))
    results = []
    for dt in (dtype, reference):
        x, w, g = (t.to(dtype).to(dt).contiguous(memory_format=torch.channels_last)
                   for t in operands)
        d_x, d_w, _ = torch.ops.aten.convolution_backward(
            g, x, w, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], groups,
            [True, True, False])
        results.append((F.conv2d(x, w, padding=pad, groups=groups), d_x, d_w))
    terms = (per_group * k * k, cout // groups * k * k, images * out_size * out_size)
    return {name: (relative_error(got, want), n) for name, got, want, n in zip(
        ("forward", "data", "weight"), *results, terms, strict=True)}


def cpu_description() -> str:
    """The CPU's model and the instruction-set flags that select PyTorch's kernels."""
    flags, model = [], platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = [f for f in value.split() if f.startswith(KERNEL_FLAGS)]
                break
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{model}, PyTorch CPU capability {capability}, flags: {' '.join(flags) or 'unknown'}"


@functools.cache
def _bf16_failures(shapes: tuple[ConvShape, ...]) -> tuple[str, ...]:
    """Descriptions of the bf16 computations of ``shapes`` that disagree with float32."""
    failures = []
    for shape in shapes:
        for name, (error, terms) in conv_errors(shape, torch.bfloat16, torch.float32).items():
            if not error <= tolerance(torch.bfloat16, terms):  # NaN fails too
                grouped = f" in {shape.groups} groups" if shape.groups > 1 else ""
                failures.append(f"{shape.in_channels}->{shape.out_channels} "
                                f"{shape.kernel}x{shape.kernel}{grouped} {name}: relative error "
                                f"{error:.3g} (tolerance {tolerance(torch.bfloat16, terms):.2g})")
    return tuple(failures)


def check_bf16_convolutions(model: nn.Module) -> None:
    """Check that this host computes ``model``'s convolutions in bf16 correctly.

    Each distinct shape runs its forward, data and weight gradient in bf16 on two 8x8 images
    against float32 (a few milliseconds for a model; the result is cached per process).

    Raises:
        NumericsError: a bf16 result is wrong on this host; names the shape, the PyTorch
            version and the CPU, and says how to continue in float32.
    """
    failures = _bf16_failures(conv_shapes(model))
    if failures:
        raise NumericsError(
            f"PyTorch {torch.__version__} computes bf16 convolutions wrongly on this CPU "
            f"({cpu_description()}): {'; '.join(failures)}. Train in float32 instead: "
            "set trainer.precision = \"32\"")
