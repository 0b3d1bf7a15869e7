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
* the gate arithmetic is one elementwise function (:mod:`linecube.models.gates`) that
  ``torch.compile`` fuses into a single kernel (``fuse_gates=True``);
* activations stay in channels-last memory layout, which oneDNN (CPU) and cuDNN (GPU) convolve
  without reordering, and the sequence is stored time-major so that every step is a dense slice.

Optional peepholes are the Hadamard weights ``W_ci, W_cf, W_co`` of shape ``(F, H, W)`` of the
paper, which is why a peephole layer needs the image size at construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linecube.models.conv import conv2d
from linecube.models.gates import (
    GateInputs,
    State,
    fused_pointwise,
    fused_step,
    lstm_pointwise,
    lstm_step,
)

__all__ = ["ConvLSTM", "ConvLSTMCell", "channels_last", "per_step", "time_major"]


def channels_last(x: Tensor) -> Tensor:
    """``x`` (N, C, H, W) in channels-last layout (no copy when it already is).

    A contiguous 1-channel tensor is laid out the same either way; it gets channels-last strides
    (a view), so that a convolution of it returns channels-last too, as the rest of the layer
    expects: the fused gate kernel then reads the gates densely instead of strided.
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

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3,
                 peephole: bool = False, size: tuple[int, int] | None = None):
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
            inputs = GateInputs(gates, c, self.w_ci, self.w_cf, self.w_co, x_gates)
            if direct:
                c = step(out[t], inputs)
                h = out[t]
            else:
                h, c = pointwise(inputs)
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
