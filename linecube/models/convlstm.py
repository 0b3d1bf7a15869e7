"""The convolutional LSTM of Shi et al. (2015), arranged for speed on CPUs and GPUs.

One :class:`ConvLSTM` layer reads a sequence of images ``(B, T, C, H, W)`` and returns every
hidden state ``(B, T, F, H, W)`` and the final ``(h, c)``, each ``(B, F, H, W)``. The four gates
(order i, f, g, o, the order of Keras ``ConvLSTM2D``) come from one fused convolution per input:

* the input-to-hidden convolution ``W_x * x_t + b`` of every step runs as ONE batched
  convolution over ``B*T`` images before the recurrence (the whole sequence is known), or ONCE
  when the input is the same at every step (:meth:`ConvLSTM.forward_repeated`, a decoder fed a
  repeated latent);
* only the hidden-to-hidden convolution ``W_h * h_{t-1}`` runs inside the loop, and not at all at
  the first step of a zero initial state;
* the gate arithmetic is one elementwise function (:func:`lstm_pointwise`) that
  ``torch.compile`` fuses into a single kernel (``fuse_gates=True``);
* activations stay in channels-last memory layout, which oneDNN (CPU) and cuDNN (GPU) convolve
  without reordering, and the sequence is stored time-major so that every step is a dense slice.

Optional peepholes are the Hadamard weights ``W_ci, W_cf, W_co`` of shape ``(F, H, W)`` of the
paper, which is why a peephole layer needs the image size at construction.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linecube.errors import ConfigError
from linecube.models.conv import conv2d

__all__ = ["ConvLSTM", "ConvLSTMCell", "lstm_pointwise", "time_major", "per_step"]

State = tuple[Tensor, Tensor]


def lstm_pointwise(
    gates: Tensor,
    c: Tensor,
    w_ci: Tensor | None,
    w_cf: Tensor | None,
    w_co: Tensor | None,
    x_gates: Tensor | None = None,
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
) -> State:
    """LSTM gate arithmetic after the convolutions.

    Args:
        gates: pre-activations ``(B, 4F, H, W)`` in the order i, f, g, o.
        c: previous cell state ``(B, F, H, W)``.
        w_ci, w_cf, w_co: peephole weights ``(F, H, W)``, or None for no peepholes.
        x_gates: input-gate term added to ``gates`` (same shape, or broadcastable), or None; the
            fused kernel adds it on the fly instead of in a separate pass.
        sigmoid, tanh: the activation functions (the compiled kernels pass faster forms of the
            same functions: :data:`SIGMOID_FORMS`, :data:`EXP2_FORMS`).

    Returns:
        ``(h, c)``, each ``(B, F, H, W)``: h in the precision of ``gates`` (bf16 under autocast,
        which the next convolution reads anyway), c in the precision of ``c``. The arithmetic
        runs in the precision of ``c`` (float32 under autocast: the cell state accumulates in
        float32, and bf16 gate arithmetic moved the training loss by several percent).
    """
    *_, o, c, tc = _gate_values(gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh)
    return (o * tc).to(gates.dtype), c


def _gate_values(gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh) -> tuple[Tensor, ...]:
    """``(i, f, g, o, c_new, tanh(c_new))`` of :func:`lstm_pointwise` (same arguments), each
    ``(B, F, H, W)`` in the precision of ``c``."""
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
    gates: Tensor,
    c: Tensor,
    w_ci: Tensor | None,
    w_cf: Tensor | None,
    w_co: Tensor | None,
    x_gates: Tensor | None = None,
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`lstm_pointwise` that also returns dh/dc for its backward.

    Returns:
        ``(h, c, q)``: h and c as :func:`lstm_pointwise`; ``q = o (1 - tanh(c)^2)`` in the
        precision of ``gates``. Saved in low precision, q is accurate to its rounding, where
        ``1 - tanh(c)^2`` recomputed from a rounded tanh(c) is not (it cancels as tanh(c)
        nears 1).
    """
    i, f, g, o, c_new, _ = _gate_values(gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh)
    # c_new again, from an expression the compiler does not share with the stored c_new: read
    # back from that float32 buffer alone, tanh(c_new) made the compiler vectorise the kernel
    # at float32 width (half-width bf16 loads and stores, 1.5x slower)
    tc = tanh(f * c + i * g)
    return (o * tc).to(gates.dtype), c_new, (o * (1 - tc * tc)).to(gates.dtype)


def lstm_pointwise_backward(
    gates: Tensor,
    c: Tensor,
    w_ci: Tensor | None,
    w_cf: Tensor | None,
    w_co: Tensor | None,
    x_gates: Tensor | None,
    q: Tensor,
    h: Tensor,
    dh: Tensor | None,
    dc: Tensor | None,
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of :func:`lstm_pointwise`, recomputing the gates from the pre-activations.

    Args:
        gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh: the inputs of
            :func:`lstm_pointwise`.
        q: dh/dc saved by :func:`lstm_pointwise_with_derivatives`.
        h: its output h, from which dh by o's pre-activation, ``h (1 - o)``, is recomputed.
        dh, dc: gradients of its outputs h and c (None: the output was not used).

    Returns:
        ``(d_gates, d_c, d_w_ci, d_w_cf, d_w_co)``: d_gates ``(B, 4F, H, W)`` in the precision
        of ``gates`` (also the gradient of ``x_gates`` before any broadcast reduction), d_c in
        the precision of ``c``, the peephole gradients (F, H, W) summed over the batch or None.
    """
    i, f, g, o, c_new, _ = _gate_values(gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh)
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


def lstm_step(
    h_out: Tensor,
    gates: Tensor,
    c: Tensor,
    w_ci: Tensor | None,
    w_cf: Tensor | None,
    w_co: Tensor | None,
    x_gates: Tensor | None = None,
    sigmoid=torch.sigmoid,
    tanh=torch.tanh,
) -> Tensor:
    """:func:`lstm_pointwise` storing h into ``h_out`` (B, F, H, W), a step of a preallocated
    sequence (compiled, the kernel writes it there directly); returns the new c."""
    h, c = lstm_pointwise(gates, c, w_ci, w_cf, w_co, x_gates, sigmoid, tanh)
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
    backward kernels.

    The forward also saves dh/dc (:func:`lstm_pointwise_with_derivatives`) beside h, which the
    next step keeps anyway; the backward recomputes the gates from the pre-activations and
    writes one gradient for ``gates`` and ``x_gates`` (the gates see their sum), in their
    precision. The compiler's own backward recomputed tanh(c) from the float32 cell state
    alone, which made it vectorise the whole kernel at float32 width with half-width bf16 loads
    and stores: 2.7x slower. Both kernels take the activations of :data:`EXP2_FORMS`.
    """

    @staticmethod
    def forward(ctx, gates, c, w_ci, w_cf, w_co, x_gates):
        ctx.set_materialize_grads(False)
        args = (gates, c, w_ci, w_cf, w_co, x_gates)
        h, c_new, q = _compiled(lstm_pointwise_with_derivatives, exp2=True)(*args)
        ctx.save_for_backward(*args, q, h)
        return h, c_new

    @staticmethod
    def backward(ctx, dh, dc):
        gates, c, w_ci, w_cf, w_co, x_gates, q, h = ctx.saved_tensors
        d_gates, d_c, *d_w = _compiled(lstm_pointwise_backward, exp2=True)(
            gates, c, w_ci, w_cf, w_co, x_gates, q, h, dh, dc)
        d_x = None if x_gates is None else _sum_to(d_gates, x_gates)
        return (_sum_to(d_gates, gates), d_c, *d_w, d_x)


def fused_pointwise(gates, c, w_ci, w_cf, w_co, x_gates=None) -> State:
    """:func:`lstm_pointwise` through compiled kernels (``fuse_gates=True``); same arguments.

    With float32 gates, the compiler derives the backward kernel itself (as fast as
    :class:`_LowPrecisionGates`' backward, or up to 3% faster in a training step).
    """
    args = (gates, c, w_ci, w_cf, w_co, x_gates)
    if not torch.compiler.is_compiling() and gates.dtype != c.dtype and _needs_grad(args):
        return _LowPrecisionGates.apply(*args)
    return _fused(lstm_pointwise, *args)


def fused_step(h_out, gates, c, w_ci, w_cf, w_co, x_gates=None) -> Tensor:
    """:func:`lstm_step` through its compiled kernel (``fuse_gates=True``); same arguments."""
    return _fused(lstm_step, h_out, gates, c, w_ci, w_cf, w_co, x_gates)


def _fused(fn, *args):
    """``fn(*args)`` through its compiled kernel; inside a compiled model, inline, for that
    model's compiler to fuse (a nested compilation failed with dynamic shapes)."""
    if torch.compiler.is_compiling():
        return fn(*args, **SIGMOID_FORMS)
    return _compiled(fn, exp2=not _needs_grad(args))(*args)


def _needs_grad(args) -> bool:
    """Whether autograd will run through a function of ``args``."""
    return torch.is_grad_enabled() and any(
        isinstance(a, Tensor) and a.requires_grad for a in args)


def sigmoid_tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as ``2 sigmoid(2x) - 1``: in ``torch.compile``'d CPU code a vectorised sigmoid
    is about 4x cheaper than a vectorised tanh, and the fused gate arithmetic is bound by them."""
    return 2 * torch.sigmoid(2 * x) - 1


LOG2_E = math.log2(math.e)


def exp2_sigmoid(x: Tensor) -> Tensor:
    """``sigmoid(x)`` as ``1 / (1 + 2^(-x log2 e))``: compiled for CPUs, a vectorised exp2 costs
    about 3/4 of the exp of the compiler's own sigmoid. Its autograd derivative overflows to
    NaN as x -> -inf, so it serves kernels whose backward is written out (or absent)."""
    return 1 / (1 + torch.exp2(x * -LOG2_E))


def exp2_tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as :func:`sigmoid_tanh` through :func:`exp2_sigmoid` (same caveat)."""
    return 2 * exp2_sigmoid(2 * x) - 1


# activations of the compiled gate kernels: SIGMOID_FORMS where the compiler derives the
# backward, EXP2_FORMS where autograd does not run through the kernel
SIGMOID_FORMS = {"sigmoid": torch.sigmoid, "tanh": sigmoid_tanh}
EXP2_FORMS = {"sigmoid": exp2_sigmoid, "tanh": exp2_tanh}


def channels_last(x: Tensor) -> Tensor:
    """``x`` (N, C, H, W) in channels-last layout (no copy when it already is).

    A contiguous 1-channel tensor is laid out the same either way; it gets channels-last strides
    (a view), so that a convolution of it returns channels-last too, as the rest of the layer
    expects (with NCHW output, the fused gate kernel of a 1-channel input runs ~10 % slower).
    """
    if x.shape[1] == 1 and x.is_contiguous():
        n, _, h, w = x.shape
        return x.view(n, h, w, 1).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=torch.channels_last)


def time_major(x: Tensor) -> Tensor:
    """``x`` (B, T, C, H, W) as ``(T*B, C, H, W)`` channels-last, a view when stored time-major."""
    b, t = x.shape[:2]
    return channels_last(x.transpose(0, 1).reshape(t * b, *x.shape[2:]))


def stack_steps(hs: list[Tensor]) -> Tensor:
    """Stack T tensors (B, F, H, W) into ``(T, B, F, H, W)`` stored time-major, channels-last."""
    return torch.stack([h.permute(0, 2, 3, 1) for h in hs]).permute(0, 1, 4, 2, 3)


def per_step(fn, x: Tensor) -> Tensor:
    """Apply a 4-D module ``fn`` to every step of ``x`` (B, T, C, H, W) in one batched call.

    Returns ``(B, T, C', H', W')``, a view of time-major channels-last storage.
    """
    b, t = x.shape[:2]
    y = fn(time_major(x))
    return y.unflatten(0, (t, b)).transpose(0, 1)


class ConvLSTMCell(nn.Module):
    """Weights of one direction of a ConvLSTM layer.

    Args:
        in_channels: input channels C (0 for a layer without input, driven by its state only).
        hidden_channels: hidden channels F.
        kernel_size: odd square kernel k of both convolutions ("same" padding).
        peephole: add the Hadamard peepholes ``W_ci, W_cf, W_co`` of shape (F, H, W).
        size: (H, W), required with peepholes.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        peephole: bool = False,
        size: tuple[int, int] | None = None,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if peephole and size is None:
            raise ValueError("a peephole ConvLSTM needs the image size (H, W)")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.padding = kernel_size // 2
        gates = 4 * hidden_channels
        self.weight_x = (
            nn.Parameter(torch.empty(gates, in_channels, kernel_size, kernel_size))
            if in_channels else None
        )
        self.weight_h = nn.Parameter(torch.empty(gates, hidden_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(gates))
        if peephole:
            self.w_ci = nn.Parameter(torch.zeros(hidden_channels, *size))
            self.w_cf = nn.Parameter(torch.zeros(hidden_channels, *size))
            self.w_co = nn.Parameter(torch.zeros(hidden_channels, *size))
        else:
            self.w_ci = self.w_cf = self.w_co = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform init as ``nn.Conv2d`` over the fused [x, h] input; forget-gate bias 1."""
        fan_in = (self.in_channels + self.hidden_channels) * self.weight_h.shape[-1] ** 2
        bound = 1.0 / math.sqrt(fan_in)
        for w in (self.weight_x, self.weight_h):
            if w is not None:
                nn.init.uniform_(w, -bound, bound)
        with torch.no_grad():
            self.bias.zero_()
            self.bias[self.hidden_channels:2 * self.hidden_channels] = 1.0

    def input_gates(self, x: Tensor | None) -> Tensor:
        """``W_x * x + b``: x (N, C, H, W) -> (N, 4F, H, W); x None -> bias (1, 4F, 1, 1)."""
        if x is None:
            return self.bias.view(1, -1, 1, 1)
        return conv2d(channels_last(x), self.weight_x, self.bias, self.padding)

    def hidden_gates(self, h: Tensor) -> Tensor:
        """``W_h * h``: h (B, F, H, W) -> (B, 4F, H, W)."""
        return F.conv2d(h, self.weight_h, padding=self.padding)

    def scan(
        self, xg: Tensor, steps: int, state: State | None, reverse: bool, fuse: bool,
        outputs: bool = True,
    ) -> tuple[Tensor | None, State]:
        """Run the recurrence over precomputed input gates.

        Args:
            xg: input gates, ``(T, B, 4F, H, W)`` per step, or ``(B, 4F, H, W)`` (or broadcastable)
                shared by every step.
            steps: T.
            state: initial ``(h, c)`` (B, F, H, W), or None for zeros.
            reverse: process steps T-1 .. 0.
            fuse: use the ``torch.compile``-fused gate arithmetic.
            outputs: keep every hidden state (False: only the final state is returned).

        Returns:
            hidden states ``(T, B, F, H, W)`` (time-major, channels-last; None without
            ``outputs``) and the final ``(h, c)``.
        """
        per_step_input = xg.dim() == 5
        # unbind once: its backward stacks the step gradients in one tensor, where indexing
        # xg[t] at every step would zero-fill and accumulate a full (T, ...) gradient T times
        x_steps = xg.unbind(0) if per_step_input else None
        pointwise = fused_pointwise if fuse else lstm_pointwise
        if state is None:
            if self.weight_x is None:
                raise ValueError("a ConvLSTM layer without input needs an initial state")
            h = None
            ref = xg[0] if per_step_input else xg
            # the cell state accumulates in the parameters' precision, also under autocast
            c = torch.empty((ref.shape[0], self.hidden_channels, *ref.shape[-2:]),
                            dtype=self.weight_h.dtype, device=ref.device,
                            memory_format=torch.channels_last).zero_()
        else:
            h, c = (channels_last(s) for s in state)
        # Without autograd, every hidden state is stored straight into the output sequence;
        # with it, the steps are stacked at the end (autograd cannot follow writes into one
        # buffer without copying it at every step).
        direct = outputs and not torch.is_grad_enabled()
        if direct:
            device = self.weight_h.device.type
            dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
                     else self.weight_h.dtype)
            out = torch.empty((steps, c.shape[0], *c.shape[-2:], self.hidden_channels),
                              dtype=dtype, device=c.device).permute(0, 1, 4, 2, 3)
            step = fused_step if fuse else lstm_step
        hs: list[Tensor] = [None] * steps  # type: ignore[list-item]
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            x_t = x_steps[t] if per_step_input else xg
            gates, x_gates = (x_t, None) if h is None else (self.hidden_gates(h), x_t)
            if direct:
                c = step(out[t], gates, c, self.w_ci, self.w_cf, self.w_co, x_gates)
                h = out[t]
            else:
                h, c = pointwise(gates, c, self.w_ci, self.w_cf, self.w_co, x_gates)
                if outputs:
                    hs[t] = h
        if not outputs:
            return None, (h, c)
        return (out if direct else stack_steps(hs)), (h, c)


class ConvLSTM(nn.Module):
    """One ConvLSTM layer, optionally bidirectional.

    Args:
        in_channels: input channels C (0: no input, the layer is driven by its initial state).
        hidden_channels: hidden channels F per direction.
        kernel_size: odd square kernel k.
        peephole: Hadamard peepholes (F, H, W) as in Shi et al. (2015); needs ``size``.
        size: image size (H, W), required with peepholes.
        bidirectional: add a second direction reading the steps backwards; outputs and states
            concatenate both directions along channels (2F).
        fuse_gates: run the gate arithmetic through ``torch.compile`` (one fused kernel).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        *,
        peephole: bool = False,
        size: tuple[int, int] | None = None,
        bidirectional: bool = False,
        fuse_gates: bool = False,
    ):
        super().__init__()
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.bidirectional, self.fuse_gates = bidirectional, fuse_gates
        self.cells = nn.ModuleList(
            ConvLSTMCell(in_channels, hidden_channels, kernel_size, peephole, size)
            for _ in range(2 if bidirectional else 1)
        )

    @property
    def out_channels(self) -> int:
        """Channels of the outputs and states: F, or 2F when bidirectional."""
        return self.hidden_channels * len(self.cells)

    def forward(
        self, x: Tensor, state: State | None = None, outputs: bool = True
    ) -> tuple[Tensor | None, State]:
        """Read a sequence.

        Args:
            x: ``(B, T, C, H, W)``.
            state: initial ``(h, c)``, each ``(B, out_channels, H, W)``, or None for zeros.
            outputs: return every hidden state; False skips storing them (None is returned).

        Returns:
            ``(outputs, (h, c))``: outputs ``(B, T, out_channels, H, W)`` (every hidden state),
            h and c ``(B, out_channels, H, W)`` after the last step of each direction.
        """
        b, t = x.shape[:2]
        flat = time_major(x)
        return self._run(
            [cell.input_gates(flat).unflatten(0, (t, b)) for cell in self.cells], t, state,
            outputs)

    def forward_repeated(
        self, x: Tensor | None, steps: int, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Read the same input at every step; its convolution runs once.

        Args:
            x: ``(B, C, H, W)``, or None for a layer built with ``in_channels=0``.
            steps: sequence length T.
            state: as in :meth:`forward`.

        Returns:
            As :meth:`forward`.
        """
        return self._run([cell.input_gates(x) for cell in self.cells], steps, state)

    def _run(
        self, xgs: list[Tensor], steps: int, state: State | None, outputs: bool = True
    ) -> tuple[Tensor | None, State]:
        states = [None] * len(self.cells) if state is None else list(
            zip(*(s.chunk(len(self.cells), dim=1) for s in state), strict=True))
        outs, hs, cs = [], [], []
        for direction, (cell, xg, st) in enumerate(zip(self.cells, xgs, states, strict=True)):
            out, (h, c) = cell.scan(
                xg, steps, st, reverse=direction == 1, fuse=self.fuse_gates, outputs=outputs)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        if len(self.cells) == 1:
            return (outs[0].transpose(0, 1) if outputs else None), (hs[0], cs[0])
        seq = torch.cat(outs, dim=2).transpose(0, 1) if outputs else None
        return seq, (torch.cat(hs, 1), torch.cat(cs, 1))
