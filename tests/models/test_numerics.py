"""The convolutions and gate kernels that the presets select, against float64 on this host.

PyTorch's CPU kernels depend on the CPU's instruction set (AVX2, AVX-512, AVX512-BF16, AMX):
where PyTorch computes one of the models' computations wrongly on the host running the suite,
these tests fail, naming it. Every preset is covered in float32 and in bf16 (any preset trains
in bf16 with ``trainer.precision = "bf16-mixed"``), channels-last as the models run. Operands
are rounded to the dtype under test, so the float64 reference sees the same numbers; tolerances
come from :func:`linecube.models.numerics.tolerance`.
"""

import pytest
import torch

from linecube.errors import NumericsError
from linecube.models import ModelConfig, build_model, numerics
from linecube.models.gates import (
    GateInputs,
    fused_pointwise,
    fused_step,
    lstm_pointwise,
    lstm_step,
)
from linecube.models.numerics import (
    ConvShape,
    check_bf16_convolutions,
    conv_errors,
    conv_shapes,
    relative_error,
    tolerance,
)
from linecube.training.config import PRESETS, load_train_config

DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}
MODELS = {name: load_train_config(name).model for name in PRESETS}
# the most operations between a gate kernel's inputs and any of its outputs, forward or backward
GATE_OPERATIONS = 32


def _failures(shapes, dtype, **sizes) -> list[str]:
    failures = []
    for shape in shapes:
        for name, (error, terms) in conv_errors(shape, dtype, torch.float64, **sizes).items():
            if not error <= tolerance(dtype, terms):
                failures.append(f"{shape} {name}: {error:.3g} > {tolerance(dtype, terms):.2g}")
    return failures


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_convolutions_agree_with_float64(preset, dtype):
    """Forward, data and weight gradient of every convolution of the preset's model, at the
    size of the startup check (8x8) and at a map size of 32."""
    shapes = conv_shapes(build_model(MODELS[preset], n_lines=19, size=32))
    assert {s.kernel for s in shapes} >= {MODELS[preset].kernel_size, MODELS[preset].head_kernel}
    failures = (_failures(shapes, dtype, images=2, size=8)
                + _failures(shapes, dtype, images=4, size=32))
    assert not failures, f"PyTorch {torch.__version__} on this CPU: {failures}"


def test_tolerance_separates_rounding_from_a_wrong_result():
    assert tolerance(torch.bfloat16, 1) == pytest.approx(4 * (2**-8 + 2**-24))
    assert tolerance(torch.float32, 100) == pytest.approx(4 * 11 * 2**-24)
    # a kernel off by the size of its result fails in every dtype; a bf16 rounding passes
    assert tolerance(torch.float32, 10**6) < tolerance(torch.bfloat16, 10**6) < 0.05
    x = torch.randn(1000, dtype=torch.float64)
    assert relative_error(x.bfloat16(), x) < tolerance(torch.bfloat16, 1)
    assert relative_error(x.float(), x) < tolerance(torch.float32, 1)


def _gate_inputs(dtype: torch.dtype, x_gates: bool, grad: bool):
    """Gates and x_gates (2, 4F, 8, 8) in ``dtype``, c (2, F, 8, 8) float32, channels-last, as
    the ConvLSTM layers pass them (bf16 autocast: low-precision gates, float32 cell state)."""
    gen = torch.Generator().manual_seed(0)
    f = 8

    def make(channels, dt):
        t = torch.randn(2, channels, 8, 8, generator=gen).to(dt)
        return t.contiguous(memory_format=torch.channels_last).requires_grad_(grad)

    gates, c = make(4 * f, dtype), make(f, torch.float32)
    return gates, c, make(4 * f, dtype) if x_gates else None


def _gate_reference(gates, c, x_gates, dh, dc):
    """Outputs (h, c) and the gradients of (gates, c, x_gates) in float64 from the same values."""
    leaves = [None if t is None else t.detach().double().requires_grad_() for t in
              (gates, c, x_gates)]
    h, c_new = lstm_pointwise(GateInputs(leaves[0], leaves[1], x_gates=leaves[2]))
    torch.autograd.backward((h, c_new), (dh.double(), dc.double()))
    return (h, c_new), [None if t is None else t.grad for t in leaves]


@pytest.mark.parametrize("x_gates", [True, False], ids=["step", "first-step"])
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES)
@pytest.mark.parametrize("fuse", sorted({cfg.fuse_gates for cfg in MODELS.values()}),
                         ids=lambda fuse: "fused" if fuse else "eager")
def test_preset_gate_kernels_agree_with_float64(fuse, dtype, x_gates):
    """The gate arithmetic in training (outputs and gradients) and in inference (the kernel
    that writes h into the output sequence, and the one that returns it)."""
    tol_h, tol_c = tolerance(dtype, GATE_OPERATIONS), tolerance(torch.float32, GATE_OPERATIONS)
    gates, c, xg = _gate_inputs(dtype, x_gates, grad=True)
    dh, dc = torch.randn_like(c).to(dtype), torch.randn_like(c)
    (ref_h, ref_c), ref_grads = _gate_reference(gates, c, xg, dh, dc)
    pointwise, step = (fused_pointwise, fused_step) if fuse else (lstm_pointwise, lstm_step)

    inputs = GateInputs(gates, c, x_gates=xg)
    h, c_new = pointwise(inputs)
    torch.autograd.backward((h, c_new), (dh, dc))
    assert h.dtype == dtype and c_new.dtype == torch.float32
    errors = {"h": (relative_error(h, ref_h), tol_h), "c": (relative_error(c_new, ref_c), tol_c)}
    # the gradients come from values saved in the gates' precision (h, and dh/dc when fused)
    for name, leaf, ref in zip(("d_gates", "d_c", "d_x_gates"), (gates, c, xg), ref_grads,
                               strict=True):
        if leaf is not None:
            errors[name] = (relative_error(leaf.grad, ref), tol_h)

    with torch.no_grad():
        h, c_new = pointwise(inputs)
        out = torch.empty_like(h)
        c_step = step(out, inputs)
    errors |= {"inference h": (relative_error(h, ref_h), tol_h),
               "inference c": (relative_error(c_new, ref_c), tol_c),
               "step h": (relative_error(out, ref_h), tol_h),
               "step c": (relative_error(c_step, ref_c), tol_c)}
    wrong = {k: v for k, v in errors.items() if not v[0] <= v[1]}
    assert not wrong, f"PyTorch {torch.__version__} on this CPU: {wrong}"


@pytest.fixture
def fresh_check():
    """The startup check's per-process cache emptied before and after the test."""
    numerics._bf16_failures.cache_clear()
    yield
    numerics._bf16_failures.cache_clear()


def test_startup_check_passes_and_runs_once_per_process(fresh_check):
    model = build_model(MODELS["paper"], n_lines=19, size=32)
    check_bf16_convolutions(model)
    check_bf16_convolutions(build_model(MODELS["paper"], n_lines=3, size=16))
    info = numerics._bf16_failures.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_startup_check_names_the_wrong_convolution_torch_and_cpu(fresh_check, monkeypatch):
    conv2d = numerics.F.conv2d

    def wrong_in_bf16(x, weight, *args, **kwargs):
        y = conv2d(x, weight, *args, **kwargs)
        return y.flip(0) if x.dtype == torch.bfloat16 else y

    monkeypatch.setattr(numerics.F, "conv2d", wrong_in_bf16)
    model = build_model(MODELS["demo"], n_lines=3, size=16)
    with pytest.raises(NumericsError) as info:
        check_bf16_convolutions(model)
    message = str(info.value)
    assert f"PyTorch {torch.__version__}" in message and "\n" not in message
    assert f"CPU capability {torch.backends.cpu.get_cpu_capability()}" in message
    assert "flags: " in message and 'trainer.precision = "32"' in message
    assert "4->16 3x3 forward: relative error" in message and "data:" not in message
    assert ConvShape(4, 16, 3, 1) in conv_shapes(model)


def test_a_grouped_convolution_is_checked_as_it_runs():
    """The per-line output head is a grouped convolution: its shape keeps the groups, and the
    check computes it grouped (a wrong grouped kernel would not be caught as an ungrouped one)."""
    model = build_model(ModelConfig(hidden=[4], head="per_line", head_kernel=3), 5, 8)
    head = ConvShape(5 * 4, 5, 3, 1, 5)
    assert head in conv_shapes(model)
    errors = conv_errors(head, torch.float32, torch.float64)
    assert all(error <= tolerance(torch.float32, terms) for error, terms in errors.values())
    assert errors["forward"][1] == 4 * 3 * 3  # terms of one group's reduction
