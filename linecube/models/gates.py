"""The LSTM gate arithmetic of a ConvLSTM step, and its compiled kernels.

Once the convolutions have produced the gate pre-activations, the rest of a step is elementwise:
:func:`lstm_pointwise` is that function in plain PyTorch, on a :class:`GateInputs`.
With ``fuse_gates = true`` the layers call :func:`fused_pointwise` and :func:`fused_step`,
which run the same function through ``torch.compile``: one kernel reads the pre-activations
once and writes h and c, instead of a pass per operation that materialises every gate tensor.

The compiled kernels compute the activations in forms that vectorise cheaply on CPUs
(:data:`SIGMOID_FORMS`, :data:`EXP2_FORMS`). Under bf16 autocast with autograd, the backward
kernel is written out (:func:`lstm_pointwise_backward`, :class:`_LowPrecisionGates`) instead of
derived by the compiler; see their docstrings for why.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import Tensor

from linecube.errors import ConfigError

__all__ = [
    "EXP2_FORMS", "SIGMOID_FORMS", "GateInputs", "exp2_sigmoid", "exp2_tanh", "fused_pointwise",
    "fused_step", "lstm_pointwise", "lstm_pointwise_backward", "lstm_pointwise_with_derivatives",
    "lstm_step", "sigmoid_tanh",
]

State = tuple[Tensor, Tensor]


class GateInputs(NamedTuple):
    """What the gate arithmetic of one step reads.

    Attributes:
        gates: pre-activations ``(B, 4F, H, W)`` in the order i, f, g, o.
        c: previous cell state ``(B, F, H, W)``.
        w_ci, w_cf, w_co: peephole weights ``(F, H, W)``, or None for no peepholes.
        x_gates: input-gate term added to ``gates`` (same shape, or broadcastable), or None; the
            fused kernel adds it on the fly instead of in a separate pass.
    """

    gates: Tensor
    c: Tensor
    w_ci: Tensor | None = None
    w_cf: Tensor | None = None
    w_co: Tensor | None = None
    x_gates: Tensor | None = None


def lstm_pointwise(inputs: GateInputs, *, sigmoid=torch.sigmoid, tanh=torch.tanh) -> State:
    """LSTM gate arithmetic after the convolutions.

    Args:
        inputs: the step's pre-activations, cell state and peepholes.
        sigmoid, tanh: the activation functions (the compiled kernels pass faster forms of the
            same functions: :data:`SIGMOID_FORMS`, :data:`EXP2_FORMS`).

    Returns:
        ``(h, c)``, each ``(B, F, H, W)``: h in the precision of ``gates`` (bf16 under autocast,
        which the next convolution reads anyway), c in the precision of ``c``. The arithmetic
        runs in the precision of ``c`` (float32 under autocast): the cell state is a running
        sum over the steps, which bf16 rounding would bias.
    """
    *_, o, c, tc = _gate_values(inputs, sigmoid, tanh)
    return (o * tc).to(inputs.gates.dtype), c


def _gate_values(inputs: GateInputs, sigmoid, tanh) -> tuple[Tensor, ...]:
    """``(i, f, g, o, c_new, tanh(c_new))`` of :func:`lstm_pointwise` (same arguments), each
    ``(B, F, H, W)`` in the precision of ``c``."""
    gates, c, w_ci, w_cf, w_co, x_gates = inputs
    s = gates.to(c.dtype)
    if x_gates is not None:
        s = s + x_gates.to(c.dtype)
    i, f, g, o = s.chunk(4, dim=1)
    if w_ci is not None:
        i = i + w_ci * c
        f = f + w_cf * c
    i, f, g = sigmoid(i), sigmoid(f), tanh(g)
    c = torch.addcmul(f * c, i, g)
    if w_co is not None:
        o = o + w_co * c
    return i, f, g, sigmoid(o), c, tanh(c)


def lstm_pointwise_with_derivatives(
    inputs: GateInputs, *, sigmoid=torch.sigmoid, tanh=torch.tanh
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`lstm_pointwise` that also returns dh/dc for its backward.

    Returns:
        ``(h, c, q)``: h and c as :func:`lstm_pointwise`; ``q = o (1 - tanh(c)^2)`` in the
        precision of ``gates``. Saved in low precision, q is accurate to its rounding, where
        ``1 - tanh(c)^2`` recomputed from a rounded tanh(c) is not (it cancels as tanh(c)
        nears 1).
    """
    i, f, g, o, c_new, _ = _gate_values(inputs, sigmoid, tanh)
    # tanh of c_new recomputed from an expression the compiler does not share with the stored
    # float32 c_new: a tanh read back from that buffer alone makes the compiler vectorise the
    # whole kernel at float32 width, with half-width bf16 loads and stores
    tc = tanh(f * inputs.c + i * g)
    dtype = inputs.gates.dtype
    return (o * tc).to(dtype), c_new, (o * (1 - tc * tc)).to(dtype)


def lstm_pointwise_backward(
    inputs: GateInputs,
    q: Tensor,
    h: Tensor,
    dh: Tensor | None,
    dc: Tensor | None,
    *,
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of :func:`lstm_pointwise`, recomputing the gates from the pre-activations.

    Args:
        inputs, sigmoid, tanh: the inputs of :func:`lstm_pointwise`.
        q: dh/dc saved by :func:`lstm_pointwise_with_derivatives`.
        h: its output h, from which dh by o's pre-activation, ``h (1 - o)``, is recomputed.
        dh, dc: gradients of its outputs h and c (None: the output was not used).

    Returns:
        ``(d_gates, d_c, d_w_ci, d_w_cf, d_w_co)``: d_gates ``(B, 4F, H, W)`` in the precision
        of ``gates`` (also the gradient of ``x_gates`` before any broadcast reduction), d_c in
        the precision of ``c``, the peephole gradients (F, H, W) summed over the batch or None.
    """
    gates, c, w_ci, w_cf, w_co, _ = inputs
    i, f, g, o, c_new, _ = _gate_values(inputs, sigmoid, tanh)
    q, r = q.to(c.dtype), h.to(c.dtype) * (1 - o)
    dct = torch.zeros_like(c) if dc is None else dc.to(c.dtype)
    ds_o = torch.zeros_like(c)
    if dh is not None:
        dh = dh.to(c.dtype)
        ds_o = dh * r
        dct = dct + dh * q
    if w_co is not None:
        dct = dct + ds_o * w_co
    ds_i = dct * g * i * (1 - i)
    ds_f = dct * c * f * (1 - f)
    ds_g = dct * i * (1 - g * g)
    d_c = dct * f
    d_w = (None, None, None)
    if w_ci is not None:
        d_c = d_c + ds_i * w_ci + ds_f * w_cf
        d_w = ((ds_i * c).sum(0), (ds_f * c).sum(0), (ds_o * c_new).sum(0))
    # each piece is cast before concatenation: one pass writes the gradient in gates' precision
    d_gates = torch.cat([d.to(gates.dtype) for d in (ds_i, ds_f, ds_g, ds_o)], dim=1)
    return (d_gates, d_c, *d_w)


def lstm_step(h_out: Tensor, inputs: GateInputs, *, sigmoid=torch.sigmoid,
              tanh=torch.tanh) -> Tensor:
    """:func:`lstm_pointwise` storing h into ``h_out`` (B, F, H, W), a step of a preallocated
    sequence (compiled, the kernel writes it there directly); returns the new c."""
    h, c = lstm_pointwise(inputs, sigmoid=sigmoid, tanh=tanh)
    h_out.copy_(h)
    return c


@functools.cache
def _compiled(fn, exp2: bool):
    """``fn`` through ``torch.compile``, with the activations of :data:`EXP2_FORMS` (``exp2``:
    for kernels no autograd runs through) or :data:`SIGMOID_FORMS`."""
    # One compiled function serves every layer: each (shape, dtype, grad-mode) variant is a
    # separate specialisation, more than dynamo's default limit of 8 in a deep model.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    compiled = torch.compile(
        functools.partial(fn, **(EXP2_FORMS if exp2 else SIGMOID_FORMS)), dynamic=False,
        fullgraph=True)

    @functools.wraps(fn)
    def run(*args):
        try:
            return compiled(*args)
        except torch._dynamo.exc.BackendCompilerFailed as exc:
            raise ConfigError(
                "model.fuse_gates = true: torch.compile could not build the fused gate kernel "
                f"({type(exc.inner_exception).__name__}: {exc.inner_exception}); a CPU build "
                "needs a C++ compiler. Install one, or set model.fuse_gates = false (the same "
                "function, slower)") from exc

    return run


def _sum_to(grad: Tensor, like: Tensor) -> Tensor:
    """``grad`` summed over the dimensions that ``like`` broadcast (e.g. a (1, 4F, 1, 1) bias)."""
    dims = [d for d, (g, n) in enumerate(zip(grad.shape, like.shape, strict=True)) if n == 1 < g]
    return grad.sum(dims, keepdim=True) if dims else grad


class _LowPrecisionGates(torch.autograd.Function):
    """:func:`lstm_pointwise` of low-precision gates (bf16 autocast) as compiled forward and
    backward kernels; ``apply`` takes the fields of a :class:`GateInputs` in order.

    The forward also saves dh/dc (:func:`lstm_pointwise_with_derivatives`) beside h, which the
    next step keeps anyway; the backward recomputes the gates from the pre-activations and
    writes one gradient for ``gates`` and ``x_gates`` (the gates see their sum), in their
    precision. The backward is written out because the compiler's own would recompute tanh(c)
    from the float32 cell state alone, which makes it vectorise the whole kernel at float32
    width with half-width bf16 loads and stores. Both kernels take the activations of
    :data:`EXP2_FORMS`.
    """

    @staticmethod
    def forward(ctx, *tensors):
        ctx.set_materialize_grads(False)
        inputs = GateInputs(*tensors)
        h, c_new, q = _compiled(lstm_pointwise_with_derivatives, exp2=True)(inputs)
        ctx.save_for_backward(*inputs, q, h)
        return h, c_new

    @staticmethod
    def backward(ctx, dh, dc):
        *tensors, q, h = ctx.saved_tensors
        inputs = GateInputs(*tensors)
        d_gates, d_c, *d_w = _compiled(lstm_pointwise_backward, exp2=True)(inputs, q, h, dh, dc)
        d_x = None if inputs.x_gates is None else _sum_to(d_gates, inputs.x_gates)
        return (_sum_to(d_gates, inputs.gates), d_c, *d_w, d_x)


def fused_pointwise(inputs: GateInputs) -> State:
    """:func:`lstm_pointwise` through compiled kernels (``fuse_gates=True``).

    With float32 gates, the compiler derives the backward kernel itself; with low-precision
    gates under autograd, :class:`_LowPrecisionGates` supplies it. Inside a compiled model the
    function is inlined, for that model's compiler to fuse (a nested compilation fails with
    dynamic shapes).
    """
    if torch.compiler.is_compiling():
        return lstm_pointwise(inputs, **SIGMOID_FORMS)
    grad = _needs_grad(inputs)
    if grad and inputs.gates.dtype != inputs.c.dtype:
        return _LowPrecisionGates.apply(*inputs)
    return _compiled(lstm_pointwise, exp2=not grad)(inputs)


def fused_step(h_out: Tensor, inputs: GateInputs) -> Tensor:
    """:func:`lstm_step` through its compiled kernel (``fuse_gates=True``); same arguments,
    inlined inside a compiled model as :func:`fused_pointwise`."""
    if torch.compiler.is_compiling():
        return lstm_step(h_out, inputs, **SIGMOID_FORMS)
    return _compiled(lstm_step, exp2=not _needs_grad((h_out, *inputs)))(h_out, inputs)


def _needs_grad(tensors: Iterable[Tensor | None]) -> bool:
    """Whether autograd will run through a function of ``tensors``."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def sigmoid_tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as ``2 sigmoid(2x) - 1``: in ``torch.compile``'d CPU code a vectorised sigmoid
    is much cheaper than a vectorised tanh, and the fused gate arithmetic is bound by them."""
    return 2 * torch.sigmoid(2 * x) - 1


LOG2_E = math.log2(math.e)


def exp2_sigmoid(x: Tensor) -> Tensor:
    """``sigmoid(x)`` as ``1 / (1 + 2^(-x log2 e))``: compiled for CPUs, a vectorised exp2 is
    cheaper than the exp of the compiler's own sigmoid. Its autograd derivative overflows to
    NaN as x -> -inf, so it serves kernels whose backward is written out (or absent)."""
    return 1 / (1 + torch.exp2(x * -LOG2_E))


def exp2_tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as :func:`sigmoid_tanh` through :func:`exp2_sigmoid` (same caveat)."""
    return 2 * exp2_sigmoid(2 * x) - 1


# activations of the compiled gate kernels: SIGMOID_FORMS where the compiler derives the
# backward, EXP2_FORMS where autograd does not run through the kernel
SIGMOID_FORMS = {"sigmoid": torch.sigmoid, "tanh": sigmoid_tanh}
EXP2_FORMS = {"sigmoid": exp2_sigmoid, "tanh": exp2_tanh}
