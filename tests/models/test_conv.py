"""The convolution with a separately reduced bias gradient computes what F.conv2d computes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from linecube.models.conv import Conv2d, conv2d
from linecube.models.numerics import relative_error, tolerance


def _inputs(channels_last: bool, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 9, 7, generator=g, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(5, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, w, b)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("padding", [0, 1])
def test_outputs_and_gradients_match_conv2d(channels_last, padding):
    x, w, b = _inputs(channels_last)
    y = conv2d(x, w, b, padding)
    ref = F.conv2d(x, w, b, padding=padding)
    assert type(y.grad_fn).__name__ == "_SeparateBiasGradBackward"
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    grad = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, w, b), grad)
    want = torch.autograd.grad(ref, (x, w, b), grad)
    # two float32 reductions in different orders (oneDNN's blocking depends on the CPU), each
    # within tolerance of the exact sums; N H' W' is the longest reduction (weight and bias)
    terms = y.shape[0] * y.shape[2] * y.shape[3]
    for g_, w_ in zip(got, want, strict=True):
        assert relative_error(g_, w_) <= 2 * tolerance(torch.float32, terms)


def test_frozen_input_and_bias_get_no_gradient():
    x, w, b = _inputs(True)
    x = x.detach()
    y = conv2d(x, w, b, 1)
    (d_w,) = torch.autograd.grad(y.sum(), (w,))
    torch.testing.assert_close(d_w, torch.autograd.grad(F.conv2d(x, w, b, padding=1).sum(), (w,))[0])
    with torch.no_grad():
        assert conv2d(x, w, b, 1).grad_fn is None


@pytest.mark.parametrize("case", ["float64", "autocast", "no_bias", "frozen_bias"])
def test_plain_conv2d_elsewhere(case):
    x, w, b = _inputs(True, torch.float64 if case == "float64" else torch.float32)
    if case == "no_bias":
        b = None
    if case == "frozen_bias":
        b = b.detach()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case == "autocast"):
        y = conv2d(x, w, b, 1)
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0"


def test_module_is_a_drop_in_for_nn_conv2d():
    ours, ref = Conv2d(4, 5, 3, padding=1), nn.Conv2d(4, 5, 3, padding=1)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(ours.state_dict())
    x = _inputs(True)[0]
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)
    y = ours(x)
    (d_ours,) = torch.autograd.grad(y.square().sum(), (ours.bias,))
    (d_ref,) = torch.autograd.grad(ref(x).square().sum(), (ref.bias,))
    terms = y.shape[0] * y.shape[2] * y.shape[3]  # the bias gradient sums over N H' W'
    assert relative_error(d_ours, d_ref) <= 2 * tolerance(torch.float32, terms)


def test_gradcheck_of_the_separate_bias_gradient_float64():
    from linecube.models.conv import _SeparateBiasGrad

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 5, 4, generator=g, dtype=torch.float64)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: _SeparateBiasGrad.apply(*a, (1, 1)), (x, w, b))
