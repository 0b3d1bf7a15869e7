"""2-D convolution whose bias gradient, on CPU in float32, is a separate reduction.

Asked for the weight and bias gradients of a channels-last float32 convolution together,
oneDNN computes them more slowly than the weight gradient alone followed by a separate
``grad.sum((0, 2, 3))``, so :func:`conv2d` asks for the weight gradient only and sums the bias
gradient itself. In bf16 the fused bias gradient is the faster one (the separate sum of a bf16
gradient is memory-bound), and elsewhere (GPU, float64, no autograd)
:func:`torch.nn.functional.conv2d` runs unchanged. The measurements behind this are in
``BENCHMARKS.md``, "ConvLSTM kernels: design measurements".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv2d", "conv2d"]


class _SeparateBiasGrad(torch.autograd.Function):
    """``F.conv2d`` (stride 1, no dilation, one group) with the bias gradient summed apart."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, padding: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        d_x, d_w, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], list(ctx.padding), [1, 1], False, [0, 0], 1,
            [need_x, need_w, False])
        return d_x, d_w, grad.sum((0, 2, 3)) if need_b else None, None


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int | tuple[int, int]) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1): x (N, C, H, W) -> (N, C', H', W').

    In float32 CPU training, the bias gradient is computed by a separate reduction (see the
    module docstring); otherwise this is ``F.conv2d`` itself.
    """
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if (bias is not None and bias.requires_grad and torch.is_grad_enabled()
            and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")):
        return _SeparateBiasGrad.apply(x, weight, bias, padding)
    return F.conv2d(x, weight, bias, padding=padding)


class Conv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` (stride 1, no dilation, one group, zero padding) through
    :func:`conv2d`; same parameters and state dict."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return conv2d(x, weight, bias, self.padding)
